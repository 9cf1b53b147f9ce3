// Incremental newline-delimited JSON parser (Ollama's native streaming format).
//
// Lines end at LF; a CR before the LF is dropped; lines holding only whitespace are
// skipped. Like the SSE parser it scans bytes, decodes each line once and whole (so a
// multi-byte character split across chunks decodes correctly) and copies only the
// unterminated tail. A malformed line becomes a MyelinError carrying its 1-based line
// number, never a raw SyntaxError.
import { MyelinError } from '../../errors.js';
import { ByteAccumulator } from './byte-accumulator.js';

export interface NdjsonParserOptions {
  /** Bytes one line may hold before feed() throws ERR_AI_UPSTREAM. Default 16 MiB. */
  maxLineBytes?: number;
}

export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const NONE: readonly never[] = Object.freeze([]);

export class NdjsonParser<T = unknown> {
  readonly #max: number;
  readonly #decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  readonly #tail = new ByteAccumulator();
  #line = 0;
  #values = 0;
  #out: T[] | null = null;
  #failed: MyelinError | null = null;
  #ended = false;

  constructor(options: NdjsonParserOptions = {}) {
    const max = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) {
      throw new MyelinError('ERR_INVALID_ARGUMENT', `NdjsonParser: maxLineBytes must be a positive integer, got ${String(max)}`);
    }
    this.#max = max;
  }

  /** Lines completed so far, blank ones included (the number the next error would name minus one). */
  get lines(): number {
    return this.#line;
  }

  /** Values parsed so far. */
  get values(): number {
    return this.#values;
  }

  /**
   * Feeds the next chunk and returns the values of the lines it completed, in order.
   * Throws ERR_AI_UPSTREAM (fields `line`, and `limit` for an oversized line) on a
   * malformed or oversized line; the parser then stays failed.
   */
  feed(chunk: Uint8Array): readonly T[] {
    if (this.#failed) throw this.#failed;
    if (this.#ended) throw new MyelinError('ERR_INVALID_ARGUMENT', 'NdjsonParser: feed() after end()');
    if (!(chunk instanceof Uint8Array)) {
      throw new MyelinError('ERR_INVALID_ARGUMENT', 'NdjsonParser: feed() expects a Uint8Array');
    }
    const c = chunk;
    const n = c.length;
    let i = 0;
    this.#out = null;
    try {
      while (i < n) {
        let j = c.indexOf(LF, i);
        if (j === -1) {
          this.#checkSize(this.#tail.length + (n - i));
          this.#tail.append(c, i, n);
          break;
        }
        if (this.#tail.length > 0) {
          this.#checkSize(this.#tail.length + (j - i));
          this.#tail.append(c, i, j);
          const line = this.#tail.view();
          this.#parse(line, 0, line.length, false);
          this.#tail.reset();
        } else {
          this.#checkSize(j - i);
          this.#parse(c, i, j, false);
        }
        i = j + 1;
      }
    } catch (err) {
      this.#fail(err);
      throw err;
    }
    const out = this.#out;
    this.#out = null;
    return out ?? NONE;
  }

  /**
   * Ends the stream and returns the value of a last line that had no final LF. If that
   * line is not valid JSON the stream was cut inside it: ERR_AI_STREAM_TRUNCATED.
   */
  end(): readonly T[] {
    if (this.#failed) throw this.#failed;
    if (this.#ended) return NONE;
    this.#ended = true;
    if (this.#tail.length === 0) return NONE;
    this.#out = null;
    try {
      const line = this.#tail.view();
      this.#parse(line, 0, line.length, true);
    } catch (err) {
      this.#fail(err);
      throw err;
    } finally {
      this.#tail.reset();
    }
    const out = this.#out;
    this.#out = null;
    return out ?? NONE;
  }

  #fail(err: unknown): void {
    if (err instanceof MyelinError) this.#failed = err;
    this.#tail.reset();
  }

  #checkSize(bytes: number): void {
    if (bytes > this.#max) {
      throw new MyelinError('ERR_AI_UPSTREAM', `NDJSON line ${this.#line + 1} exceeds maxLineBytes (${this.#max} bytes)`, {
        line: this.#line + 1,
        limit: this.#max,
      });
    }
  }

  #parse(buf: Uint8Array, s: number, e: number, last: boolean): void {
    this.#line++;
    if (e > s && buf[e - 1] === CR) e--;
    // Skip blank lines without decoding them.
    let p = s;
    while (p < e) {
      const b = buf[p];
      if (b !== 0x20 && b !== 0x09 && b !== CR) break;
      p++;
    }
    if (p === e) return;
    let text = this.#decoder.decode(buf.subarray(p, e));
    if (this.#line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    let value: T;
    try {
      value = JSON.parse(text) as T;
    } catch (cause) {
      const line = this.#line;
      // The message names the line and its size, never its content (upstream text may
      // be private); the SyntaxError rides along as `cause` for debugging.
      throw last
        ? new MyelinError('ERR_AI_STREAM_TRUNCATED', `NDJSON stream ended inside line ${line} (${e - s} bytes, not valid JSON)`, {
            line,
            cause,
          })
        : new MyelinError('ERR_AI_UPSTREAM', `malformed NDJSON on line ${line} (${e - s} bytes, not valid JSON)`, { line, cause });
    }
    this.#values++;
    (this.#out ??= []).push(value);
  }
}
