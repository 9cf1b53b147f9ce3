// Requests-per-minute and tokens-per-minute for one key (a provider or a target), in
// this process. Reserve the estimate (prompt tokens + maxTokens) before the call and
// settle with the real usage after it (shared/AI-WIRE.md failure case 6), so that
// concurrent requests cannot overshoot the limit between start and finish.
import { invalidArgument } from '../../errors.js';
import { AdmissionQueue, type Limiter, type Reservation, type ReserveOptions } from './admission-queue.js';
import { TokenBucket } from './token-bucket.js';

export type { Limiter, Reservation, ReserveOptions, LimitPriority } from './admission-queue.js';

export interface RateLimiterOptions {
  /** Requests per minute; omitted: unlimited. Burst = rpm. */
  rpm?: number;
  /** Tokens per minute; omitted: unlimited. Burst = tpm. */
  tpm?: number;
  /** Names the key in errors and metrics. */
  key?: string;
  now?: () => number;
}

export class RateLimiter implements Limiter {
  readonly key: string;
  readonly #rpm: TokenBucket | undefined;
  readonly #tpm: TokenBucket | undefined;
  readonly #queue: AdmissionQueue;

  constructor(options: RateLimiterOptions = {}) {
    const now = options.now ?? Date.now;
    if (options.rpm === undefined && options.tpm === undefined) throw invalidArgument('RateLimiter needs rpm, tpm or both');
    this.key = options.key ?? 'default';
    this.#rpm = options.rpm === undefined ? undefined : new TokenBucket({ perMinute: options.rpm, now });
    this.#tpm = options.tpm === undefined ? undefined : new TokenBucket({ perMinute: options.tpm, now });
    const rpm = this.#rpm;
    const tpm = this.#tpm;
    this.#queue = new AdmissionQueue(
      {
        take(tokens: number): number {
          const wait = Math.max(rpm?.waitMs(1) ?? 0, tokens > 0 ? (tpm?.waitMs(tokens) ?? 0) : 0);
          if (wait > 0) return wait;
          rpm?.adjust(-1);
          tpm?.adjust(-tokens);
          return 0;
        },
        adjust(requests: number, tokens: number): void {
          if (requests !== 0) rpm?.adjust(requests);
          if (tokens !== 0) tpm?.adjust(tokens);
        },
      },
      now,
      this.key,
    );
  }

  reserve(options?: ReserveOptions): Promise<Reservation> {
    return this.#queue.reserve(options);
  }

  get pending(): number {
    return this.#queue.pending;
  }

  /** Requests and tokens available now (undefined: not limited). */
  available(): { requests: number | undefined; tokens: number | undefined } {
    return { requests: this.#rpm?.available, tokens: this.#tpm?.available };
  }

  close(): void {
    this.#queue.close();
  }
}
