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

// Reads a string argument into `buf` (reused across calls). Subjects over the limit
// are rejected here before any UTF-8 conversion of a huge string.
std::string_view ReadSubject(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* buf) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsString()) ThrowInvalid(env, std::string(name) + " must be a string");
  napi_value v = info[i];
  size_t len = 0;
  napi_get_value_string_utf8(env, v, nullptr, 0, &len);
  if (len > kMaxSubjectBytes) ThrowStatus(env, Status::kSubjectTooLong, std::string(name) + " is " + std::to_string(len) + " bytes");
  buf->resize(len + 1);
  napi_get_value_string_utf8(env, v, buf->data(), buf->size(), &len);
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

  Napi::Value PatternCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(matcher_.PatternCount()));
  }
  Napi::Value CacheSize(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(matcher_.CacheSize()));
  }

  SubjectMatcher matcher_;
  std::string buf_;
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

void InitMatcher(Napi::Env env, Napi::Object exports, MyelinAddon* addon) {
  Napi::Function ctor = MatcherWrap::Define(env);
  addon->matcher_ctor = Napi::Persistent(ctor);
  exports.Set("SubjectMatcher", ctor);
  exports.Set("validateSubject", Napi::Function::New(env, ValidateSubjectJs, "validateSubject"));
}

}  // namespace myelin::binding
