// The subject trie for JS. Owned by the JS thread that created it (the core matcher
// is single-threaded by contract). Subjects cross as JS strings: V8 hands out their
// UTF-8 into a reused buffer, so a cached match costs one copy and one lookup.
#include <string>

#include "addon.h"
#include "errors.h"
#include "route/subject.h"
#include "route/subject_matcher.h"

namespace myelin::binding {
namespace {

// Reads a string argument into `buf` (reused across calls) with one N-API call: the
// buffer holds one byte more than the longest legal subject, so a copy that fills it
// means "too long" without first asking V8 for the length. Only then is the exact
// length fetched, for the error message.
std::string_view ReadSubject(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* buf) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsString()) ThrowInvalid(env, std::string(name) + " must be a string");
  napi_value v = info[i];
  if (buf->size() < kMaxSubjectBytes + 2) buf->resize(kMaxSubjectBytes + 2);
  size_t len = 0;
  napi_get_value_string_utf8(env, v, buf->data(), kMaxSubjectBytes + 2, &len);
  if (len > kMaxSubjectBytes) {
    napi_get_value_string_utf8(env, v, nullptr, 0, &len);
    ThrowStatus(env, Status::kSubjectTooLong, std::string(name) + " is " + std::to_string(len) + " bytes");
  }
  return std::string_view(buf->data(), len);
}

class MatcherWrap : public Napi::ObjectWrap<MatcherWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SubjectMatcher",
                       {
                           InstanceMethod("subscribe", &MatcherWrap::Subscribe),
                           InstanceMethod("unsubscribe", &MatcherWrap::Unsubscribe),
                           InstanceMethod("match", &MatcherWrap::Match),
                           InstanceMethod("matchInto", &MatcherWrap::MatchInto),
                           InstanceMethod("bindOutput", &MatcherWrap::BindOutput),
                           InstanceMethod("matchBound", &MatcherWrap::MatchBound),
                           InstanceAccessor("patternCount", &MatcherWrap::PatternCount, nullptr),
                           InstanceAccessor("cacheSize", &MatcherWrap::CacheSize, nullptr),
                       });
  }

  explicit MatcherWrap(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<MatcherWrap>(info),
        matcher_(info.Length() > 0 && !info[0].IsUndefined()
                     ? ArgU32(info, 0, "cacheEntries", SubjectMatcher::kMaxCacheEntries)
                     : SubjectMatcher::kDefaultCacheEntries) {}

 private:
  Napi::Value Subscribe(const Napi::CallbackInfo& info) {
    std::string_view p = ReadSubject(info, 0, "pattern", &buf_);
    uint32_t id = ArgU32(info, 1, "id");
    Status s = matcher_.Subscribe(p, id);
    if (!Ok(s)) ThrowStatus(info.Env(), s, "subscribe('" + std::string(p) + "')");
    return info.Env().Undefined();
  }

  Napi::Value Unsubscribe(const Napi::CallbackInfo& info) {
    std::string_view p = ReadSubject(info, 0, "pattern", &buf_);
    uint32_t id = ArgU32(info, 1, "id");
    Status s = matcher_.Unsubscribe(p, id);
    if (!Ok(s)) ThrowStatus(info.Env(), s, "unsubscribe('" + std::string(p) + "')");
    return info.Env().Undefined();
  }

  MatchResult DoMatch(const Napi::CallbackInfo& info) {
    std::string_view subj = ReadSubject(info, 0, "subject", &buf_);
    MatchResult r;
    Status s = matcher_.Match(subj, &r);
    if (!Ok(s)) ThrowStatus(info.Env(), s, "match('" + std::string(subj) + "')");
    return r;
  }

  // match(subject) -> Uint32Array of ids (a copy, ascending).
  Napi::Value Match(const Napi::CallbackInfo& info) {
    MatchResult r = DoMatch(info);
    auto out = Napi::Uint32Array::New(info.Env(), r.count);
    for (uint32_t i = 0; i < r.count; ++i) out[i] = r.ids[i];
    return out;
  }

  // matchInto(subject, out) -> total matches; writes min(total, out.length) ids.
  Napi::Value MatchInto(const Napi::CallbackInfo& info) {
    auto out = ArgTypedArrayOf<uint32_t>(info, 1, "out", napi_uint32_array, "Uint32Array");
    MatchResult r = DoMatch(info);
    const size_t n = std::min<size_t>(r.count, out.ElementLength());
    for (size_t i = 0; i < n; ++i) out.Data()[i] = r.ids[i];
    return Napi::Number::New(info.Env(), r.count);
  }

  // bindOutput(out): keeps a Uint32Array for matchBound(), so the hot call carries
  // only the subject. The wrap holds a reference, so the memory stays valid.
  Napi::Value BindOutput(const Napi::CallbackInfo& info) {
    auto out = ArgTypedArrayOf<uint32_t>(info, 0, "out", napi_uint32_array, "Uint32Array");
    bound_ = Napi::Persistent(out.As<Napi::Object>());
    bound_data_ = out.Data();
    bound_len_ = out.ElementLength();
    return info.Env().Undefined();
  }

  // matchBound(subject) -> total matches; writes min(total, bound length) ids.
  Napi::Value MatchBound(const Napi::CallbackInfo& info) {
    if (bound_.IsEmpty()) ThrowInvalid(info.Env(), "matchBound: call bindOutput(out) first");
    MatchResult r = DoMatch(info);
    const size_t n = std::min<size_t>(r.count, bound_len_);
    for (size_t i = 0; i < n; ++i) bound_data_[i] = r.ids[i];
    return Napi::Number::New(info.Env(), r.count);
  }

  Napi::Value PatternCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(matcher_.PatternCount()));
  }
  Napi::Value CacheSize(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(matcher_.CacheSize()));
  }

  SubjectMatcher matcher_;
  std::string buf_;
  Napi::ObjectReference bound_;
  uint32_t* bound_data_ = nullptr;
  size_t bound_len_ = 0;
};

// validateSubject(subject, pattern) throws ERR_INVALID_ARGUMENT naming the rule.
Napi::Value ValidateSubjectJs(const Napi::CallbackInfo& info) {
  std::string buf;
  std::string_view s = ReadSubject(info, 0, "subject", &buf);
  bool pattern = info.Length() > 1 && info[1].ToBoolean();
  Status st = ValidateSubject(s, pattern ? SubjectKind::kPattern : SubjectKind::kPublish);
  if (!Ok(st)) ThrowStatus(info.Env(), st, std::string(pattern ? "pattern" : "subject") + " '" + std::string(s) + "'");
  return info.Env().Undefined();
}

}  // namespace

void InitMatcher(Napi::Env env, Napi::Object exports, MyelinAddon*) {
  Napi::Function ctor = MatcherWrap::Define(env);
  exports.Set("SubjectMatcher", ctor);
  exports.Set("validateSubject", Napi::Function::New(env, ValidateSubjectJs, "validateSubject"));
}

}  // namespace myelin::binding
