#include "addon.h"

#include <vector>

#include "common/status.h"
#include "errors.h"

namespace myelin::binding {

void HandleSet::CloseAll() noexcept {
  // Copy first: Close() may finish a wrap whose destructor removes itself.
  std::vector<Handle*> copy;
  {
    std::lock_guard<std::mutex> g(mu_);
    copy.assign(handles_.begin(), handles_.end());
  }
  for (Handle* h : copy) h->Close();
}

MyelinAddon::MyelinAddon(Napi::Env env, Napi::Object exports) : handles_(std::make_shared<HandleSet>()) {
  DefineAddon(exports, {
                           InstanceMethod("setErrorClass", &MyelinAddon::SetErrorClass),
                           InstanceMethod("statusTable", &MyelinAddon::StatusTable),
                       });
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  InitRing(env, exports, this);
  InitSlab(env, exports, this);
  InitHistogram(env, exports, this);
  InitJson(env, exports, this);
  InitMatcher(env, exports, this);
  InitCpu(env, exports, this);
  // Runs before V8 tears the environment down (process exit or worker.terminate()):
  // stop native threads and release thread-safe functions while they still can be.
  std::shared_ptr<HandleSet> set = handles_;
  env.AddCleanupHook([set]() { set->CloseAll(); });
}

Napi::Value MyelinAddon::SetErrorClass(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) ThrowInvalid(info.Env(), "error class must be a constructor");
  error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// [{ name, code, message }] for every core status, so TS can check its code table
// covers them (test/native.test.ts).
Napi::Value MyelinAddon::StatusTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
#define MYELIN_STATUS_ROW(name, code, msg)                \
  {                                                       \
    Napi::Object row = Napi::Object::New(env);            \
    row.Set("name", Napi::String::New(env, #name));       \
    row.Set("code", Napi::String::New(env, code));        \
    row.Set("message", Napi::String::New(env, msg));      \
    out.Set(i++, row);                                    \
  }
  MYELIN_STATUS_LIST(MYELIN_STATUS_ROW)
#undef MYELIN_STATUS_ROW
  return out;
}

NODE_API_ADDON(MyelinAddon)

}  // namespace myelin::binding
