// Detectors for alert rules and trend analysis: pure and deterministic (the same
// samples in the same order give the same decisions, bit for bit), no clock, no timer.
//
//   EwmaDetector     exponentially weighted mean and variance; a sample's z-score is
//                    taken against the state *before* it, so a step stands out in full.
//                    Warm-up, a minimum rate, a relative guard and hysteresis keep it
//                    quiet on constant, idle and noisy-but-flat series.
//   HoltForecaster   double exponential smoothing (level + trend): one-step and h-step
//                    forecasts; exact on a linear series once it has seen two samples.
//   linearTrend      least squares over (t, v) points, centred for accuracy, as
//                    Prometheus' predict_linear / deriv do.
//
// Non-finite samples (NaN, ±Inf) are ignored everywhere: they change no state and the
// previous decision stands (a scrape that failed is not an anomaly).
import { invalidArgument } from '../errors.js';

/** An anomaly detector needs at most this many samples to warm up (shared/API.md "Metrics"). */
export const MAX_WARMUP = 10;

export interface EwmaOptions {
  /** Smoothing factor in (0, 1]: weight of the newest sample. Default 0.1. */
  alpha?: number;
  /** Fires when |z| exceeds this (> 0). Default 4. */
  z?: number;
  /** Clears (after firing) when |z| falls below this; 0 <= clearZ <= z. Default z / 2. */
  clearZ?: number;
  /** Samples before any decision, 2..10. Default 10. */
  warmup?: number;
  /** Never fires while both the sample and the mean are below this magnitude (idle series). Default 0. */
  minRate?: number;
  /** Ignores deviations smaller than this fraction of |mean| (0..1). Default 0.05. */
  relative?: number;
}

export interface EwmaDecision {
  /** The sample's z-score against the state before it (0 during warm-up or when guarded). */
  z: number;
  firing: boolean;
  /** True when this sample changed `firing`. */
  changed: boolean;
  mean: number;
  sigma: number;
  /** Finite samples seen. */
  samples: number;
}

function num(where: string, v: unknown, dflt: number, ok: (x: number) => boolean, what: string): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !ok(v)) throw invalidArgument(`${where} must be ${what}, got ${String(v)}`);
  return v;
}

export function checkEwmaOptions(o: EwmaOptions | undefined, where = 'anomaly'): Required<EwmaOptions> {
  if (o !== undefined && (o === null || typeof o !== 'object' || Array.isArray(o))) throw invalidArgument(`${where} must be an object`);
  const opts = o ?? {};
  for (const k of Object.keys(opts)) {
    if (!['alpha', 'z', 'clearZ', 'warmup', 'minRate', 'relative'].includes(k)) throw invalidArgument(`${where}: unknown option '${k}'`);
  }
  const alpha = num(`${where}.alpha`, opts.alpha, 0.1, (x) => x > 0 && x <= 1, 'in (0, 1]');
  const z = num(`${where}.z`, opts.z, 4, (x) => x > 0 && Number.isFinite(x), 'a positive number');
  const clearZ = num(`${where}.clearZ`, opts.clearZ, z / 2, (x) => x >= 0 && x <= z, `in [0, z=${z}]`);
  const warmup = num(`${where}.warmup`, opts.warmup, MAX_WARMUP, (x) => Number.isInteger(x) && x >= 2 && x <= MAX_WARMUP, `an integer in [2, ${MAX_WARMUP}]`);
  const minRate = num(`${where}.minRate`, opts.minRate, 0, (x) => x >= 0 && Number.isFinite(x), 'a number >= 0');
  const relative = num(`${where}.relative`, opts.relative, 0.05, (x) => x >= 0 && x <= 1, 'in [0, 1]');
  return { alpha, z, clearZ, warmup, minRate, relative };
}

/**
 * EWMA mean/variance z-score detector. Warm-up: the first sample seeds the mean, and
 * the first `warmup` samples update the state without deciding (the variance needs a
 * few samples to mean anything). sigma = 0 (a constant series) is safe: an exactly
 * equal sample has z = 0, any other one beyond the relative guard has z = ±Infinity.
 */
export class EwmaDetector {
  readonly options: Readonly<Required<EwmaOptions>>;
  #mean = 0;
  #var = 0;
  #n = 0;
  #firing = false;
  #z = 0;

  constructor(options?: EwmaOptions) {
    this.options = checkEwmaOptions(options);
  }

  get firing(): boolean {
    return this.#firing;
  }

  update(x: number): EwmaDecision {
    if (typeof x !== 'number' || !Number.isFinite(x)) return this.#decision(false);
    const o = this.options;
    const n = ++this.#n;
    if (n === 1) {
      this.#mean = x;
      this.#var = 0;
      this.#z = 0;
      return this.#decision(false);
    }
    const mean = this.#mean;
    const sigma = Math.sqrt(this.#var);
    const diff = x - mean;
    let z = 0;
    if (diff !== 0 && Math.abs(diff) > o.relative * Math.abs(mean) && Math.max(Math.abs(x), Math.abs(mean)) >= o.minRate) {
      z = sigma > 0 ? diff / sigma : diff > 0 ? Infinity : -Infinity;
    }
    // West's incremental EWMA: the variance update uses the deviation from the old mean.
    const incr = o.alpha * diff;
    this.#mean = mean + incr;
    this.#var = (1 - o.alpha) * (this.#var + diff * incr);
    this.#z = z;
    if (n <= o.warmup) return this.#decision(false);
    const was = this.#firing;
    const a = Math.abs(z);
    if (!was && a > o.z) this.#firing = true;
    else if (was && a < o.clearZ) this.#firing = false;
    return this.#decision(was !== this.#firing);
  }

  reset(): void {
    this.#mean = 0;
    this.#var = 0;
    this.#n = 0;
    this.#firing = false;
    this.#z = 0;
  }

  #decision(changed: boolean): EwmaDecision {
    return { z: this.#z, firing: this.#firing, changed, mean: this.#mean, sigma: Math.sqrt(this.#var), samples: this.#n };
  }
}

export interface HoltOptions {
  /** Level smoothing in (0, 1]. Default 0.5. */
  alpha?: number;
  /** Trend smoothing in (0, 1]. Default 0.3. */
  beta?: number;
}

/**
 * Holt's double exponential smoothing. Seeded from the first two finite samples (level
 * = the second, trend = their difference), so a linear series is forecast exactly from
 * then on (up to floating point).
 */
export class HoltForecaster {
  readonly alpha: number;
  readonly beta: number;
  #level = 0;
  #trend = 0;
  #n = 0;

  constructor(options: HoltOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalidArgument('HoltForecaster options must be an object');
    this.alpha = num('holt.alpha', options.alpha, 0.5, (x) => x > 0 && x <= 1, 'in (0, 1]');
    this.beta = num('holt.beta', options.beta, 0.3, (x) => x > 0 && x <= 1, 'in (0, 1]');
  }

  get samples(): number {
    return this.#n;
  }
  get level(): number {
    return this.#level;
  }
  get trend(): number {
    return this.#trend;
  }

  update(x: number): void {
    if (typeof x !== 'number' || !Number.isFinite(x)) return;
    const n = ++this.#n;
    if (n === 1) {
      this.#level = x;
      this.#trend = 0;
      return;
    }
    if (n === 2) {
      this.#trend = x - this.#level;
      this.#level = x;
      return;
    }
    const prevLevel = this.#level;
    this.#level = this.alpha * x + (1 - this.alpha) * (prevLevel + this.#trend);
    this.#trend = this.beta * (this.#level - prevLevel) + (1 - this.beta) * this.#trend;
  }

  /** The value `h` steps ahead (h >= 0), or NaN before any sample. */
  forecast(h = 1): number {
    if (typeof h !== 'number' || !(h >= 0) || !Number.isFinite(h)) throw invalidArgument(`forecast: h must be a finite number >= 0, got ${String(h)}`);
    if (this.#n === 0) return Number.NaN;
    return this.#level + h * this.#trend;
  }
}

export interface LinearFit {
  /** Change per unit of t. */
  slope: number;
  /** The value at t = 0. */
  intercept: number;
  /** Finite points used. */
  points: number;
  /** The centre of the fit (mean t, mean v): predictions from it keep their precision. */
  meanT: number;
  meanV: number;
}

/**
 * Least-squares line through the finite (t, v) pairs; undefined with fewer than two
 * or when every t is the same. Centred on the mean t, so epoch-ms times lose no
 * precision in the squares.
 */
export function linearTrend(t: ArrayLike<number>, v: ArrayLike<number>): LinearFit | undefined {
  const n = Math.min(t.length, v.length);
  let k = 0;
  let st = 0;
  let sv = 0;
  for (let i = 0; i < n; i++) {
    if (Number.isFinite(t[i]) && Number.isFinite(v[i])) {
      k++;
      st += t[i];
      sv += v[i];
    }
  }
  if (k < 2) return undefined;
  const mt = st / k;
  const mv = sv / k;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    if (Number.isFinite(t[i]) && Number.isFinite(v[i])) {
      const dt = t[i] - mt;
      sxx += dt * dt;
      sxy += dt * (v[i] - mv);
    }
  }
  if (sxx === 0) return undefined;
  const slope = sxy / sxx;
  return { slope, intercept: mv - slope * mt, points: k, meanT: mt, meanV: mv };
}

/** predict_linear: the fitted value at time `at`, or undefined when no line fits. */
export function predictLinear(t: ArrayLike<number>, v: ArrayLike<number>, at: number): number | undefined {
  const f = linearTrend(t, v);
  return f === undefined ? undefined : f.meanV + f.slope * (at - f.meanT);
}
