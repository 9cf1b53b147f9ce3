// JSON field extraction for JS: names are bound once per extractor, results land in
// a caller-owned Uint32Array (no objects built per document), and a batch of
// documents crosses in one call.
//
// Output layout per (document, name): three u32 — offset, length, type | escaped << 8,
// where type is JsonType (0 missing, 1 string, 2 number, 3 bool, 4 null, 5 object,
// 6 array). Offsets are into the bytes the caller passed.
#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "json/field_extractor.h"

namespace myelin::binding {
namespace {

class JsonExtractorWrap : public Napi::ObjectWrap<JsonExtractorWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "JsonExtractor",
                       {
                           InstanceMethod("extract", &JsonExtractorWrap::Extract),
                           InstanceMethod("extractBatch", &JsonExtractorWrap::ExtractBatch),
                           InstanceAccessor("names", &JsonExtractorWrap::Names, nullptr),
                       });
  }

  explicit JsonExtractorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsonExtractorWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsArray()) ThrowInvalid(env, "JsonExtractor(names): names must be an array of strings");
    Napi::Array arr = info[0].As<Napi::Array>();
    if (arr.Length() == 0 || arr.Length() > kMaxExtractFields)
      ThrowInvalid(env, "JsonExtractor(names): between 1 and " + std::to_string(kMaxExtractFields) + " names");
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value v = arr.Get(i);
      if (!v.IsString()) ThrowInvalid(env, "JsonExtractor(names): names[" + std::to_string(i) + "] must be a string");
      names_.push_back(v.As<Napi::String>().Utf8Value());
    }
    for (const auto& n : names_) views_.emplace_back(n);
    out_.resize(names_.size());
  }

 private:
  static void Store(const FieldView& f, uint32_t* dst) {
    dst[0] = f.offset;
    dst[1] = f.length;
    dst[2] = static_cast<uint32_t>(f.type) | (f.escaped ? 0x100u : 0u);
  }

  // extract(doc, out): throws ERR_INVALID_JSON / ERR_INVALID_UTF8 on a bad document.
  Napi::Value Extract(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Bytes doc = ArgBytes(info, 0, "doc");
    auto out = ArgTypedArrayOf<uint32_t>(info, 1, "out", napi_uint32_array, "Uint32Array");
    if (out.ElementLength() < names_.size() * 3) ThrowInvalid(env, "out needs 3 slots per name");
    Status s = extractor_.Extract(doc.data, doc.length, doc.length, views_.data(), views_.size(), out_.data());
    if (!Ok(s)) ThrowStatus(env, s, "JsonExtractor.extract");
    for (size_t i = 0; i < out_.size(); ++i) Store(out_[i], out.Data() + i * 3);
    return env.Undefined();
  }

  // extractBatch(buf, offsets, lengths, out, statuses) -> documents that parsed.
  // statuses[d] is 0 for OK, else the core Status number (see statusTable()).
  Napi::Value ExtractBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Bytes buf = ArgBytes(info, 0, "buf");
    auto offsets = ArgTypedArrayOf<uint32_t>(info, 1, "offsets", napi_uint32_array, "Uint32Array");
    auto lengths = ArgTypedArrayOf<uint32_t>(info, 2, "lengths", napi_uint32_array, "Uint32Array");
    auto out = ArgTypedArrayOf<uint32_t>(info, 3, "out", napi_uint32_array, "Uint32Array");
    auto statuses = ArgTypedArrayOf<int32_t>(info, 4, "statuses", napi_int32_array, "Int32Array");
    const size_t docs = offsets.ElementLength();
    if (lengths.ElementLength() != docs) ThrowInvalid(env, "offsets and lengths must have the same length");
    if (statuses.ElementLength() < docs) ThrowInvalid(env, "statuses needs one slot per document");
    if (out.ElementLength() < docs * names_.size() * 3) ThrowInvalid(env, "out needs 3 slots per name per document");
    batch_out_.resize(docs * names_.size());
    batch_status_.resize(docs);
    Status s = extractor_.ExtractBatch(buf.data, buf.length, offsets.Data(), lengths.Data(), docs, views_.data(),
                                       views_.size(), batch_out_.data(), batch_status_.data());
    if (!Ok(s)) ThrowStatus(env, s, "JsonExtractor.extractBatch");
    uint32_t good = 0;
    for (size_t d = 0; d < docs; ++d) {
      statuses.Data()[d] = static_cast<int32_t>(batch_status_[d]);
      if (Ok(batch_status_[d])) ++good;
    }
    for (size_t i = 0; i < batch_out_.size(); ++i) Store(batch_out_[i], out.Data() + i * 3);
    return Napi::Number::New(env, good);
  }

  Napi::Value Names(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array arr = Napi::Array::New(env, names_.size());
    for (uint32_t i = 0; i < names_.size(); ++i) arr.Set(i, Napi::String::New(env, names_[i]));
    return arr;
  }

  FieldExtractor extractor_;
  std::vector<std::string> names_;
  std::vector<std::string_view> views_;  // into names_, which never changes after construction
  std::vector<FieldView> out_;
  std::vector<FieldView> batch_out_;
  std::vector<Status> batch_status_;
};

Napi::Value JsonImplementationJs(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), JsonImplementation());
}

Napi::Value SetJsonImplementationJs(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0, "implementation");
  Status s = SetJsonImplementation(name);
  if (!Ok(s)) ThrowStatus(info.Env(), s, "setJsonImplementation(" + name + ")");
  return info.Env().Undefined();
}

Napi::Value UnescapeJs(const Napi::CallbackInfo& info) {
  Bytes raw = ArgBytes(info, 0, "raw");
  std::string out;
  Status s = UnescapeJsonString(std::string_view(reinterpret_cast<const char*>(raw.data), raw.length), &out);
  if (!Ok(s)) ThrowStatus(info.Env(), s, "unescapeJsonString");
  return Napi::String::New(info.Env(), out);
}

}  // namespace

void InitJson(Napi::Env env, Napi::Object exports, MyelinAddon*) {
  Napi::Function ctor = JsonExtractorWrap::Define(env);
  exports.Set("JsonExtractor", ctor);
  exports.Set("jsonImplementation", Napi::Function::New(env, JsonImplementationJs, "jsonImplementation"));
  exports.Set("setJsonImplementation", Napi::Function::New(env, SetJsonImplementationJs, "setJsonImplementation"));
  exports.Set("unescapeJsonString", Napi::Function::New(env, UnescapeJs, "unescapeJsonString"));
}

}  // namespace myelin::binding
