// Incremental Server-Sent Events parser following the WHATWG "event stream
// interpretation" rules (HTML Living Standard, 9.2.6), bytes in, events out.
//
// How it stays linear: it scans bytes for CR/LF (UTF-8 never uses those byte values
// inside a multi-byte character, so a byte scan is safe), processes complete lines
// straight out of the caller's chunk, and copies only the unterminated tail into a
// doubling ByteAccumulator. Each line is decoded once, whole, so a character split
// across chunks is never decoded in halves; this is byte-for-byte what a streaming
// UTF-8 decode of the whole stream gives, because a line terminator (ASCII) ends any
// incomplete sequence with U+FFFD in both.
//
// CR handling: a CR ends its line at once; if it was the chunk's last byte, the parser
// remembers to drop a LF that opens the next chunk (CRLF split across reads). This is
// the same result as waiting for the next chunk, without holding an event back.
//
// Spec points worth naming:
// - A UTF-8 BOM is skipped only at the very start of the stream (it may arrive split).
// - `data` lines are joined with "\n"; a block without any `data` line dispatches
//   nothing (and resets the event type), exactly as the spec's "data buffer is empty".
// - `id` sets the last event ID, which persists across events until another `id`
//   changes it (an empty `id:` clears it); an `id` value containing NUL is ignored.
//   Events carry `id` when the last event ID is non-empty.
// - `retry` is taken only when its value is ASCII digits; it updates
//   `reconnectionTime`, calls `onRetry`, and rides on the next dispatched event.
// - At end of stream an unterminated event is discarded; end() says whether there was one.
import { MyelinError } from '../../errors.js';
import { ByteAccumulator } from './byte-accumulator.js';

export interface SseEvent {
  /** The `event:` field; absent for the default type ("message"). */
  event?: string;
  data: string;
  /** The last event ID at dispatch time, when non-empty. */
  id?: string;
  /** A valid `retry:` value (ms) seen in this event's block. */
  retry?: number;
}

export interface SseParserOptions {
  /** Bytes one event may hold (its field lines plus an unterminated line) before
   * feed() throws ERR_AI_UPSTREAM. Default 16 MiB. */
  maxEventBytes?: number;
  /** Called for each comment line (`:` ...), with the text after the colon. Keep-alives
   * arrive here; a watchdog can count them without treating them as content. */
  onComment?: (text: string) => void;
  /** Called when a valid `retry:` field arrives. */
  onRetry?: (ms: number) => void;
}

export const DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;
const NO_EVENTS: readonly SseEvent[] = Object.freeze([]);

export class SseParser {
  readonly #max: number;
  readonly #onComment: ((text: string) => void) | undefined;
  readonly #onRetry: ((ms: number) => void) | undefined;
  // ignoreBOM: the stream-start BOM is handled here; a U+FEFF at the start of a later
  // line is content and must survive (each decode() call is a fresh decode).
  readonly #decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  readonly #tail = new ByteAccumulator();

  #atStart = true;
  #bomHeld: Uint8Array | null = null;
  #skipLF = false;
  #data: string[] = [];
  #eventType = '';
  #lastEventId = '';
  #retry: number | undefined = undefined;
  #reconnectionTime: number | undefined = undefined;
  #dirty = false; // a field line arrived since the last blank line
  #eventBytes = 0;
  #comments = 0;
  #events = 0;
  #out: SseEvent[] | null = null;
  #failed: MyelinError | null = null;
  #ended = false;

  constructor(options: SseParserOptions = {}) {
    const max = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) {
      throw new MyelinError('ERR_INVALID_ARGUMENT', `SseParser: maxEventBytes must be a positive integer, got ${String(max)}`);
    }
    if (options.onComment !== undefined && typeof options.onComment !== 'function') {
      throw new MyelinError('ERR_INVALID_ARGUMENT', 'SseParser: onComment must be a function');
    }
    if (options.onRetry !== undefined && typeof options.onRetry !== 'function') {
      throw new MyelinError('ERR_INVALID_ARGUMENT', 'SseParser: onRetry must be a function');
    }
    this.#max = max;
    this.#onComment = options.onComment;
    this.#onRetry = options.onRetry;
  }

  /** Comment lines seen so far (keep-alives). */
  get comments(): number {
    return this.#comments;
  }

  /** Events dispatched so far. */
  get events(): number {
    return this.#events;
  }

  /** The last event ID buffer ('' when none). */
  get lastEventId(): string {
    return this.#lastEventId;
  }

  /** The latest valid `retry:` value, if any. */
  get reconnectionTime(): number | undefined {
    return this.#reconnectionTime;
  }

  /**
   * Feeds the next chunk (any split) and returns the events it completed, in order.
   * Throws ERR_AI_UPSTREAM when an event outgrows maxEventBytes; the parser then stays
   * failed and every later feed() throws the same error.
   */
  feed(chunk: Uint8Array): readonly SseEvent[] {
    if (this.#failed) throw this.#failed;
    if (this.#ended) throw new MyelinError('ERR_INVALID_ARGUMENT', 'SseParser: feed() after end()');
    if (!(chunk instanceof Uint8Array)) {
      throw new MyelinError('ERR_INVALID_ARGUMENT', 'SseParser: feed() expects a Uint8Array');
    }
    let c = chunk;
    let i = 0;
    if (this.#atStart) {
      if (this.#bomHeld) {
        const joined = new Uint8Array(this.#bomHeld.length + c.length);
        joined.set(this.#bomHeld);
        joined.set(c, this.#bomHeld.length);
        c = joined;
        this.#bomHeld = null;
      }
      if (c.length < 3 && isBomPrefix(c)) {
        if (c.length > 0) this.#bomHeld = c.slice();
        return NO_EVENTS;
      }
      this.#atStart = false;
      if (c[0] === 0xef && c[1] === 0xbb && c[2] === 0xbf) i = 3;
    }
    const n = c.length;
    if (this.#skipLF && i < n) {
      if (c[i] === LF) i++;
      this.#skipLF = false;
    }
    this.#out = null;
    try {
      while (i < n) {
        let j = i;
        while (j < n) {
          const b = c[j];
          if (b === LF || b === CR) break;
          j++;
        }
        if (j === n) {
          this.#checkSize(this.#tail.length + (n - i));
          this.#tail.append(c, i, n);
          break;
        }
        if (this.#tail.length > 0) {
          this.#checkSize(this.#tail.length + (j - i));
          this.#tail.append(c, i, j);
          const line = this.#tail.view();
          this.#line(line, 0, line.length);
          this.#tail.reset();
        } else {
          this.#checkSize(j - i);
          this.#line(c, i, j);
        }
        if (c[j] === CR) {
          if (j + 1 < n) {
            if (c[j + 1] === LF) j++;
          } else {
            this.#skipLF = true;
          }
        }
        i = j + 1;
      }
    } catch (err) {
      if (err instanceof MyelinError && err.code === 'ERR_AI_UPSTREAM') {
        this.#failed = err;
        this.#clearEvent();
        this.#tail.reset();
      }
      throw err;
    }
    const out = this.#out;
    this.#out = null;
    return out ?? NO_EVENTS;
  }

  /**
   * Ends the stream. Per the spec, an event without its closing blank line is discarded;
   * returns true when one was pending (some field line, or an unterminated line), which
   * a caller uses to detect a truncated stream. Later feed() calls throw.
   */
  end(): boolean {
    if (this.#ended) return false;
    this.#ended = true;
    const pending = this.#dirty || this.#tail.length > 0 || this.#bomHeld !== null;
    this.#clearEvent();
    this.#tail.reset();
    this.#bomHeld = null;
    return pending && this.#failed === null;
  }

  #checkSize(lineBytes: number): void {
    if (this.#eventBytes + lineBytes > this.#max) {
      throw new MyelinError(
        'ERR_AI_UPSTREAM',
        `SSE event exceeds maxEventBytes (${this.#max} bytes); the upstream stream was rejected`,
        { limit: this.#max },
      );
    }
  }

  #line(buf: Uint8Array, s: number, e: number): void {
    if (s === e) {
      this.#dispatch();
      return;
    }
    if (buf[s] === COLON) {
      this.#comments++;
      if (this.#onComment) this.#onComment(this.#decoder.decode(buf.subarray(s + 1, e)));
      return;
    }
    this.#dirty = true;
    let k = s;
    while (k < e && buf[k] !== COLON) k++;
    const nameLen = k - s;
    let v = k < e ? k + 1 : e;
    if (v < e && buf[v] === SPACE) v++;
    if (nameLen === 4) {
      // data
      if (buf[s] === 0x64 && buf[s + 1] === 0x61 && buf[s + 2] === 0x74 && buf[s + 3] === 0x61) {
        this.#data.push(v === e ? '' : this.#decoder.decode(buf.subarray(v, e)));
        this.#eventBytes += e - s + 1;
      }
    } else if (nameLen === 5) {
      if (buf[s] === 0x65 && buf[s + 1] === 0x76 && buf[s + 2] === 0x65 && buf[s + 3] === 0x6e && buf[s + 4] === 0x74) {
        // event
        this.#eventType = this.#decoder.decode(buf.subarray(v, e));
        this.#eventBytes += e - s + 1;
      } else if (buf[s] === 0x72 && buf[s + 1] === 0x65 && buf[s + 2] === 0x74 && buf[s + 3] === 0x72 && buf[s + 4] === 0x79) {
        // retry: ASCII digits only, else ignored
        if (v === e) return;
        let ms = 0;
        for (let p = v; p < e; p++) {
          const d = buf[p] - 0x30;
          if (d < 0 || d > 9) return;
          ms = ms * 10 + d;
        }
        this.#retry = ms;
        this.#reconnectionTime = ms;
        if (this.#onRetry) this.#onRetry(ms);
      }
    } else if (nameLen === 2) {
      if (buf[s] === 0x69 && buf[s + 1] === 0x64) {
        // id: ignored when it contains NUL
        for (let p = v; p < e; p++) if (buf[p] === 0) return;
        this.#lastEventId = this.#decoder.decode(buf.subarray(v, e));
      }
    }
    // Any other field name is ignored.
  }

  #dispatch(): void {
    if (this.#data.length === 0) {
      this.#clearEvent();
      return;
    }
    const data = this.#data.length === 1 ? this.#data[0] : this.#data.join('\n');
    const ev: SseEvent = { data };
    if (this.#eventType !== '') ev.event = this.#eventType;
    if (this.#lastEventId !== '') ev.id = this.#lastEventId;
    if (this.#retry !== undefined) ev.retry = this.#retry;
    this.#clearEvent();
    this.#events++;
    (this.#out ??= []).push(ev);
  }

  #clearEvent(): void {
    if (this.#data.length > 0) this.#data = [];
    this.#eventType = '';
    this.#retry = undefined;
    this.#dirty = false;
    this.#eventBytes = 0;
  }
}

function isBomPrefix(c: Uint8Array): boolean {
  return (c.length < 1 || c[0] === 0xef) && (c.length < 2 || c[1] === 0xbb);
}
