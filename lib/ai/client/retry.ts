// Retry policy: which upstream answers may be retried, how long to wait, and the loop
// that runs attempts against one target inside the call's deadline (shared/AI-WIRE.md).
//
// Classification, in order:
//   1. quota / spend / billing (402; 429 insufficient_quota, *_spend_limit_exceeded,
//      Anthropic enforced_spend_limit_reached): never retried, whatever x-should-retry says,
//      because waiting cannot refill a quota and retries would only bill more 429s.
//   2. x-should-retry: true|false from the upstream overrides the rest (OpenAI's SDK rule).
//   3. 429 rate limit, 408, 409, 5xx and 529: retried. 3xx (never followed), 401/403 and
//      other 4xx: not.
// Delay: retry-after-ms, then retry-after (seconds or an HTTP date), then for 429 the
// provider's reset headers, else jittered exponential backoff. A server-given delay is
// honoured even past maxDelayMs (it is the server's instruction); a wait that would end
// past the deadline is not taken, and the last error is thrown instead.
import diagnostics from 'node:diagnostics_channel';
import type { ErrorCode } from '../../internal/codes.js';
import { type AIError, type FailureKind, isRetryable } from './failure.js';
import type { ResolvedRetry } from './options.js';
import type { CallClock } from './overhead.js';

/** Published before each wait: { target, attempt, delayMs, source, code, status }. */
export const retryChannel = diagnostics.channel('myelin:ai:retry');

export interface UpstreamErrorInfo {
  message: string;
  type?: string;
  code?: string;
  /** Anthropic's error.details.error_code. */
  detailCode?: string;
}

export interface Classification {
  code: ErrorCode;
  failure: FailureKind;
  retryable: boolean;
}

export type Headers = Record<string, string | string[] | undefined>;

export function header(h: Headers, name: string): string | undefined {
  const v = h[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v[0] : v;
}

export function isQuota(status: number, info: UpstreamErrorInfo): boolean {
  if (status === 402) return true;
  const words = [info.type, info.code, info.detailCode].filter((s): s is string => typeof s === 'string');
  return words.some((w) => w === 'insufficient_quota' || w === 'billing_error' || /spend_limit/.test(w));
}

export function classify(status: number, info: UpstreamErrorInfo, headers: Headers): Classification {
  if (isQuota(status, info)) return { code: 'ERR_AI_QUOTA', failure: 'quota', retryable: false };
  let c: Classification;
  if (status === 429) c = { code: 'ERR_AI_RATE_LIMITED', failure: 'rate-limit', retryable: true };
  else if (status >= 500) c = { code: 'ERR_AI_UPSTREAM', failure: 'server', retryable: true };
  else if (status === 408) c = { code: 'ERR_AI_UPSTREAM', failure: 'timeout', retryable: true };
  else if (status === 409) c = { code: 'ERR_AI_UPSTREAM', failure: 'client', retryable: true };
  else if (status >= 300 && status < 400) c = { code: 'ERR_AI_UPSTREAM', failure: 'redirect', retryable: false };
  else if (status === 401 || status === 403) c = { code: 'ERR_AI_UPSTREAM', failure: 'auth', retryable: false };
  else c = { code: 'ERR_AI_UPSTREAM', failure: 'client', retryable: false };
  const should = header(headers, 'x-should-retry');
  if (should === 'true') c.retryable = true;
  else if (should === 'false') c.retryable = false;
  return c;
}

/** Parses Go-style durations as OpenAI sends them in x-ratelimit-reset-*: 6s, 12ms, 1m30s, 0.5s, 2h. */
export function parseDuration(s: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    const n = Number(m[1]);
    const unit = m[2];
    total += unit === 'h' ? n * 3_600_000 : unit === 'm' ? n * 60_000 : unit === 's' ? n * 1000 : unit === 'ms' ? n : unit === 'ns' ? n / 1e6 : n / 1000;
    matched = re.lastIndex;
  }
  return matched > 0 && matched === s.length ? total : undefined;
}

export type DelaySource = 'retry-after-ms' | 'retry-after-seconds' | 'retry-after-date' | 'ratelimit-reset' | 'backoff';

/** The wait an upstream asked for, or undefined when it gave none (or gave nonsense). */
export function serverDelay(status: number, headers: Headers, now = Date.now()): { ms: number; source: DelaySource } | undefined {
  const ms = header(headers, 'retry-after-ms');
  if (ms !== undefined && /^\d+(\.\d+)?$/.test(ms.trim())) return { ms: Number(ms), source: 'retry-after-ms' };
  const ra = header(headers, 'retry-after')?.trim();
  if (ra !== undefined && ra !== '') {
    if (/^\d+(\.\d+)?$/.test(ra)) return { ms: Number(ra) * 1000, source: 'retry-after-seconds' };
    const t = Date.parse(ra);
    if (!Number.isNaN(t)) return { ms: Math.max(0, t - now), source: 'retry-after-date' };
  }
  if (status !== 429) return undefined;
  // Reset headers: prefer the limits that are exhausted; when none says 0, the longest reset.
  const resets: Array<{ ms: number; exhausted: boolean }> = [];
  for (const kind of ['requests', 'tokens']) {
    const r = header(headers, `x-ratelimit-reset-${kind}`);
    const d = r === undefined ? undefined : parseDuration(r.trim());
    if (d !== undefined) resets.push({ ms: d, exhausted: header(headers, `x-ratelimit-remaining-${kind}`) === '0' });
  }
  for (const kind of ['requests', 'tokens', 'input-tokens', 'output-tokens']) {
    const r = header(headers, `anthropic-ratelimit-${kind}-reset`);
    const t = r === undefined ? Number.NaN : Date.parse(r);
    if (!Number.isNaN(t)) resets.push({ ms: Math.max(0, t - now), exhausted: header(headers, `anthropic-ratelimit-${kind}-remaining`) === '0' });
  }
  if (resets.length === 0) return undefined;
  const pick = resets.some((r) => r.exhausted) ? resets.filter((r) => r.exhausted) : resets;
  return { ms: Math.max(...pick.map((r) => r.ms)), source: 'ratelimit-reset' };
}

/** Jittered exponential backoff for the wait after attempt `attempt` (1-based): uniform in
 * [min, min(max, min * 2^attempt)], so that clients that failed together spread out. */
export function backoff(attempt: number, r: ResolvedRetry, rand: () => number = Math.random): number {
  const cap = Math.min(r.maxDelayMs, r.minDelayMs * 2 ** attempt);
  return r.minDelayMs + rand() * Math.max(0, cap - r.minDelayMs);
}

export interface RetryLoop<T> {
  retry: ResolvedRetry;
  /** Epoch ms by which everything must be over. */
  deadline: number;
  /** The call's signal (caller's signal and deadline). */
  signal: AbortSignal;
  target: string;
  run: (attempt: number) => Promise<T>;
  rand?: () => number;
  /** The call's overhead clock: backoff sleeps count as waiting, not overhead. */
  clock?: CallClock | undefined;
}

/**
 * Runs attempts until one succeeds, a failure is not retryable, attempts run out or the
 * next wait would pass the deadline. The error thrown carries `attempts` (made on this target).
 */
export async function withRetries<T>(o: RetryLoop<T>): Promise<{ value: T; attempts: number }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return { value: await o.run(attempt), attempts: attempt };
    } catch (err) {
      const e = err as AIError;
      if (err && typeof err === 'object') Object.assign(e, { attempts: attempt });
      if (!isRetryable(err) || attempt >= o.retry.attempts || o.signal.aborted) throw err;
      const given = e.retryAfterMs;
      const delay = given ?? backoff(attempt, o.retry, o.rand);
      if (Date.now() + delay >= o.deadline) throw err;
      if (retryChannel.hasSubscribers) {
        retryChannel.publish({
          target: o.target,
          attempt,
          delayMs: delay,
          source: given !== undefined ? ((e as { retryAfterSource?: DelaySource }).retryAfterSource ?? 'retry-after-ms') : 'backoff',
          code: e.code,
          status: e.status,
        });
      }
      if (o.clock) await o.clock.wait(sleep(delay, o.signal));
      else await sleep(delay, o.signal);
    }
  }
}

/** Sleeps, or rejects with the signal's reason as soon as it fires. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
