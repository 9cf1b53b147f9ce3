// A token bucket refilled continuously at `perMinute` / 60 000 per ms, holding at most
// `burst` (default: the per-minute amount). A take larger than the bucket can ever
// hold waits until the bucket is full, then takes it all and leaves the balance
// negative (a debt later refills pay off): an oversized request is slow, not refused.
import { invalidArgument } from '../../errors.js';

// Refill arithmetic is in floating point: a wait computed to the ms may land a hair short.
const EPSILON = 1e-9;

export interface TokenBucketOptions {
  perMinute: number;
  burst?: number;
  now?: () => number;
}

export class TokenBucket {
  readonly perMinute: number;
  readonly capacity: number;
  readonly #ratePerMs: number;
  readonly #now: () => number;
  #level: number;
  #at: number;

  constructor(options: TokenBucketOptions) {
    const { perMinute, burst = perMinute } = options;
    if (typeof perMinute !== 'number' || !(perMinute > 0) || !Number.isFinite(perMinute)) {
      throw invalidArgument(`perMinute must be a positive finite number, got ${String(perMinute)}`);
    }
    if (typeof burst !== 'number' || !(burst > 0) || !Number.isFinite(burst)) {
      throw invalidArgument(`burst must be a positive finite number, got ${String(burst)}`);
    }
    this.perMinute = perMinute;
    this.capacity = burst;
    this.#ratePerMs = perMinute / 60_000;
    this.#now = options.now ?? Date.now;
    this.#level = burst;
    this.#at = this.#now();
  }

  /** Tokens available now (negative while in debt). */
  get available(): number {
    this.#refill();
    return this.#level;
  }

  /** Milliseconds until `n` can be taken; 0 when it can be now. */
  waitMs(n: number): number {
    this.#refill();
    const need = Math.min(n, this.capacity);
    if (this.#level >= need - EPSILON) return 0;
    return Math.max(1, Math.ceil((need - this.#level) / this.#ratePerMs));
  }

  /** Takes `n` when waitMs(n) is 0 and returns true; otherwise takes nothing. */
  tryTake(n: number): boolean {
    if (this.waitMs(n) > 0) return false;
    this.#level -= n;
    return true;
  }

  /** Adds (refund) or removes (n < 0, may go into debt) tokens, capped at capacity. */
  adjust(n: number): void {
    this.#refill();
    this.#level = Math.min(this.capacity, this.#level + n);
  }

  #refill(): void {
    const now = this.#now();
    const dt = now - this.#at;
    if (dt > 0) this.#level = Math.min(this.capacity, this.#level + dt * this.#ratePerMs);
    this.#at = now;
  }
}
