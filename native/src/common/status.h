// Status codes returned by every core primitive. Core code never throws, prints or
// aborts; it returns one of these. The binding maps each to a MyelinError code through
// the table below (several statuses may share one public code: a bad subject is an
// ERR_INVALID_ARGUMENT to the caller whichever rule it broke; the message tells which).
// test/errors.test.ts checks both directions against lib/internal/codes.ts (through the
// addon's statusTable()). New rows go at the end: a status's number crosses to JS
// (JsonExtractor.extractBatch's statuses) and must not shift.
#pragma once

#include <cstdint>

namespace myelin {

// X(enum name, MyelinError code, default message)
#define MYELIN_STATUS_LIST(X)                                                      \
  X(kOk, "OK", "ok")                                                               \
  X(kInvalidArgument, "ERR_INVALID_ARGUMENT", "invalid argument")                  \
  X(kFull, "ERR_FULL", "ring is full")                                             \
  X(kEmpty, "ERR_EMPTY", "ring is empty")                                          \
  X(kClosed, "ERR_CLOSED", "closed")                                               \
  X(kOutOfMemory, "ERR_OUT_OF_MEMORY", "out of memory")                            \
  X(kMalformedJson, "ERR_INVALID_JSON", "malformed JSON")                          \
  X(kTruncatedJson, "ERR_INVALID_JSON", "truncated JSON")                          \
  X(kInvalidUtf8, "ERR_INVALID_UTF8", "invalid UTF-8")                             \
  X(kNotAnObject, "ERR_INVALID_JSON", "JSON document is not an object")           \
  X(kInvalidSubject, "ERR_INVALID_ARGUMENT", "invalid subject")                    \
  X(kSubjectTooLong, "ERR_INVALID_ARGUMENT", "subject longer than 1 KiB")          \
  X(kNotFound, "ERR_NOT_FOUND", "not found")                                       \
  X(kUnsupported, "ERR_UNSUPPORTED", "not supported on this system")               \
  X(kPermissionDenied, "ERR_PERMISSION_DENIED", "permission denied")               \
  X(kTimedOut, "ERR_TIMED_OUT", "timed out")                                       \
  X(kInternal, "ERR_INTERNAL", "internal error")                                   \
  X(kResourceExhausted, "ERR_RESOURCE_EXHAUSTED", "the system refused a thread or another resource") \
  X(kListenFailed, "ERR_GATEWAY_LISTEN", "could not bind or listen on the address") \
  X(kRateLimited, "ERR_RATE_LIMITED", "rate limit passed")

enum class Status : int32_t {
#define MYELIN_STATUS_ENUM(name, code, msg) name,
  MYELIN_STATUS_LIST(MYELIN_STATUS_ENUM)
#undef MYELIN_STATUS_ENUM
};

// Stable MyelinError code for a status ("ERR_..."); never null.
const char* StatusCode(Status s) noexcept;
// Short human message for a status; never null.
const char* StatusMessage(Status s) noexcept;

inline bool Ok(Status s) noexcept { return s == Status::kOk; }

}  // namespace myelin
