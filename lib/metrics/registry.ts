// The instruments of one Metrics (or one worker's attachment): families by name, the
// handles returned by counter()/gauge()/histogram(), the name rules, and the overflow
// counter `<prefix>metrics_series_folded_total{metric}`.
//
// Names: the prefix is prepended to every name; a counter's exposed name always ends in
// `_total` (added when the given name lacks it). Creating the same name again with the
// same type, labels and buckets returns the same handle; anything else under a name (or
// a sample name) already taken throws ERR_INVALID_ARGUMENT: a gauge `x_count` next to a
// histogram `x` would expose one series twice.
import { invalidArgument } from '../errors.js';
import type { MetricLabels } from '../internal/metrics-sink.js';
import { counterBase } from './exposition.js';
import {
  BoundCounter,
  BoundGauge,
  BoundHistogram,
  Family,
  type FamilyShape,
  PAGE_MASK,
  PAGE_SHIFT,
  badGaugeValue,
  badIncrement,
  badObservation,
  checkBuckets,
  checkLabelNames,
  checkMetricName,
} from './series.js';
import type { Counter, Gauge, Histogram, HistogramOptions, MetricOptions, MetricType } from './types.js';

export const FOLDED_NAME = 'metrics_series_folded_total';

type Handle = Counter | Gauge | Histogram;

/** The names a family's exposition uses, in either format. */
export function claimsOf(name: string, type: MetricType | 'summary'): string[] {
  if (type === 'counter') return [counterBase(name), `${counterBase(name)}_total`, `${counterBase(name)}_created`];
  if (type === 'histogram') return [name, `${name}_bucket`, `${name}_count`, `${name}_sum`, `${name}_created`];
  if (type === 'summary') return [name, `${name}_count`, `${name}_sum`, `${name}_created`];
  return [name];
}

export class Instruments {
  readonly prefix: string;
  readonly maxSeries: number;
  readonly families = new Map<string, Family>();
  /** Every sample or family name in use, with the family that uses it. */
  readonly claims = new Map<string, string>();
  /** Called for each new family (the prom-client bridge, a worker's share client). */
  onFamily: ((fam: Family) => void) | undefined;
  readonly #handles = new Map<string, Handle>();
  #folded: Family | undefined;

  constructor(prefix: string, maxSeries: number) {
    this.prefix = prefix;
    this.maxSeries = maxSeries;
  }

  #opts(options: unknown, what: string): MetricOptions & { buckets?: unknown } {
    if (options === null || typeof options !== 'object') throw invalidArgument(`${what}: options must be an object with help (and labelNames)`);
    const o = options as Record<string, unknown>;
    for (const k of Object.keys(o)) if (k !== 'help' && k !== 'labelNames' && k !== 'buckets') throw invalidArgument(`${what}: unknown option ${JSON.stringify(k)}`);
    if (typeof o.help !== 'string') throw invalidArgument(`${what}: help must be a string`);
    return o as unknown as MetricOptions;
  }

  #shape(type: MetricType, name: unknown, options: unknown, what: string): FamilyShape {
    checkMetricName(name, what);
    const o = this.#opts(options, what);
    if (type !== 'histogram' && o.buckets !== undefined) throw invalidArgument(`${what}: only a histogram takes buckets`);
    let full = `${this.prefix}${name}`;
    if (type === 'counter' && !full.endsWith('_total')) full += '_total';
    checkMetricName(full, what);
    const labelNames = checkLabelNames(o.labelNames, type, what);
    const bounds = type === 'histogram' ? checkBuckets(o.buckets, what) : undefined;
    return { name: full, type, help: o.help, labelNames, bounds };
  }

  /** The family of `shape`: the existing one when the shape matches, else a new one; a clash throws. */
  family(shape: FamilyShape, what: string): Family {
    const had = this.families.get(shape.name);
    if (had !== undefined) {
      if (!had.sameShape(shape)) throw invalidArgument(`${what}: ${shape.name} already exists as a ${had.type} with labels [${had.labelNames.join(', ')}]${had.type === 'histogram' ? ' and other buckets' : ''}`);
      return had;
    }
    const claims = claimsOf(shape.name, shape.type);
    for (const c of claims) {
      const owner = this.claims.get(c);
      if (owner !== undefined) throw invalidArgument(`${what}: ${shape.name} would expose ${c}, which ${owner} already exposes`);
    }
    const isFolded = shape.name === `${this.prefix}${FOLDED_NAME}`;
    const fam = new Family(shape, isFolded ? 1e6 : this.maxSeries, (f) => this.#fold(f));
    this.onFamily?.(fam); // may throw (a prom-client registry that has the name): nothing kept then
    for (const c of claims) this.claims.set(c, shape.name);
    this.families.set(shape.name, fam);
    return fam;
  }

  /** Reserves names used outside families (a summary from hdrHistogram). */
  claim(name: string, type: 'summary', what: string): void {
    const claims = claimsOf(name, type);
    for (const c of claims) if (this.claims.has(c)) throw invalidArgument(`${what}: ${name} would expose ${c}, which ${this.claims.get(c)} already exposes`);
    for (const c of claims) this.claims.set(c, name);
  }

  #fold(f: Family): void {
    if (this.#folded === undefined) {
      this.#folded = this.family(
        { name: `${this.prefix}${FOLDED_NAME}`, type: 'counter', help: 'Recordings folded into a metric\'s overflow series because it reached maxSeries', labelNames: ['metric'] },
        'metrics',
      );
    }
    const fam = this.#folded;
    const i = fam.resolveValues([f.name], `${f.name.length}:${f.name}`, false);
    fam.pages[i >>> PAGE_SHIFT][i & PAGE_MASK]++;
  }

  #foldHook(fam: Family, i: number): (() => void) | undefined {
    if (!fam.lastFolded) return undefined;
    void i;
    return () => this.#fold(fam);
  }

  #cached<H extends Handle>(shape: FamilyShape, make: (fam: Family) => H, what: string): H {
    const fam = this.family(shape, what);
    const had = this.#handles.get(fam.name);
    if (had !== undefined) return had as H;
    const h = make(fam);
    this.#handles.set(fam.name, h);
    return h;
  }

  counter(name: string, options: MetricOptions): Counter {
    const shape = this.#shape('counter', name, options, 'metrics.counter');
    return this.#cached(
      shape,
      (fam) => {
        const stride = fam.stride;
        return {
          inc: (labels?: MetricLabels, n?: number) => {
            if (n === undefined) n = 1;
            else if (typeof n !== 'number' || !(n >= 0) || n === Number.POSITIVE_INFINITY) throw badIncrement(n);
            const i = fam.resolve(labels, `counter ${fam.name}.inc`);
            fam.pages[i >>> PAGE_SHIFT][(i & PAGE_MASK) * stride] += n;
          },
          bind: (labels?: MetricLabels) => {
            const i = fam.resolve(labels, `counter ${fam.name}.bind`, false);
            return new BoundCounter(fam.slot(i), this.#foldHook(fam, i));
          },
        };
      },
      'metrics.counter',
    );
  }

  gauge(name: string, options: MetricOptions): Gauge {
    const shape = this.#shape('gauge', name, options, 'metrics.gauge');
    return this.#cached(
      shape,
      (fam) => {
        const add = (labels: MetricLabels | undefined, n: number | undefined, sign: number, what: string) => {
          if (n === undefined) n = 1;
          else if (typeof n !== 'number') throw badGaugeValue(n);
          const i = fam.resolve(labels, what);
          fam.pages[i >>> PAGE_SHIFT][i & PAGE_MASK] += sign * n;
        };
        return {
          set: (labels: MetricLabels | undefined, v: number) => {
            if (typeof v !== 'number') throw badGaugeValue(v);
            const i = fam.resolve(labels, `gauge ${fam.name}.set`);
            fam.pages[i >>> PAGE_SHIFT][i & PAGE_MASK] = v;
          },
          inc: (labels?: MetricLabels, n?: number) => add(labels, n, 1, `gauge ${fam.name}.inc`),
          dec: (labels?: MetricLabels, n?: number) => add(labels, n, -1, `gauge ${fam.name}.dec`),
          bind: (labels?: MetricLabels) => {
            const i = fam.resolve(labels, `gauge ${fam.name}.bind`, false);
            return new BoundGauge(fam.slot(i), this.#foldHook(fam, i));
          },
        };
      },
      'metrics.gauge',
    );
  }

  histogram(name: string, options: HistogramOptions): Histogram {
    const shape = this.#shape('histogram', name, options, 'metrics.histogram');
    return this.#cached(
      shape,
      (fam) => {
        // One bound handle per series, made on first use, so observe(labels, v) costs a
        // label lookup plus the bound path.
        const bound: BoundHistogram[] = [];
        return {
          observe: (labels: MetricLabels | undefined, v: number) => {
            if (typeof v !== 'number') throw badObservation(v);
            const i = fam.resolve(labels, `histogram ${fam.name}.observe`);
            let h = bound[i];
            if (h === undefined) h = bound[i] = new BoundHistogram(fam.slot(i), fam.bounds, undefined);
            h.observe(v);
          },
          bind: (labels?: MetricLabels) => {
            const i = fam.resolve(labels, `histogram ${fam.name}.bind`, false);
            return new BoundHistogram(fam.slot(i), fam.bounds, this.#foldHook(fam, i));
          },
        };
      },
      'metrics.histogram',
    );
  }
}
