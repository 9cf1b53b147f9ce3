// One request/response of the upstream simulator: reading the body under a bound,
// writing a JSON or streamed answer with the requested faults (split-utf8, truncate,
// reset, stall, mid-stream error), pacing tokens, and cancellation. Every wait is tied
// to `signal`, which fires when the client goes away or the simulator closes, so that
// close() never leaves a stream or a timer behind.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleepMs } from 'node:timers/promises';
import type { RequestControls } from './controls.js';

export type Provider = 'openai' | 'anthropic' | 'ollama';

export type ErrorKind =
  | 'invalid_request'
  | 'auth'
  | 'not_found'
  | 'method'
  | 'too_large'
  | 'rate_limit'
  | 'quota'
  | 'billing'
  | 'server'
  | 'bad_gateway'
  | 'unavailable'
  | 'overloaded'
  | 'loading';

/** How a provider shapes what the simulator sends. */
export interface Dialect {
  readonly provider: Provider;
  /** Status and JSON body of an error response. `param` names the offending field. */
  error(kind: ErrorKind, message: string, requestId: string, param?: string): { status: number; body: unknown };
  /** The frame sent by the `midstream-error` fault. */
  midstreamError(): string;
  /** A frame a stalled stream may send to keep the connection warm (none for NDJSON). */
  keepAlive(): string | undefined;
  /** Content-Type of its streams. */
  readonly streamType: string;
}

/** A frame of a streamed answer; `unit` frames carry one content token and are paced. */
export interface Step {
  frame: string | (() => string);
  unit?: boolean;
  /** The first frame of the terminator ([DONE], message_delta, done:true): faults fire here at the latest. */
  tail?: boolean;
}

export class AbortedError extends Error {}

const JSON_TYPE = 'application/json';

/** Bytes read past the limit before the simulator stops reading and drops the connection. */
const DISCARD_FACTOR = 4;

export class Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly dialect: Dialect;
  readonly controls: RequestControls;
  readonly requestId: string;
  readonly signal: AbortSignal;
  /** process.hrtime.bigint() at arrival, for Ollama's nanosecond durations. */
  readonly startedNs: bigint;
  /** Extra response headers (request id, rate limits, retry-after, ...). */
  readonly headers: Record<string, string> = {};
  body: Record<string, unknown> = {};
  /** ns when the first content byte was written (Ollama's eval timing). */
  firstContentNs = 0n;
  /** Set when the answer was cut by a fault; for stats. */
  fault: string | undefined;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    dialect: Dialect,
    controls: RequestControls,
    requestId: string,
    signal: AbortSignal,
  ) {
    this.req = req;
    this.res = res;
    this.dialect = dialect;
    this.controls = controls;
    this.requestId = requestId;
    this.signal = signal;
    this.startedNs = process.hrtime.bigint();
  }

  /**
   * Reads the body. Returns 'too-large' past `max` bytes (reading on, without keeping,
   * up to DISCARD_FACTOR x max so that the client can still read the 413; beyond that
   * the connection is dropped).
   */
  async readBody(max: number): Promise<Buffer | 'too-large'> {
    const declared = Number(this.req.headers['content-length']);
    const chunks: Buffer[] = [];
    let total = 0;
    let over = Number.isFinite(declared) && declared > max;
    if (over && declared > max * DISCARD_FACTOR) {
      this.res.shouldKeepAlive = false;
      return 'too-large';
    }
    for await (const chunk of this.req as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > max) over = true;
      if (over) {
        if (total > max * DISCARD_FACTOR) {
          this.res.shouldKeepAlive = false;
          return 'too-large';
        }
        continue;
      }
      chunks.push(chunk);
    }
    if (over) return 'too-large';
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total);
  }

  /** Answers with the dialect's error shape. */
  async fail(kind: ErrorKind, message: string, param?: string): Promise<void> {
    const { status, body } = this.dialect.error(kind, message, this.requestId, param);
    await this.sendJson(status, body);
  }

  /**
   * A non-streamed answer. Faults: `stall` sends the headers and waits; `truncate` and
   * `reset` send half the body under the full Content-Length and destroy the
   * connection; `split-utf8` cuts a multi-byte character across two writes.
   */
  async sendJson(status: number, value: unknown): Promise<void> {
    const buf = Buffer.from(JSON.stringify(value), 'utf8');
    const end = this.controls.end;
    if (end === 'stall') {
      this.res.writeHead(status, { ...this.headers, 'content-type': JSON_TYPE });
      this.res.flushHeaders();
      this.fault = 'stall';
      await this.stall();
      return;
    }
    this.res.writeHead(status, { ...this.headers, 'content-type': JSON_TYPE, 'content-length': String(buf.length) });
    if (end === 'truncate' || end === 'reset') {
      this.fault = end;
      await this.write(buf.subarray(0, buf.length >> 1));
      await nextTurn();
      this.res.destroy();
      return;
    }
    await this.write(buf);
    this.res.end();
  }

  /**
   * A streamed answer: headers at once, then the steps, paced at `tokensPerS` content
   * units per second (0: as fast as the socket takes them), with the end fault fired
   * after `faultAfter` units (default half of them, at least one).
   */
  async stream(steps: Step[], tokensPerS: number): Promise<void> {
    const c = this.controls;
    this.res.writeHead(200, {
      ...this.headers,
      'content-type': this.dialect.streamType,
      'cache-control': 'no-cache',
    });
    this.res.flushHeaders();
    const units = steps.reduce((n, s) => n + (s.unit ? 1 : 0), 0);
    let faultAt = -1;
    if (c.end) {
      if (c.faultAfter !== undefined) faultAt = c.faultAfter;
      else if (c.end === 'stall') faultAt = -2; // before anything: headers, then silence
      else faultAt = Math.max(1, units >> 1);
    }
    if (faultAt === -2) {
      await this.#fireEnd();
      return;
    }
    const interval = tokensPerS > 0 ? 1000 / tokensPerS : 0;
    const t0 = performance.now();
    let sent = 0;
    for (const step of steps) {
      if (faultAt >= 0 && ((step.unit && sent === faultAt) || step.tail)) {
        await this.#fireEnd();
        return;
      }
      if (step.unit) {
        if (interval > 0 && sent > 0) {
          const wait = t0 + sent * interval - performance.now();
          if (wait >= 1) await this.sleep(wait);
        }
        if (sent === 0) this.firstContentNs = process.hrtime.bigint();
        sent++;
      }
      await this.write(typeof step.frame === 'string' ? step.frame : step.frame());
    }
    this.res.end();
  }

  async #fireEnd(): Promise<void> {
    const end = this.controls.end;
    this.fault = end;
    if (end === 'midstream-error') {
      await this.write(this.dialect.midstreamError());
      this.res.end();
    } else if (end === 'truncate') {
      this.res.end();
    } else if (end === 'reset') {
      await nextTurn();
      this.res.destroy();
    } else {
      await this.stall();
    }
  }

  /** Waits until the client leaves or the simulator closes, sending keep-alives if asked. */
  async stall(): Promise<void> {
    const every = this.controls.keepAliveMs;
    const frame = this.dialect.keepAlive();
    let timer: NodeJS.Timeout | undefined;
    if (every !== undefined && frame !== undefined) {
      timer = setInterval(() => {
        if (!this.res.destroyed) this.res.write(frame);
      }, every);
    }
    try {
      await new Promise<void>((resolve) => {
        if (this.signal.aborted) resolve();
        else this.signal.addEventListener('abort', () => resolve(), { once: true });
      });
    } finally {
      if (timer) clearInterval(timer);
    }
    this.res.destroy();
  }

  /** Writes, honouring backpressure; with split-utf8, cuts the first multi-byte character in two writes. */
  async write(data: string | Buffer): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (this.controls.splitUtf8) {
      let k = 0;
      while (k < buf.length && buf[k] < 0xc0) k++;
      if (k < buf.length) {
        await this.#raw(buf.subarray(0, k + 1));
        // The response socket is corked until the next tick; yielding a full turn makes
        // the first half its own write (and, chunked, its own HTTP chunk).
        await nextTurn();
        await this.#raw(buf.subarray(k + 1));
        return;
      }
    }
    await this.#raw(buf);
  }

  async #raw(buf: Buffer): Promise<void> {
    if (this.signal.aborted || this.res.destroyed) throw new AbortedError('client gone');
    if (buf.length === 0) return;
    if (!this.res.write(buf)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          this.signal.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          this.res.off('drain', onDrain);
          reject(new AbortedError('client gone'));
        };
        this.res.once('drain', onDrain);
        this.signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  async sleep(ms: number): Promise<void> {
    if (ms <= 0) return;
    try {
      await sleepMs(ms, undefined, { signal: this.signal });
    } catch {
      throw new AbortedError('client gone');
    }
  }
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** What the provider handlers need from the simulator. */
export interface SimSettings {
  readonly seed: number;
  readonly defaultTokens: number;
  readonly tokensPerS: number;
  readonly embeddingDims: number;
  readonly models: readonly string[];
}

export interface SimHooks {
  readonly settings: SimSettings;
  /**
   * Applies scripted, header, rate-limit and random faults, the rate-limit headers and
   * the first-byte latency. Returns true when it answered (an error), false to go on.
   */
  gate(ex: Exchange): Promise<boolean>;
  /** Counts tokens for stats and the token rate-limit window. */
  countTokens(ex: Exchange, input: number, output: number): void;
}

/** The seed, completion length and pace for one request. */
export function seedOf(ex: Exchange, s: SimSettings): number {
  return ex.controls.seed ?? s.seed;
}
export function tokensOf(ex: Exchange, s: SimSettings): number {
  return ex.controls.tokens ?? s.defaultTokens;
}
export function paceOf(ex: Exchange, s: SimSettings): number {
  return ex.controls.tokensPerS ?? s.tokensPerS;
}

/** A positive integer field, or undefined when absent; 'bad' when present and not one. */
export function positiveInt(v: unknown): number | undefined | 'bad' {
  if (v === undefined || v === null) return undefined;
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 ? v : 'bad';
}
