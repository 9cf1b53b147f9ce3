// How the client describes a failed upstream call. Every error is a MyelinError whose
// `code` is public (shared/API.md); these extra fields tell the retry loop, the
// dispatcher's fallback and the circuit breakers' guard (guards.ts) what happened:
//   failure    what kind of failure (breakers count only server, timeout, connection, truncated:
//              countsAsBreakerFailure, the one classifier the breakers use)
//   retryable  whether another attempt may succeed
//   status, provider, target, requestId, retryAfterMs, attempts
// Messages never quote keys, URLs or request headers; upstream text is redacted first.
import { MyelinError } from '../../errors.js';
import type { ErrorCode } from '../../internal/codes.js';

export type FailureKind =
  | 'rate-limit'
  | 'quota'
  | 'server'
  | 'timeout'
  | 'connection'
  | 'truncated'
  | 'client'
  | 'auth'
  | 'redirect'
  | 'too-large'
  | 'aborted'
  | 'deadline'
  | 'circuit-open'
  | 'invalid-response';

export interface FailureFields {
  failure: FailureKind;
  retryable: boolean;
  provider?: string;
  target?: string;
  status?: number;
  requestId?: string;
  retryAfterMs?: number;
  /** Which header retryAfterMs came from (diagnostics). */
  retryAfterSource?: string;
  /** The provider's error type and code, when it sent them (e.g. rate_limit_error, insufficient_quota). */
  type?: string;
  upstreamCode?: string;
  cause?: unknown;
}

export interface AIError extends MyelinError {
  failure?: FailureKind;
  retryable?: boolean;
  provider?: string;
  target?: string;
  status?: number;
  requestId?: string;
  retryAfterMs?: number;
  attempts?: number;
}

export function aiError(code: ErrorCode, message: string, fields: FailureFields): AIError {
  const f: Record<string, unknown> = { ...fields };
  for (const k of Object.keys(f)) if (f[k] === undefined) delete f[k];
  return new MyelinError(code, message, f) as AIError;
}

export function isRetryable(err: unknown): boolean {
  return err instanceof MyelinError && (err as AIError).retryable === true;
}

/**
 * Failures a circuit breaker counts (shared/API.md: 5xx, 529, timeouts, connection
 * errors; a truncated stream is a connection failure mid-answer). Reads only the
 * `failure` kind that retry.ts classify(), the transport and the stream readers set,
 * so a target's own timeout ('timeout') is told apart from the caller's deadline
 * ('deadline') and an abort ('aborted'), which never count.
 */
export function countsAsBreakerFailure(err: unknown): boolean {
  const f = (err as AIError | undefined)?.failure;
  return f === 'server' || f === 'timeout' || f === 'connection' || f === 'truncated';
}

/** Fills provider and target on an error raised below the router (parsers, decoders). */
export function tag(err: unknown, provider: string, target: string): unknown {
  if (err instanceof MyelinError) {
    const e = err as AIError;
    if (e.provider === undefined) Object.assign(e, { provider });
    if (e.target === undefined) Object.assign(e, { target });
  }
  return err;
}
