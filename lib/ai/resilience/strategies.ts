// Target selection, pure and clock/RNG-injectable so that tests are deterministic.
//
// Every strategy answers with an ORDER over the alias's targets: the first is the
// preferred one, the rest are fallbacks in the order to try them. Targets the
// `healthy` predicate rejects (usually: breaker open) go last, so a pick is never
// wasted on them, but they stay in the list: the caller's breaker.tryAcquire() is the
// gate, and when every target refuses the caller raises ERR_AI_CIRCUIT_OPEN.
import { MyelinError, invalidArgument } from '../../errors.js';

/** Uniform in [0, 1). */
export type Rng = () => number;
export type HealthCheck = (target: string) => boolean;

export interface WeightedTarget {
  target: string;
  /** Relative share, >= 0. Default 1. A weight of 0 is only used as a fallback. */
  weight?: number;
}

function healthyFirst(order: string[], healthy: HealthCheck | undefined): string[] {
  if (healthy === undefined) return order;
  const up: string[] = [];
  const down: string[] = [];
  for (const t of order) (healthy(t) ? up : down).push(t);
  return up.concat(down);
}

/** Declared order, healthy targets first (the 'fallback' strategy). */
export function fallbackOrder(targets: readonly string[], healthy?: HealthCheck): string[] {
  return healthyFirst([...targets], healthy);
}

/**
 * Weighted random order without replacement: the first target is drawn with
 * probability weight / total among the healthy ones, the next among the rest, and so
 * on. Uses exactly one rng() call per target with positive weight.
 */
export function weightedOrder(targets: readonly WeightedTarget[], rng: Rng = Math.random, healthy?: HealthCheck): string[] {
  const pool = targets.map(({ target, weight = 1 }) => {
    if (typeof weight !== 'number' || !(weight >= 0) || !Number.isFinite(weight)) {
      throw invalidArgument(`weight of ${target} must be a finite number >= 0, got ${String(weight)}`);
    }
    return { target, weight };
  });
  const pick = (items: { target: string; weight: number }[]): string[] => {
    const out: string[] = [];
    const left = items.filter((x) => x.weight > 0);
    while (left.length > 0) {
      let total = 0;
      for (const x of left) total += x.weight;
      let r = rng() * total;
      let i = 0;
      while (i < left.length - 1 && r >= left[i].weight) r -= left[i++].weight;
      out.push(left[i].target);
      left.splice(i, 1);
    }
    for (const x of items) if (x.weight === 0) out.push(x.target);
    return out;
  };
  if (healthy === undefined) return pick(pool);
  return pick(pool.filter((x) => healthy(x.target))).concat(pick(pool.filter((x) => !healthy(x.target))));
}

export interface LatencyTrackerOptions {
  /** EWMA weight of a new sample, in (0, 1]. Default 0.3. */
  alpha?: number;
  /**
   * A target whose last sample is older than this counts as unmeasured again, so a
   * target that was slow once gets re-tried instead of starving forever. Default 60 000 ms.
   */
  staleMs?: number;
  now?: () => number;
}

/** Exponentially weighted moving average of latency per target. */
export class LatencyTracker {
  readonly #alpha: number;
  readonly #staleMs: number;
  readonly #now: () => number;
  readonly #ewma = new Map<string, { value: number; at: number }>();

  constructor(options: LatencyTrackerOptions = {}) {
    const alpha = options.alpha ?? 0.3;
    if (!(alpha > 0 && alpha <= 1)) throw invalidArgument(`alpha must be in (0, 1], got ${String(alpha)}`);
    this.#alpha = alpha;
    this.#staleMs = options.staleMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** Records a latency (for streams: time to first content). */
  observe(target: string, latencyMs: number): void {
    if (!(latencyMs >= 0) || !Number.isFinite(latencyMs)) return;
    const now = this.#now();
    const cur = this.#ewma.get(target);
    const value = cur === undefined || now - cur.at >= this.#staleMs ? latencyMs : cur.value + this.#alpha * (latencyMs - cur.value);
    this.#ewma.set(target, { value, at: now });
  }

  /** The EWMA, or undefined when the target has no recent sample. */
  estimate(target: string): number | undefined {
    const cur = this.#ewma.get(target);
    if (cur === undefined || this.#now() - cur.at >= this.#staleMs) return undefined;
    return cur.value;
  }

  forget(target: string): void {
    this.#ewma.delete(target);
  }
}

/**
 * Lowest EWMA first. Unmeasured (or stale) targets come before measured ones, in
 * declared order, so that each gets measured; ties keep the declared order.
 */
export function leastLatencyOrder(targets: readonly string[], tracker: LatencyTracker, healthy?: HealthCheck): string[] {
  const scored = targets.map((target, i) => ({ target, i, est: tracker.estimate(target) ?? -1 }));
  scored.sort((a, b) => a.est - b.est || a.i - b.i);
  return healthyFirst(
    scored.map((s) => s.target),
    healthy,
  );
}

export interface SessionAffinityOptions {
  /** Sessions remembered, least recently used forgotten first. Default 10 000. */
  maxSessions?: number;
}

/**
 * Keeps a session on one target while that target is healthy: its KV cache and its
 * model's behaviour stay consistent for the conversation. When the pinned target is
 * unhealthy (or gone from the alias) the session is re-pinned to the strategy's pick.
 */
export class SessionAffinity {
  readonly #max: number;
  readonly #pins = new Map<string, string>();

  constructor(options: SessionAffinityOptions = {}) {
    const max = options.maxSessions ?? 10_000;
    if (!Number.isInteger(max) || max < 1) throw invalidArgument(`maxSessions must be a positive integer, got ${String(max)}`);
    this.#max = max;
  }

  /**
   * `order` is the strategy's order for this call. Returns it with the session's
   * pinned target moved to the front when that target is healthy; otherwise pins the
   * first healthy target of `order`.
   */
  order(sessionId: string, order: readonly string[], healthy?: HealthCheck): string[] {
    const pinned = this.#pins.get(sessionId);
    if (pinned !== undefined && order.includes(pinned) && (healthy === undefined || healthy(pinned))) {
      this.#touch(sessionId, pinned);
      return [pinned, ...order.filter((t) => t !== pinned)];
    }
    const first = order.find((t) => healthy === undefined || healthy(t)) ?? order[0];
    if (first !== undefined) this.#touch(sessionId, first);
    return healthyFirst([...order], healthy);
  }

  /** Re-pins the session to the target that actually answered (after a fallback). */
  record(sessionId: string, target: string): void {
    this.#touch(sessionId, target);
  }

  pinned(sessionId: string): string | undefined {
    return this.#pins.get(sessionId);
  }

  forget(sessionId: string): void {
    this.#pins.delete(sessionId);
  }

  get size(): number {
    return this.#pins.size;
  }

  #touch(sessionId: string, target: string): void {
    this.#pins.delete(sessionId);
    this.#pins.set(sessionId, target);
    if (this.#pins.size > this.#max) this.#pins.delete(this.#pins.keys().next().value as string);
  }
}

export interface HedgeResult<T> {
  value: T;
  target: string;
  /** Index in `targets` of the winner. */
  index: number;
  /** How many targets were started. */
  started: number;
}

/**
 * Runs `fn` on targets[0]; whenever nothing has been produced for `hedgeAfterMs`, or
 * the latest attempt failed, starts the next target as well. The first attempt to
 * resolve wins; every other attempt's signal is aborted. `fn` should resolve when it
 * has *produced* (for a stream: once its first content arrived, holding the rest).
 * Rejects with the last failure when every target failed, or ERR_ABORTED when
 * `signal` fires (every attempt is aborted then).
 */
export function hedge<T>(
  fn: (target: string, signal: AbortSignal) => Promise<T>,
  targets: readonly string[],
  hedgeAfterMs: number,
  signal?: AbortSignal,
): Promise<HedgeResult<T>> {
  if (targets.length === 0) return Promise.reject(invalidArgument('hedge needs at least one target'));
  if (typeof hedgeAfterMs !== 'number' || !(hedgeAfterMs >= 0)) {
    return Promise.reject(invalidArgument(`hedgeAfterMs must be a number >= 0, got ${String(hedgeAfterMs)}`));
  }
  if (signal?.aborted) return Promise.reject(abortError(signal));

  return new Promise<HedgeResult<T>>((resolve, reject) => {
    const controllers: AbortController[] = [];
    let running = 0;
    let next = 0;
    let done = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let lastError: unknown;

    const finish = (winner: number): void => {
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      controllers.forEach((c, i) => {
        if (i !== winner) c.abort(new MyelinError('ERR_ABORTED', 'hedged attempt lost the race'));
      });
    };
    const onAbort = (): void => {
      if (done) return;
      finish(-1);
      reject(abortError(signal!));
    };
    const arm = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      timer = next < targets.length ? setTimeout(start, hedgeAfterMs) : undefined;
    };
    function start(): void {
      if (done || next >= targets.length) return;
      const index = next++;
      const target = targets[index];
      const ctl = new AbortController();
      controllers.push(ctl);
      running++;
      arm();
      let p: Promise<T>;
      try {
        p = Promise.resolve(fn(target, ctl.signal));
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then(
        (value) => {
          running--;
          if (done) return;
          finish(index);
          resolve({ value, target, index, started: next });
        },
        (err: unknown) => {
          running--;
          if (done) return;
          lastError = err;
          if (next < targets.length) start();
          else if (running === 0) {
            finish(-1);
            reject(lastError);
          }
        },
      );
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    start();
  });
}

function abortError(signal: AbortSignal): MyelinError {
  return new MyelinError('ERR_ABORTED', 'the request was aborted', { cause: signal.reason });
}
