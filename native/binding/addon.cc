#include "addon.h"

#include <new>
#include <stdexcept>
#include <string>
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
#ifdef MYELIN_TEST_HOOKS
                           InstanceMethod("failThreadStarts", &MyelinAddon::FailThreadStarts),
                           InstanceMethod("throwNative", &MyelinAddon::ThrowNative),
#endif
                       });
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  InitRing(env, exports, this);
  InitSlab(env, exports, this);
  InitHistogram(env, exports, this);
  InitJson(env, exports, this);
  InitMatcher(env, exports, this);
  InitCpu(env, exports, this);
  InitGateway(env, exports, this);
  InitLoad(env, exports, this);
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
// covers them (test/errors.test.ts).
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

#ifdef MYELIN_TEST_HOOKS
// failThreadStarts(fail, pass = 0): after `pass` more successful thread starts, the next
// `fail` ones are refused. failThreadStarts(0) clears it.
Napi::Value MyelinAddon::FailThreadStarts(const Napi::CallbackInfo& info) {
  const uint32_t fail = ArgU32(info, 0, "fail");
  const uint32_t pass = info.Length() > 1 && !info[1].IsUndefined() ? ArgU32(info, 1, "pass") : 0;
  thread_start_faults = ThreadStartFaults{pass, fail};
  return info.Env().Undefined();
}

// throwNative(kind): lets a standard C++ exception escape an entry point, to check
// that NODE_ADDON_API_CPP_EXCEPTIONS_ALL turns it into a JS exception, not an abort.
Napi::Value MyelinAddon::ThrowNative(const Napi::CallbackInfo& info) {
  const std::string kind = ArgString(info, 0, "kind");
  if (kind == "bad_alloc") throw std::bad_alloc();
  if (kind == "runtime_error") throw std::runtime_error("myelin test: runtime_error");
  if (kind == "int") throw 42;
  ThrowInvalid(info.Env(), "kind must be bad_alloc, runtime_error or int");
}
#endif

NODE_API_ADDON(MyelinAddon)

}  // namespace myelin::binding
