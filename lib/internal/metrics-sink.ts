// The small recording interface through which every area (bus, ai, gateway, cluster)
// reports to metrics (shared/STYLE.md: metrics observe all of them and are imported by
// none of them except through this). The Metrics class (lib/metrics/) implements it;
// so can any adapter over another backend (a prom-client Registry, StatsD, a test
// double). The shapes are shared/API.md "Metrics":
//
//   sink.counter(name, { help, labelNames }).inc(labels?, n?)
//   sink.gauge(name, { help, labelNames }).set(labels?, v)
//   sink.histogram(name, { help, labelNames, buckets? }).observe(labels?, v)
//
// Names are given without a prefix: the sink adds its own (Metrics' `prefix` option).
// Callers create their instruments once (at construction) and keep the handles, so a
// recording is one method call with a label object the caller reuses.
//
// A caller must treat the sink as untrusted: any of these methods may throw, and a
// recording must never fail the work it observes. Label values must be bounded (from
// configuration or a fixed table), never keys, prompts or request text.

/** Label name -> value. Values are strings (numbers are accepted and stringified by the sink). */
export type MetricLabels = Readonly<Record<string, string | number>>;

export interface MetricOptions {
  help: string;
  /** Every label the instrument's series carry; a recording passes values for these. */
  labelNames?: readonly string[];
}

export interface HistogramOptions extends MetricOptions {
  /** Upper bounds, ascending, in the unit of the observed values. The sink's default otherwise. */
  buckets?: readonly number[];
}

export interface CounterHandle {
  /** Adds n (default 1, never negative) to the series of `labels`. */
  inc(labels?: MetricLabels, n?: number): void;
}

export interface GaugeHandle {
  /** Sets the series of `labels` (undefined: the unlabelled series) to v. */
  set(labels: MetricLabels | undefined, v: number): void;
}

export interface HistogramHandle {
  /** Records v in the series of `labels` (undefined: the unlabelled series). */
  observe(labels: MetricLabels | undefined, v: number): void;
}

export interface MetricsSink {
  counter(name: string, options: MetricOptions): CounterHandle;
  gauge(name: string, options: MetricOptions): GaugeHandle;
  histogram(name: string, options: HistogramOptions): HistogramHandle;
}

/**
 * Creates an instrument through an untrusted sink: the handle, or undefined (after
 * calling `onError`) when the factory throws or returns no object with `method`.
 */
export function makeInstrument<H>(create: () => H, method: string, onError: () => void): H | undefined {
  try {
    const h = create();
    if (h !== null && typeof h === 'object' && typeof (h as Record<string, unknown>)[method] === 'function') return h;
  } catch {
    // reported below
  }
  onError();
  return undefined;
}

/** Whether `x` has the three factory methods of a MetricsSink (what it returns is checked on use). */
export function isMetricsSink(x: unknown): x is MetricsSink {
  if (x === null || (typeof x !== 'object' && typeof x !== 'function')) return false;
  const s = x as Record<string, unknown>;
  return typeof s.counter === 'function' && typeof s.gauge === 'function' && typeof s.histogram === 'function';
}
