// One circuit breaker per target (`provider/model`), shared/API.md "AIClient".
//
// closed -> open     when, within the sliding window, at least `minRequests` calls
//                    finished and failures / calls >= `failureRate`;
// open -> half-open  once `openMs` has passed (read lazily from the clock, no timer);
// half-open          admits exactly one probe, refuses everyone else while it is out;
// probe success -> closed (window cleared), probe failure -> open again.
//
// The window is `buckets` slots of windowMs / buckets each, so memory is constant
// whatever the request rate; an outcome leaves the window between
// windowMs - windowMs / buckets and windowMs after it was recorded.
//
// Outcomes are attributed by generation: a permit taken in one state generation only
// counts while the breaker is still in that generation, so a slow call that started
// while closed cannot close (or re-open) a half-open breaker in place of its probe.
//
// The breaker does not judge errors: its caller reports success, failure or release.
// The AIClient's guard (client/guards.ts) decides with client/failure.ts.
import { invalidArgument } from '../../errors.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerStateChange {
  target: string | undefined;
  from: BreakerState;
  to: BreakerState;
  /** Clock time of the change (ms, from `now`). */
  at: number;
}

export interface CircuitBreakerOptions {
  /** Failure ratio in (0, 1] at or above which the breaker opens. Default 0.5. */
  failureRate?: number;
  /** Calls in the window before the rate is judged. Default 20. */
  minRequests?: number;
  /** Sliding window length. Default 30 000 ms. */
  windowMs?: number;
  /** How long the breaker stays open before it lets one probe through. Default 15 000 ms. */
  openMs?: number;
  /** Window slots. Default 10. */
  buckets?: number;
  /**
   * A probe that has not reported by then is taken as failed (the breaker re-opens),
   * so a leaked permit cannot wedge the target in half-open. Default 60 000 ms.
   */
  probeTimeoutMs?: number;
  /** Label carried in state events, usually the target. */
  target?: string;
  /** Clock in ms. Default Date.now (which vi.useFakeTimers controls). */
  now?: () => number;
  /** Called on every state change (the AIClient's breaker gauge). */
  onStateChange?: (change: BreakerStateChange) => void;
}

/**
 * One admitted call. Report exactly one outcome; later reports are ignored. Which
 * errors are failures is the caller's call: the AIClient's guard (client/guards.ts)
 * asks client/failure.ts countsAsBreakerFailure().
 */
export interface BreakerPermit {
  /** True when this call is the half-open probe. */
  readonly probe: boolean;
  success(): void;
  failure(): void;
  /** The call ended without telling anything about the target (caller abort, lost hedge). */
  release(): void;
}

export interface BreakerStats {
  state: BreakerState;
  requests: number;
  failures: number;
  failureRate: number;
  /** When an open breaker will admit its probe (clock ms); undefined unless open. */
  retryAt: number | undefined;
}

function positive(name: string, v: number | undefined, dflt: number, int = false): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !(v > 0) || (int && !Number.isInteger(v))) {
    throw invalidArgument(`breaker.${name} must be a positive ${int ? 'integer' : 'number'}, got ${String(v)}`);
  }
  return v;
}

export class CircuitBreaker {
  readonly failureRate: number;
  readonly minRequests: number;
  readonly windowMs: number;
  readonly openMs: number;
  readonly probeTimeoutMs: number;
  readonly target: string | undefined;

  readonly #now: () => number;
  readonly #onStateChange: ((c: BreakerStateChange) => void) | undefined;
  readonly #bucketMs: number;
  readonly #slot: Float64Array; // slot index (time / bucketMs) each bucket holds, -1 empty
  readonly #calls: Float64Array;
  readonly #fails: Float64Array;

  #state: BreakerState = 'closed';
  #generation = 0;
  #openedAt = 0;
  /** How long the current open period lasts: openMs, or what open(forMs) asked. */
  #openFor = 0;
  #probeOut = false;
  #probeAt = 0;

  constructor(options: CircuitBreakerOptions = {}) {
    const rate = options.failureRate ?? 0.5;
    if (typeof rate !== 'number' || !(rate > 0 && rate <= 1)) {
      throw invalidArgument(`breaker.failureRate must be in (0, 1], got ${String(rate)}`);
    }
    this.failureRate = rate;
    this.minRequests = positive('minRequests', options.minRequests, 20, true);
    this.windowMs = positive('windowMs', options.windowMs, 30_000);
    this.openMs = positive('openMs', options.openMs, 15_000);
    this.probeTimeoutMs = positive('probeTimeoutMs', options.probeTimeoutMs, 60_000);
    const buckets = positive('buckets', options.buckets, 10, true);
    this.target = options.target;
    this.#now = options.now ?? Date.now;
    this.#onStateChange = options.onStateChange;
    this.#bucketMs = this.windowMs / buckets;
    this.#slot = new Float64Array(buckets).fill(-1);
    this.#calls = new Float64Array(buckets);
    this.#fails = new Float64Array(buckets);
  }

  /** The state now: an open breaker whose openMs has passed reads (and becomes) half-open. */
  get state(): BreakerState {
    this.#tick(this.#now());
    return this.#state;
  }

  /** Admits a call with a permit that attributes its outcome to this generation, or refuses it (undefined). */
  acquire(): BreakerPermit | undefined {
    const now = this.#now();
    this.#tick(now);
    if (this.#state === 'open') return undefined;
    if (this.#state === 'half-open') {
      if (this.#probeOut) return undefined;
      this.#probeOut = true;
      this.#probeAt = now;
      return this.#permit(true);
    }
    return this.#permit(false);
  }

  /**
   * Opens the breaker now, whatever its window says, for `forMs` (default openMs); then
   * it goes half-open and takes one probe as after any opening. An automated response
   * (a metrics alert's 'open-breaker' action) calls it through AIClient.openBreaker.
   */
  open(forMs: number = this.openMs): void {
    if (typeof forMs !== 'number' || !(forMs > 0) || !Number.isFinite(forMs)) {
      throw invalidArgument(`breaker.open: forMs must be a positive finite number, got ${String(forMs)}`);
    }
    this.#open(this.#now(), forMs);
  }

  stats(): BreakerStats {
    const now = this.#now();
    this.#tick(now);
    const { calls, fails } = this.#sums(now);
    return {
      state: this.#state,
      requests: calls,
      failures: fails,
      failureRate: calls === 0 ? 0 : fails / calls,
      retryAt: this.#state === 'open' ? this.#openedAt + this.#openFor : undefined,
    };
  }

  #permit(probe: boolean): BreakerPermit {
    const generation = this.#generation;
    let done = false;
    const report = (outcome: 'success' | 'failure' | 'release'): void => {
      if (done) return;
      done = true;
      this.#report(generation, probe, outcome);
    };
    return {
      probe,
      success: () => report('success'),
      failure: () => report('failure'),
      release: () => report('release'),
    };
  }

  #report(generation: number, probe: boolean, outcome: 'success' | 'failure' | 'release'): void {
    const now = this.#now();
    this.#tick(now);
    if (generation !== this.#generation) return; // a straggler from an earlier state
    if (probe) {
      this.#probeOut = false;
      if (outcome === 'success') {
        this.#clearWindow();
        this.#transition('closed', now);
      } else if (outcome === 'failure') {
        this.#open(now);
      }
      return;
    }
    if (this.#state !== 'closed' || outcome === 'release') return;
    const i = this.#bucket(now);
    this.#calls[i]++;
    if (outcome === 'failure') {
      this.#fails[i]++;
      const { calls, fails } = this.#sums(now);
      if (calls >= this.minRequests && fails / calls >= this.failureRate) this.#open(now);
    }
  }

  #tick(now: number): void {
    if (this.#state === 'open' && now - this.#openedAt >= this.#openFor) {
      this.#probeOut = false;
      this.#transition('half-open', now);
    } else if (this.#state === 'half-open' && this.#probeOut && now - this.#probeAt >= this.probeTimeoutMs) {
      this.#open(now);
    }
  }

  #open(now: number, forMs: number = this.openMs): void {
    this.#openedAt = now;
    this.#openFor = forMs;
    this.#probeOut = false;
    this.#transition('open', now);
  }

  #transition(to: BreakerState, at: number): void {
    const from = this.#state;
    this.#generation++;
    if (from === to) return;
    this.#state = to;
    const change: BreakerStateChange = { target: this.target, from, to, at };
    this.#onStateChange?.(change);
  }

  #bucket(now: number): number {
    const slot = Math.floor(now / this.#bucketMs);
    const i = slot % this.#slot.length;
    if (this.#slot[i] !== slot) {
      this.#slot[i] = slot;
      this.#calls[i] = 0;
      this.#fails[i] = 0;
    }
    return i;
  }

  #sums(now: number): { calls: number; fails: number } {
    const oldest = Math.floor(now / this.#bucketMs) - this.#slot.length;
    let calls = 0;
    let fails = 0;
    for (let i = 0; i < this.#slot.length; i++) {
      if (this.#slot[i] > oldest) {
        calls += this.#calls[i];
        fails += this.#fails[i];
      }
    }
    return { calls, fails };
  }

  #clearWindow(): void {
    this.#slot.fill(-1);
    this.#calls.fill(0);
    this.#fails.fill(0);
  }
}
