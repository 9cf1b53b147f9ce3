// The waiting room shared by the local and the Redis rate limiters.
//
// Waiters are served strictly in order: priority first, then arrival (FIFO). Only the
// head may take; when it cannot, nobody behind it may either, so a big request is not
// starved by a stream of small ones. The head is retried after the wait its backend
// names. A waiter leaves with ERR_AI_RATE_LIMITED at its deadline (or at once, when it
// is the head and the backend's wait already runs past its deadline) and with
// ERR_ABORTED when its signal fires.
import { MyelinError, invalidArgument } from '../../errors.js';

export type LimitPriority = 'critical' | 'high' | 'normal' | 'low' | number;

export interface ReserveOptions {
  /** Token estimate: prompt tokens + maxTokens. Default 0 (requests only). */
  tokens?: number;
  /** Higher first; names map critical 3, high 2, normal 1, low 0. Default 'normal'. */
  priority?: LimitPriority;
  /** Absolute clock time (ms) after which the request gives up waiting. */
  deadline?: number;
  signal?: AbortSignal;
}

export interface Reservation {
  /** Tokens reserved (the estimate, until settled). */
  readonly tokens: number;
  /** Reports the real usage; the difference goes back to (or is taken from) the bucket. */
  settle(actualTokens: number): Promise<void>;
  /** The call did not happen: the request and its tokens go back. */
  cancel(): Promise<void>;
}

/** What RateLimiter and RedisRateLimiter both offer the AIClient. */
export interface Limiter {
  reserve(options?: ReserveOptions): Promise<Reservation>;
  /** Waiters not yet admitted. */
  readonly pending: number;
  /** Rejects every waiter with ERR_ABORTED and refuses new ones. */
  close(): void;
}

/** The store behind a queue: take, or say how long to wait; give back. */
export interface AdmissionBackend {
  /** 0: one request and `tokens` were taken. Otherwise ms until it may succeed. */
  take(tokens: number): number | Promise<number>;
  /** Returns `requests` and `tokens` (negative: takes them, debt allowed). */
  adjust(requests: number, tokens: number): void | Promise<void>;
}

const PRIORITIES: Record<string, number> = { critical: 3, high: 2, normal: 1, low: 0 };

interface Waiter {
  tokens: number;
  priority: number;
  seq: number;
  deadline: number | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  done: boolean;
  resolve: (r: Reservation) => void;
  reject: (e: unknown) => void;
}

export function normalizeReserve(options: ReserveOptions): { tokens: number; priority: number } {
  const tokens = options.tokens ?? 0;
  if (typeof tokens !== 'number' || !(tokens >= 0) || !Number.isFinite(tokens)) {
    throw invalidArgument(`reserve: tokens must be a finite number >= 0, got ${String(tokens)}`);
  }
  const p = options.priority ?? 'normal';
  const priority = typeof p === 'number' ? p : PRIORITIES[p];
  if (typeof priority !== 'number' || Number.isNaN(priority)) {
    throw invalidArgument(`reserve: priority must be critical|high|normal|low or a number, got ${String(p)}`);
  }
  if (options.deadline !== undefined && (typeof options.deadline !== 'number' || Number.isNaN(options.deadline))) {
    throw invalidArgument(`reserve: deadline must be a clock time in ms, got ${String(options.deadline)}`);
  }
  return { tokens, priority };
}

export class AdmissionQueue {
  readonly #backend: AdmissionBackend;
  readonly #now: () => number;
  readonly #label: string;
  readonly #queue: Waiter[] = [];
  #seq = 0;
  #pumping = false;
  #again = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(backend: AdmissionBackend, now: () => number, label: string) {
    this.#backend = backend;
    this.#now = now;
    this.#label = label;
  }

  get pending(): number {
    return this.#queue.length;
  }

  reserve(options: ReserveOptions = {}): Promise<Reservation> {
    let norm: { tokens: number; priority: number };
    try {
      norm = normalizeReserve(options);
    } catch (err) {
      return Promise.reject(err);
    }
    const { signal, deadline } = options;
    if (this.#closed) return Promise.reject(new MyelinError('ERR_ABORTED', `rate limiter ${this.#label} is closed`));
    if (signal?.aborted) return Promise.reject(aborted(signal));
    if (deadline !== undefined && deadline <= this.#now()) {
      return Promise.reject(this.#limited(norm.tokens, 'its deadline has already passed'));
    }
    return new Promise<Reservation>((resolve, reject) => {
      const w: Waiter = {
        ...norm,
        seq: this.#seq++,
        deadline,
        signal,
        onAbort: undefined,
        deadlineTimer: undefined,
        done: false,
        resolve,
        reject,
      };
      if (signal !== undefined) {
        w.onAbort = () => this.#leave(w, aborted(signal));
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      if (deadline !== undefined) {
        w.deadlineTimer = setTimeout(() => this.#leave(w, this.#limited(w.tokens, 'the deadline passed while waiting')), deadline - this.#now());
      }
      // Insert after every waiter of the same or higher priority.
      let i = this.#queue.length;
      while (i > 0 && this.#queue[i - 1].priority < w.priority) i--;
      this.#queue.splice(i, 0, w);
      this.#kick();
    });
  }

  close(): void {
    this.#closed = true;
    for (const w of [...this.#queue]) this.#leave(w, new MyelinError('ERR_ABORTED', `rate limiter ${this.#label} closed while waiting`));
  }

  #limited(tokens: number, why: string): MyelinError {
    return new MyelinError('ERR_AI_RATE_LIMITED', `local rate limit ${this.#label}: ${why} (${tokens} tokens)`, { limit: this.#label });
  }

  #settleWaiter(w: Waiter): void {
    w.done = true;
    if (w.deadlineTimer !== undefined) clearTimeout(w.deadlineTimer);
    if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
    const i = this.#queue.indexOf(w);
    if (i >= 0) this.#queue.splice(i, 1);
  }

  #leave(w: Waiter, err: unknown): void {
    if (w.done) return;
    const wasHead = this.#queue[0] === w;
    this.#settleWaiter(w);
    w.reject(err);
    if (wasHead) this.#kick();
  }

  /** Re-examines the head now (queue changed, or capacity came back). */
  #kick(): void {
    if (this.#retryTimer !== undefined) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
    }
    void this.#pump();
  }

  async #pump(): Promise<void> {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#again = false;
        while (this.#queue.length > 0) {
          const w = this.#queue[0];
          let wait: number;
          try {
            wait = await this.#backend.take(w.tokens);
          } catch (err) {
            this.#leave(w, err);
            continue;
          }
          if (w.done) {
            // Left (abort, deadline) while the take was in flight: give back what it took.
            if (wait === 0) await this.#backend.adjust(1, w.tokens);
            continue;
          }
          if (wait === 0) {
            this.#settleWaiter(w);
            w.resolve(this.#reservation(w.tokens));
            continue;
          }
          if (w.deadline !== undefined && this.#now() + wait > w.deadline) {
            this.#leave(w, this.#limited(w.tokens, `the limit frees up in ${wait} ms, after the deadline`));
            continue;
          }
          if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
          this.#retryTimer = setTimeout(() => {
            this.#retryTimer = undefined;
            void this.#pump();
          }, wait);
          break;
        }
      } while (this.#again);
    } finally {
      this.#pumping = false;
    }
  }

  #reservation(tokens: number): Reservation {
    let open = true;
    const backend = this.#backend;
    const kick = (): void => this.#kick();
    return {
      tokens,
      async settle(actual: number): Promise<void> {
        if (!open) return;
        if (typeof actual !== 'number' || !(actual >= 0) || !Number.isFinite(actual)) {
          throw invalidArgument(`settle: actualTokens must be a finite number >= 0, got ${String(actual)}`);
        }
        open = false;
        if (actual !== tokens) {
          await backend.adjust(0, tokens - actual);
          if (actual < tokens) kick();
        }
      },
      async cancel(): Promise<void> {
        if (!open) return;
        open = false;
        await backend.adjust(1, tokens);
        kick();
      },
    };
  }
}

function aborted(signal: AbortSignal): MyelinError {
  return new MyelinError('ERR_ABORTED', 'the request was aborted while waiting for a rate limit', { cause: signal.reason });
}
