// Turning core statuses and bad arguments into the TS-defined MyelinError.
#pragma once

#include <napi.h>

#include <string>

#include "common/status.h"

namespace myelin::binding {

// A MyelinError (or, before lib/internal/native.ts registered the class, an Error
// with a `code`) whose code is StatusCode(s): every code the binding produces comes
// from the one status table, so test/errors.test.ts can check them all.
Napi::Error MakeError(Napi::Env env, Status s, const std::string& message);

// Throws the MyelinError for a non-OK status, prefixed with what was being done.
[[noreturn]] void ThrowStatus(Napi::Env env, Status s, const std::string& context);

// ERR_INVALID_ARGUMENT naming the argument and what was expected.
[[noreturn]] void ThrowInvalid(Napi::Env env, const std::string& what);

// Argument readers: each throws ERR_INVALID_ARGUMENT naming `name` on a wrong type,
// NaN, a fraction, a negative number or a value over `max`.
uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t max = UINT32_MAX);
double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* name);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name);
Napi::TypedArray ArgTypedArray(const Napi::CallbackInfo& info, size_t i, const char* name);

// The bytes behind a Buffer/TypedArray/DataView/ArrayBuffer argument.
struct Bytes {
  uint8_t* data;
  size_t length;
};
Bytes ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* name);

// A TypedArray argument of one element type (e.g. napi_uint32_array).
template <typename T>
Napi::TypedArrayOf<T> ArgTypedArrayOf(const Napi::CallbackInfo& info, size_t i, const char* name,
                                      napi_typedarray_type type, const char* type_name) {
  Napi::TypedArray ta = ArgTypedArray(info, i, name);
  if (ta.TypedArrayType() != type) ThrowInvalid(info.Env(), std::string(name) + " must be a " + type_name);
  return ta.As<Napi::TypedArrayOf<T>>();
}

}  // namespace myelin::binding
