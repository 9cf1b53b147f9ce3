// One upstream stream after its response headers: pulls bytes, feeds the provider's
// decoder, and runs the two watchdogs on the attempt's timer:
// - time to first token: armed when the attempt starts, until the first content event;
// - content idle: re-armed on each content event. Keep-alive comments and `ping`
//   events reach the decoder but add no content, so they never re-arm it.
// The watchdog is paused while the consumer holds parts (between next() calls): a slow
// consumer is not an idle upstream, and undici's backpressure holds the socket meanwhile.
import { MyelinError } from '../../errors.js';
import { aiError, type AIError } from './failure.js';
import type { ChatResult, StreamDecoder } from './providers/provider.js';
import type { AttemptScope } from './scope.js';
import { tooLarge } from './transport.js';
import type { StreamPart } from './types.js';

export class LiveStream {
  readonly #iter: AsyncIterator<Uint8Array>;
  readonly #dec: StreamDecoder;
  readonly #attempt: AttemptScope;
  readonly #idleMs: number;
  readonly #provider: string;
  readonly #maxBytes: number;
  #bytes = 0;
  #seen = 0;
  #ended = false;
  #committed = false;
  /** An error raised by the chunk that also completed parts: thrown after they are handed out. */
  #pendingError: unknown;
  #finished = false;
  /** Parts read while priming, held until the stream is committed. */
  held: StreamPart[] | undefined;
  /** performance.now() when the request went to undici; given only when the client records stages. */
  readonly sentAt: number | undefined;
  /** performance.now() when prime() got the first parts (with sentAt only). */
  firstAt: number | undefined;

  constructor(
    body: AsyncIterable<Uint8Array>,
    dec: StreamDecoder,
    attempt: AttemptScope,
    o: { idleMs: number; maxBytes: number; provider: string; sentAt?: number | undefined },
  ) {
    this.sentAt = o.sentAt;
    this.#iter = body[Symbol.asyncIterator]();
    this.#dec = dec;
    this.#attempt = attempt;
    this.#idleMs = o.idleMs;
    this.#maxBytes = o.maxBytes;
    this.#provider = o.provider;
  }

  /** Reads until the first parts (or the end); failures before then may still fall back. */
  async prime(): Promise<void> {
    this.held = (await this.next()) ?? undefined;
    if (this.held && this.sentAt !== undefined) this.firstAt = performance.now();
    this.#committed = true;
  }

  /** The next parts, or undefined once the stream ended cleanly. */
  async next(): Promise<StreamPart[] | undefined> {
    if (this.#seen > 0) this.#attempt.arm(this.#idleMs, () => this.#timeout());
    try {
      if (this.#pendingError !== undefined) throw this.#pendingError;
      for (;;) {
        const parts = this.#dec.take();
        if (parts) {
          this.#attempt.disarm();
          return parts;
        }
        if (this.#ended) {
          this.#finish();
          return undefined;
        }
        let r: IteratorResult<Uint8Array>;
        try {
          r = await this.#iter.next();
        } catch (err) {
          // A terminator came and only the rest of the body went wrong: the answer is whole.
          if (this.#dec.done) {
            this.#ended = true;
            continue;
          }
          throw err;
        }
        if (r.done) {
          this.#ended = true;
          this.#dec.end();
          continue;
        }
        this.#bytes += r.value.length;
        if (this.#bytes > this.#maxBytes) throw tooLarge(this.#provider, 'stream', this.#maxBytes);
        try {
          this.#dec.feed(r.value);
        } catch (err) {
          // Before commit the parts are dropped so the call can still fall back whole;
          // after it, the consumer gets what arrived before the error frame, then the error.
          if (!this.#committed) throw err;
          const parts = this.#dec.take();
          if (!parts) throw err;
          this.#pendingError = err;
          this.#attempt.disarm();
          return parts;
        }
        if (this.#dec.contentEvents !== this.#seen) {
          this.#seen = this.#dec.contentEvents;
          this.#attempt.arm(this.#idleMs, () => this.#timeout());
        }
      }
    } catch (err) {
      const e = this.#normalize(this.#attempt.reason(err));
      this.#attempt.abort(e);
      this.#attempt.dispose();
      throw e;
    }
  }

  #timeout(): MyelinError {
    return aiError('ERR_AI_TIMEOUT', `${this.#provider}: no stream content for ${this.#idleMs} ms (idleMs)`, { failure: 'timeout', retryable: true, provider: this.#provider });
  }

  #normalize(err: unknown): AIError {
    if (err instanceof MyelinError) {
      const e = err as AIError;
      if (e.code === 'ERR_AI_STREAM_TRUNCATED' && e.retryable === undefined) Object.assign(e, { failure: 'truncated', retryable: true });
      return e;
    }
    // The body broke after the headers (reset, broken chunked encoding): the stream lacks its end.
    const code = (err as { code?: string } | null)?.code;
    if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') return tooLarge(this.#provider, 'stream', this.#maxBytes);
    return aiError('ERR_AI_STREAM_TRUNCATED', `${this.#provider}: the stream broke before its terminator (${code ?? 'connection closed'})`, {
      failure: 'truncated',
      retryable: true,
      provider: this.#provider,
      cause: err,
    });
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#attempt.dispose();
  }

  result(): ChatResult {
    return this.#dec.result();
  }

  /** Stops early (consumer left, or the call failed): aborts the request, which frees the socket. */
  close(reason: unknown): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#attempt.abort(reason);
    this.#attempt.dispose();
  }
}
