// The one table of MyelinError codes, in two parts:
//   PublicErrorCodes  the contract (shared/API.md's error table, restated in README.md's
//                     "Errors" table); lib/ throws these.
//   NativeErrorCodes  the codes of native statuses (native/src/common/status.h) that are
//                     not public codes; the binding throws them, and lib/ may rethrow.
// test/errors.test.ts checks both directions: every code native can produce is here,
// every public code is documented in README.md, every code lib/ names is here, and every
// native code here is produced by some native status. The status kOk maps to "OK",
// which is never an error and so is not a code here.
export const PublicErrorCodes = {
  ERR_INVALID_ARGUMENT: 'bad option, bad subject or wrong type',
  ERR_BUS_FULL: "publish under overflow: 'reject' when the lane is full",
  ERR_BUS_CLOSED: 'publish or subscribe after close()',
  ERR_REQUEST_TIMEOUT: 'bus.request got no reply in time',
  ERR_NO_RESPONDERS: 'bus.request to a subject nobody serves',
  ERR_AI_RATE_LIMITED: 'upstream 429 after retries, or a local limit that cannot be met before the deadline',
  ERR_AI_QUOTA: 'upstream quota or spend exhausted',
  ERR_AI_TIMEOUT: 'request deadline, time-to-first-token or stream-idle timeout passed',
  ERR_AI_UPSTREAM: 'upstream error',
  ERR_AI_CIRCUIT_OPEN: "every target's breaker is open",
  ERR_AI_STREAM_TRUNCATED: 'a stream ended without its terminator',
  ERR_ABORTED: "the caller's AbortSignal fired",
  ERR_AI_CLOSED: 'a call on an AIClient after close()',
  ERR_WORKER_EXITED: 'the worker thread handling the event exited or crashed',
  ERR_HANDLER_FAILED: 'the handler that answered a request threw or rejected (cause attached)',
  ERR_NATIVE_UNAVAILABLE: 'the native addon could not be loaded',
  ERR_GATEWAY_LISTEN: 'the gateway could not bind its address (in use, permission)',
  ERR_RATE_LIMITED: 'a gateway client passed its publish rate limit',
  ERR_TRANSPORT_UNAVAILABLE: 'a cluster transport cannot reach its engine within the deadline',
} as const;

export const NativeErrorCodes = {
  ERR_FULL: 'a ring or pool is full',
  ERR_EMPTY: 'a ring is empty',
  ERR_CLOSED: 'the handle or ring is closed',
  ERR_OUT_OF_MEMORY: 'native allocation failed',
  ERR_INVALID_JSON: 'malformed, truncated or non-object JSON',
  ERR_INVALID_UTF8: 'text is not valid UTF-8',
  ERR_NOT_FOUND: 'no such entry',
  ERR_UNSUPPORTED: 'not supported on this system',
  ERR_PERMISSION_DENIED: 'the operating system refused',
  ERR_TIMED_OUT: 'a native wait timed out',
  ERR_INTERNAL: 'a bug in myelin: please report it',
  ERR_RESOURCE_EXHAUSTED: 'the system refused a native thread or another resource',
} as const;

export const ErrorCodes = { ...PublicErrorCodes, ...NativeErrorCodes } as const;

export type ErrorCode = keyof typeof ErrorCodes;

/** Whether `code` is a MyelinError code (an own key of the table, not an inherited name like 'toString'). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ErrorCodes, code);
}
