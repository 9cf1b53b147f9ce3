// Per-request controls of the upstream simulator, read from `x-sim-*` request headers.
// This is the documented set (also printed by `myelin simulate`):
//
//   x-sim-fault: a comma-separated list, at most one status fault and one stream-end fault
//     status faults (answer instead of content, in the provider's error shape):
//       429       rate limited (OpenAI 429 rate_limit_exceeded, Anthropic 429 rate_limit_error, Ollama 429)
//       quota     quota exhausted (OpenAI 429 insufficient_quota; Anthropic 429 with
//                 error.details.error_code enforced_spend_limit_reached; Ollama 429)
//       billing   Anthropic 402 billing_error (OpenAI and Ollama: as `quota`)
//       401       authentication error (the key is never echoed)
//       500 502 503   server errors
//       529       overloaded (Anthropic 529 overloaded_error; OpenAI and Ollama 503)
//     stream-end faults (after x-sim-fault-after content tokens; default half of them, at least 1):
//       midstream-error  an error frame after content on the 200 (OpenAI `data: {"error":...}`,
//                        Anthropic `event: error` overloaded_error, Ollama `{"error":...}` line), then end
//       truncate         end the response cleanly without the terminator ([DONE], message_stop, done:true);
//                        non-streaming: half the body, then the connection is destroyed
//       reset            destroy the connection mid-stream (broken chunked encoding)
//       stall            headers, then silence until the client goes away or the simulator closes;
//                        without x-sim-fault-after nothing is sent after the headers
//     and, combinable with any of them:
//       split-utf8       every write that holds a multi-byte character is cut inside it, the two
//                        halves sent as separate writes (separate HTTP chunks)
//   x-sim-fault-after: N      content tokens before a stream-end fault
//   x-sim-retry-after: N | date:N | <HTTP date> | none
//                             retry-after on 429/503/529 as seconds, as an HTTP date N s ahead,
//                             as the given date, or omitted (OpenAI also gets retry-after-ms
//                             unless x-sim-retry-after-ms or the date form says otherwise)
//   x-sim-retry-after-ms: N   OpenAI retry-after-ms value
//   x-sim-should-retry: true|false   sets x-should-retry on the response
//   x-sim-seed: N             content seed (default: the simulator's seed)
//   x-sim-tokens: N           completion length in tokens (capped by the request's max tokens)
//   x-sim-latency-ms: N       delay before the first byte, instead of the simulator's
//   x-sim-tokens-per-s: N     streaming pace, instead of the simulator's (0: unpaced)
//   x-sim-tool-calls: N       parallel tool calls when the request offers tools (default 1)
//   x-sim-keepalive-ms: N     during a stall, an SSE comment (OpenAI) or a ping event
//                             (Anthropic) every N ms
//
// A malformed control header is answered with 400 in the provider's shape, naming the header.

export const STATUS_FAULTS = ['429', 'quota', 'billing', '401', '500', '502', '503', '529'] as const;
export const END_FAULTS = ['midstream-error', 'truncate', 'reset', 'stall'] as const;
export type StatusFault = (typeof STATUS_FAULTS)[number];
export type EndFault = (typeof END_FAULTS)[number];
export type SimFault = StatusFault | EndFault | 'split-utf8';
export const ALL_FAULTS: readonly SimFault[] = [...STATUS_FAULTS, ...END_FAULTS, 'split-utf8'];

export type RetryAfter =
  | { kind: 'seconds'; seconds: number }
  | { kind: 'date'; aheadMs: number }
  | { kind: 'at'; date: string }
  | { kind: 'none' };

export interface RequestControls {
  status?: StatusFault;
  end?: EndFault;
  splitUtf8: boolean;
  faultAfter?: number;
  retryAfter?: RetryAfter;
  retryAfterMs?: number;
  shouldRetry?: 'true' | 'false';
  seed?: number;
  tokens?: number;
  latencyMs?: number;
  tokensPerS?: number;
  toolCalls?: number;
  keepAliveMs?: number;
}

export class ControlError extends Error {}

type Headers = Record<string, string | string[] | undefined>;

function header(h: Headers, name: string): string | undefined {
  const v = h[name];
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v.join(',') : v).trim();
}

function intHeader(h: Headers, name: string, min: number, max: number): number | undefined {
  const v = header(h, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new ControlError(`${name} must be an integer in [${min}, ${max}]`);
  const n = Number(v);
  if (n < min || n > max) throw new ControlError(`${name} must be an integer in [${min}, ${max}]`);
  return n;
}

/** Parses a retry-after control value; also used for the failNext() option. */
export function parseRetryAfter(v: string | number, what = 'x-sim-retry-after'): RetryAfter {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0) throw new ControlError(`${what} must be a non-negative integer of seconds`);
    return { kind: 'seconds', seconds: v };
  }
  const s = v.trim();
  if (s === 'none') return { kind: 'none' };
  if (/^\d+$/.test(s)) return { kind: 'seconds', seconds: Number(s) };
  const m = /^date:(\d+)$/.exec(s);
  if (m) return { kind: 'date', aheadMs: Number(m[1]) * 1000 };
  const t = Date.parse(s);
  if (Number.isNaN(t) || !/[a-z]/i.test(s)) {
    throw new ControlError(`${what} must be seconds, date:<seconds>, an HTTP date or none`);
  }
  return { kind: 'at', date: new Date(t).toUTCString() };
}

/** Reads the x-sim-* headers; throws ControlError naming a malformed one. */
export function parseControls(h: Headers): RequestControls {
  const c: RequestControls = { splitUtf8: false };
  const faults = header(h, 'x-sim-fault');
  if (faults !== undefined && faults !== '') {
    for (const raw of faults.split(',')) {
      const f = raw.trim().toLowerCase();
      if (f === '') continue;
      if (f === 'split-utf8') c.splitUtf8 = true;
      else if ((STATUS_FAULTS as readonly string[]).includes(f)) {
        if (c.status) throw new ControlError('x-sim-fault: at most one status fault');
        c.status = f as StatusFault;
      } else if ((END_FAULTS as readonly string[]).includes(f)) {
        if (c.end) throw new ControlError('x-sim-fault: at most one of midstream-error, truncate, reset, stall');
        c.end = f as EndFault;
      } else {
        throw new ControlError(`x-sim-fault: unknown fault; expected one of ${ALL_FAULTS.join(', ')}`);
      }
    }
  }
  c.faultAfter = intHeader(h, 'x-sim-fault-after', 0, 1_000_000);
  const ra = header(h, 'x-sim-retry-after');
  if (ra !== undefined) c.retryAfter = parseRetryAfter(ra);
  c.retryAfterMs = intHeader(h, 'x-sim-retry-after-ms', 0, 86_400_000);
  const sr = header(h, 'x-sim-should-retry');
  if (sr !== undefined) {
    if (sr !== 'true' && sr !== 'false') throw new ControlError('x-sim-should-retry must be true or false');
    c.shouldRetry = sr;
  }
  c.seed = intHeader(h, 'x-sim-seed', 0, 0xffffffff);
  c.tokens = intHeader(h, 'x-sim-tokens', 0, 1_000_000);
  c.latencyMs = intHeader(h, 'x-sim-latency-ms', 0, 600_000);
  c.tokensPerS = intHeader(h, 'x-sim-tokens-per-s', 0, 10_000_000);
  c.toolCalls = intHeader(h, 'x-sim-tool-calls', 1, 64);
  c.keepAliveMs = intHeader(h, 'x-sim-keepalive-ms', 1, 600_000);
  return c;
}
