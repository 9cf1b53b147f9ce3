// What every upstream attempt passes through before it is sent (shared/API.md "AIClient"):
//   1. the target's circuit breaker ('provider/model'): a permit, or ERR_AI_CIRCUIT_OPEN
//      (not retried on this target; the dispatcher moves on to the next one);
//   2. the rate limits that cover the target: `limits[provider]` and `limits['provider/model']`,
//      each reserved for 1 request and an estimate of its tokens, waiting in priority
//      order up to the call's deadline (AI-WIRE failure cases 5 and 6). With a Redis store
//      the limits are shared; when the store fails, each limit admits or refuses by its
//      onStoreError, and limit-store.ts counts and announces it.
// A Guard is the attempt's ticket: `done(tokens)` settles the reservations with the real
// usage and reports success; `fail(err)` reports the failure to the breaker (only what
// countsAsBreakerFailure says counts; aborts and lost hedges release the permit) and
// gives back the reservations of a request that never reached the upstream.
import type { Redis } from 'ioredis';
import { MyelinError } from '../../errors.js';
import type { Limiter, LimitPriority, Reservation } from '../limits/admission-queue.js';
import { RateLimiter } from '../limits/rate-limiter.js';
import { RedisRateLimiter } from '../limits/redis-rate-limiter.js';
import { type BreakerPermit, type BreakerState, CircuitBreaker } from '../resilience/circuit-breaker.js';
import { type AIError, aiError, countsAsBreakerFailure } from './failure.js';
import type { Target } from './model-router.js';
import type { BreakerOptions, LimitOptions } from './options.js';
import type { LimitStoreHealth } from './limit-store.js';
import type { CallClock } from './overhead.js';

export interface GuardInput {
  /** Token estimate for the tpm limits; computed only when a tpm limit applies. */
  tokens: (t: Target) => number;
  priority: LimitPriority | undefined;
  deadline: number;
  signal: AbortSignal;
  /** The call's overhead clock: a wait for a limit counts as waiting, not overhead. */
  clock?: CallClock | undefined;
}

export interface Guard {
  done(tokens: number): void;
  fail(err: unknown): void;
}

const OPEN_GUARD: Guard = { done() {}, fail() {} };

export interface GuardsOptions {
  breaker: BreakerOptions | undefined;
  limits: Record<string, LimitOptions> | undefined;
  /** Present when limits are shared through Redis. */
  redis: (() => Redis) | undefined;
  /** Hears every store failure and success of the shared limits (with `redis`). */
  storeHealth?: LimitStoreHealth | undefined;
  prefix: string;
  /** Called with a target's breaker state when its breaker is created and on every change. */
  onBreakerState?: ((target: string, state: BreakerState) => void) | undefined;
  /** Hears, in ms, how long each admitted attempt waited for its target's limits (ai_stage_seconds). */
  onLimitWait?: ((ms: number) => void) | undefined;
}

export class Guards {
  readonly #o: GuardsOptions;
  readonly #breakers = new Map<string, CircuitBreaker>();
  readonly #limiters = new Map<string, Limiter>();
  /** Without a `breaker` option: targets forced open by openBreaker(), until this clock time. */
  readonly #forced = new Map<string, number>();

  constructor(o: GuardsOptions) {
    this.#o = o;
  }

  /** The breaker state of a target, undefined when no breaker is configured. */
  state(key: string): BreakerState | undefined {
    return this.#o.breaker ? this.#breaker(key).state : undefined;
  }

  /** False only for a target whose breaker is open (half-open may take its probe). */
  healthy(key: string): boolean {
    return this.state(key) !== 'open' && !this.#isForced(key);
  }

  /**
   * Opens `key`'s breaker for `forMs`. With no `breaker` option the target has no
   * breaker, so it is refused until then and admitted again afterwards (no probe).
   */
  openBreaker(key: string, forMs: number): void {
    if (this.#o.breaker) {
      this.#breaker(key).open(forMs);
      return;
    }
    this.#forced.set(key, Date.now() + forMs);
  }

  #isForced(key: string): boolean {
    const until = this.#forced.get(key);
    if (until === undefined) return false;
    if (Date.now() < until) return true;
    this.#forced.delete(key);
    return false;
  }

  /** Targets with an open breaker moved last, the order otherwise kept. */
  healthyFirst<T extends { key: string }>(targets: T[]): T[] {
    if (!this.#o.breaker) return targets;
    const up = targets.filter((t) => this.healthy(t.key));
    return up.length === targets.length ? targets : up.concat(targets.filter((t) => !this.healthy(t.key)));
  }

  async enter(t: Target, input: GuardInput): Promise<Guard> {
    if (this.#forced.size > 0 && this.#isForced(t.key)) {
      throw aiError('ERR_AI_CIRCUIT_OPEN', `${t.key}: the circuit breaker is open`, { failure: 'circuit-open', retryable: false, provider: t.provider.name, target: t.key });
    }
    const limiters = this.#limitersFor(t);
    if (!this.#o.breaker && limiters.length === 0) return OPEN_GUARD;
    let permit: BreakerPermit | undefined;
    if (this.#o.breaker) {
      permit = this.#breaker(t.key).acquire();
      if (!permit) {
        throw aiError('ERR_AI_CIRCUIT_OPEN', `${t.key}: the circuit breaker is open`, { failure: 'circuit-open', retryable: false, provider: t.provider.name, target: t.key });
      }
    }
    const held: Reservation[] = [];
    let waited: number | undefined;
    try {
      if (limiters.length > 0) {
        const tokens = limiters.some((l) => l.tpm) ? input.tokens(t) : 0;
        const onWait = this.#o.onLimitWait;
        const asked = onWait ? performance.now() : 0;
        input.clock?.enter();
        try {
          for (const l of limiters) {
            held.push(await l.limiter.reserve({ tokens: l.tpm ? tokens : 0, priority: input.priority, deadline: input.deadline, signal: input.signal }));
          }
        } finally {
          input.clock?.leave();
        }
        if (onWait) waited = performance.now() - asked;
      }
    } catch (err) {
      permit?.release();
      for (const r of held) void r.cancel();
      throw localLimitError(err, t, input.signal);
    }
    // After admission, never before: a refused attempt records no wait. The listener
    // (ClientMetrics.stage) never throws; it catches what the untrusted sink throws.
    if (waited !== undefined) this.#o.onLimitWait?.(waited);
    let open = true;
    return {
      done(tokens: number): void {
        if (!open) return;
        open = false;
        permit?.success();
        for (const r of held) void r.settle(Math.max(0, tokens)).catch(() => undefined);
      },
      fail(err: unknown): void {
        if (!open) return;
        open = false;
        if (permit) {
          if (countsAsBreakerFailure(err)) permit.failure();
          else if (isAbort(err)) permit.release();
          else permit.success();
        }
        // An answer with a status reached the upstream, which counted the request;
        // anything else (refused connection, abort before headers) gives it back.
        const reached = typeof (err as AIError | undefined)?.status === 'number';
        for (const r of held) void (reached ? r.settle(0) : r.cancel()).catch(() => undefined);
      },
    };
  }

  /** Rejects every waiter (ERR_ABORTED). */
  close(): void {
    for (const l of this.#limiters.values()) l.close();
  }

  #breaker(key: string): CircuitBreaker {
    let b = this.#breakers.get(key);
    if (!b) {
      const on = this.#o.onBreakerState;
      b = new CircuitBreaker({ ...this.#o.breaker, target: key, onStateChange: on && ((c) => on(key, c.to)) });
      this.#breakers.set(key, b);
      on?.(key, 'closed');
    }
    return b;
  }

  #limitersFor(t: Target): Array<{ limiter: Limiter; tpm: boolean }> {
    const limits = this.#o.limits;
    if (!limits) return [];
    const out: Array<{ limiter: Limiter; tpm: boolean }> = [];
    for (const key of [t.provider.name, t.key]) {
      const l = Object.hasOwn(limits, key) ? limits[key] : undefined;
      if (!l) continue;
      let limiter = this.#limiters.get(key);
      if (!limiter) {
        const redis = this.#o.redis;
        const health = this.#o.storeHealth;
        limiter = redis
          ? new RedisRateLimiter({
              redis: redis(),
              key,
              prefix: `${this.#o.prefix}rl:`,
              rpm: l.rpm,
              tpm: l.tpm,
              onStoreError: l.onStoreError,
              onError: health && ((err, outcome) => health.error(key, err, outcome)),
              onStoreOk: health && (() => health.ok()),
            })
          : new RateLimiter({ key, rpm: l.rpm, tpm: l.tpm });
        this.#limiters.set(key, limiter);
      }
      out.push({ limiter, tpm: l.tpm !== undefined });
    }
    return out;
  }
}

function isAbort(err: unknown): boolean {
  const e = err as AIError | undefined;
  return e?.code === 'ERR_ABORTED' || e?.failure === 'aborted' || e?.failure === 'deadline' || (err as Error | undefined)?.name === 'AbortError';
}

/**
 * A local limit that cannot be met names ERR_AI_RATE_LIMITED, also when the call's own
 * deadline is what ended the wait (the deadline and the queue's timer race otherwise).
 * Marked `failure: 'rate-limit'` so that the dispatcher may try another target.
 */
function localLimitError(err: unknown, t: Target, signal: AbortSignal): unknown {
  const reason = signal.aborted ? (signal.reason as AIError | undefined) : undefined;
  if (err instanceof MyelinError && err.code === 'ERR_ABORTED' && reason?.failure === 'deadline') {
    const e = aiError('ERR_AI_RATE_LIMITED', `local rate limit for ${t.key}: the deadline passed while waiting`, { failure: 'rate-limit', retryable: false, provider: t.provider.name, target: t.key, cause: err });
    return Object.assign(e, { local: true });
  }
  if (err instanceof MyelinError && err.code === 'ERR_AI_RATE_LIMITED') {
    Object.assign(err, { failure: 'rate-limit', retryable: false, local: true, provider: t.provider.name, target: t.key });
  }
  return err;
}
