#include "errors.h"

#include <cmath>

#include "addon.h"

namespace myelin::binding {

Napi::Error MakeError(Napi::Env env, Status s, const std::string& message) {
  const char* code = StatusCode(s);
  MyelinAddon* addon = AddonOf(env);
  if (addon && !addon->error_class.IsEmpty()) {
    Napi::Object err = addon->error_class.New({Napi::String::New(env, code), Napi::String::New(env, message)});
    return Napi::Error(env, err);
  }
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

void ThrowStatus(Napi::Env env, Status s, const std::string& context) {
  // kOk ("OK") is not an error code; throwing it is a binding bug, reported as one.
  if (Ok(s)) throw MakeError(env, Status::kInternal, context + ": ThrowStatus called with OK");
  throw MakeError(env, s, context + ": " + StatusMessage(s));
}

void ThrowInvalid(Napi::Env env, const std::string& what) {
  throw MakeError(env, Status::kInvalidArgument, what);
}

double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber())
    ThrowInvalid(info.Env(), std::string(name) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (std::isnan(v)) ThrowInvalid(info.Env(), std::string(name) + " must not be NaN");
  return v;
}

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t max) {
  double v = ArgNumber(info, i, name);
  if (v < 0 || v != std::floor(v) || v > static_cast<double>(max))
    ThrowInvalid(info.Env(), std::string(name) + " must be an integer from 0 to " + std::to_string(max) +
                                 ", got " + info[i].ToString().Utf8Value());
  return static_cast<uint32_t>(v);
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsString()) ThrowInvalid(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::TypedArray ArgTypedArray(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsTypedArray())
    ThrowInvalid(info.Env(), std::string(name) + " must be a TypedArray");
  return info[i].As<Napi::TypedArray>();
}

Bytes ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Env env = info.Env();
  if (i < info.Length()) {
    Napi::Value v = info[i];
    if (v.IsTypedArray()) {
      // napi_get_typedarray_info gives the data pointer for views on SharedArrayBuffers
      // too (napi_get_arraybuffer_info refuses a SharedArrayBuffer on Node 20).
      napi_typedarray_type type;
      size_t length = 0;
      void* data = nullptr;
      napi_status st = napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr);
      if (st != napi_ok) ThrowInvalid(env, std::string(name) + " could not be read");
      const size_t bytes = v.As<Napi::TypedArray>().ByteLength();
      // A detached buffer reports no data; treat it as a caller error, not a crash.
      if (data == nullptr && bytes != 0) ThrowInvalid(env, std::string(name) + " is detached");
      return {static_cast<uint8_t*>(data), bytes};
    }
    if (v.IsDataView()) {
      Napi::DataView dv = v.As<Napi::DataView>();
      return {static_cast<uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset(), dv.ByteLength()};
    }
    if (v.IsArrayBuffer()) {
      Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
      return {static_cast<uint8_t*>(ab.Data()), ab.ByteLength()};
    }
  }
  ThrowInvalid(env, std::string(name) + " must be a Buffer, TypedArray, DataView or ArrayBuffer");
}

}  // namespace myelin::binding
