// CPU topology and pinning of the calling thread (the main thread or a worker).
#include "addon.h"
#include "errors.h"
#include "sys/cpu.h"

namespace myelin::binding {
namespace {

Napi::Value CpuInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CpuInfo ci;
  Status s = GetCpuInfo(&ci);
  Napi::Object out = Napi::Object::New(env);
  out.Set("supported", Napi::Boolean::New(env, Ok(s)));
  out.Set("online", Napi::Number::New(env, ci.online));
  Napi::Array allowed = Napi::Array::New(env, ci.allowed.size());
  for (uint32_t i = 0; i < ci.allowed.size(); ++i) allowed.Set(i, Napi::Number::New(env, ci.allowed[i]));
  out.Set("allowed", allowed);
  return out;
}

// pinThread(cpu) -> status code string ("OK" or the MyelinError code). Pinning is
// best effort by nature (containers forbid it), so it reports rather than throws,
// except for a malformed argument.
Napi::Value PinThreadJs(const Napi::CallbackInfo& info) {
  uint32_t cpu = ArgU32(info, 0, "cpu", 1u << 20);
  Status s = PinCurrentThread(cpu);
  return Napi::String::New(info.Env(), StatusCode(s));
}

Napi::Value UnpinThreadJs(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), StatusCode(UnpinCurrentThread()));
}

Napi::Value CurrentCpuJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), CurrentCpu());
}

}  // namespace

void InitCpu(Napi::Env env, Napi::Object exports, MyelinAddon*) {
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfoJs, "cpuInfo"));
  exports.Set("pinThread", Napi::Function::New(env, PinThreadJs, "pinThread"));
  exports.Set("unpinThread", Napi::Function::New(env, UnpinThreadJs, "unpinThread"));
  exports.Set("currentCpu", Napi::Function::New(env, CurrentCpuJs, "currentCpu"));
}

}  // namespace myelin::binding
