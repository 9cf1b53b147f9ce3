// The contract of lib/metrics (shared/API.md "Metrics"), written first so the parts
// built in parallel agree: the recording core and exposition (metrics.ts, registry,
// exposition), the analysis layer (alerts, detectors, actions, history) and the
// dashboard read each other only through these shapes.
import type {
  CounterHandle,
  GaugeHandle,
  HistogramHandle,
  HistogramOptions,
  MetricLabels,
  MetricOptions,
  MetricsSink,
} from '../internal/metrics-sink.js';

export type { MetricLabels, MetricOptions, HistogramOptions };

export interface MetricsOptions {
  /** Prepended to every name made through this instance, built-in or yours. Default 'myelin_'. */
  prefix?: string;
  /** A prom-client Registry: myelin's series appear in it and its series in expose(). */
  register?: unknown;
  /** Series per metric before recordings fold into the overflow series (default 2,000, overflow included). */
  maxSeries?: number;
  /** How often alert rules run (default 1,000 ms). */
  evaluationIntervalMs?: number;
  /** The seed's KPI rules (CPU, memory, latency, error rate, queue depth, cache hit rate, throughput trend); default true. */
  defaultRules?: boolean;
  /** Process and system series (CPU per core, memory, event-loop lag and utilisation, GC, fds); default true. */
  system?: boolean;
}

/** A counter: `inc(labels?, n?)`; `bind(labels)` pre-resolves a label set for hot paths. */
export interface Counter extends CounterHandle {
  bind(labels?: MetricLabels): { inc(n?: number): void };
}

export interface Gauge extends GaugeHandle {
  inc(labels?: MetricLabels, n?: number): void;
  dec(labels?: MetricLabels, n?: number): void;
  bind(labels?: MetricLabels): { set(v: number): void; inc(n?: number): void; dec(n?: number): void };
}

export interface Histogram extends HistogramHandle {
  bind(labels?: MetricLabels): { observe(v: number): void };
}

export type MetricType = 'counter' | 'gauge' | 'histogram';

/** One series' value at a point in time, as read back for analysis (not for exposition). */
export interface SeriesSample {
  labels: Readonly<Record<string, string>>;
  /** counter and gauge: the value; histogram: the sum of observations. */
  value: number;
  /** histogram only */
  count?: number;
  /** histogram only: cumulative counts per upper bound, +Inf last. */
  buckets?: ReadonlyArray<readonly [le: number, count: number]>;
}

export interface MetricSnapshot {
  /** As exposed: prefix included. */
  name: string;
  type: MetricType;
  help: string;
  series: SeriesSample[];
}

/** What alert rules, history and the dashboard read. Implemented by Metrics. */
export interface MetricsReader {
  /** Every metric as of now (myelin's own; not the user's prom-client series). */
  snapshot(): MetricSnapshot[];
  /** One series' value (histograms: the sum), or undefined when it does not exist. */
  value(name: string, labels?: MetricLabels): number | undefined;
  /** A quantile (0..1) of a histogram series from its buckets, or undefined. */
  quantile(name: string, q: number, labels?: MetricLabels): number | undefined;
}

export interface ExposeOptions {
  /** The request's Accept header: OpenMetrics 1.0 when it asks for application/openmetrics-text, else Prometheus text 0.0.4. */
  accept?: string;
  /** The request's Accept-Encoding: gzip when it allows it. */
  acceptEncoding?: string;
}

export interface Exposition {
  contentType: string;
  body: string | Buffer;
  /** 'gzip' when body is compressed. */
  contentEncoding?: 'gzip';
}

export interface AlertCondition {
  /** The metric as exposed (prefix included). */
  metric: string;
  labels?: MetricLabels;
  above?: number;
  below?: number;
  /** EWMA z-score anomaly: fires when |z| > z after warm-up (<= 10 samples). */
  anomaly?: { z?: number; alpha?: number; minRate?: number; relative?: number };
  /** Histograms: compare this quantile instead of the sum (0.5, 0.95, 0.99...). */
  quantile?: number;
  /** Counters: compare the per-second rate over this window instead of the raw value. */
  rateOverMs?: number;
  /**
   * A ratio: the rate of `metric` (its series matching `labels`, summed) over the summed
   * rates of every series of these metrics, each over `rateOverMs` (default 60 s). One
   * alert per rule, not per series. Error rate: failed / (failed + delivered).
   */
  per?: string | readonly string[];
  /**
   * Fires when the value (with `rateOverMs`, the rate) strays more than `tolerance`
   * (a fraction, default 0.1) from the least-squares trend of the last `windowMs`
   * (default 10 min) of the metric's history, once the trend or value reaches `minRate`.
   */
  trend?: { windowMs?: number; tolerance?: number; minRate?: number };
}

export type Severity = 'info' | 'warning' | 'critical';

export interface AlertRule {
  name: string;
  when: AlertCondition;
  /** How long the condition must hold before firing: '30s', '5m', or ms. Default 0. */
  for?: string | number;
  severity?: Severity;
  /** Alertmanager-compatible webhook URL (payload version 4). */
  webhook?: string;
  /** An automated response run when the alert fires (and, with `resolve`, when it resolves). */
  action?: AlertAction;
  /** Re-notify while firing every this long; with `escalateAfter`, the severity rises. */
  repeatInterval?: string | number;
  escalateAfter?: string | number;
}

export type AlertAction =
  /** forMs: how long the breaker stays open (default 60 s); re-opened on each repeat while firing. */
  | { kind: 'open-breaker'; target: string; forMs?: number }
  | { kind: 'shed-load'; priority?: 'low' | 'normal' }
  | { kind: 'autoscale'; replicas: number }
  | ((alert: Alert) => void | Promise<void>);

export interface Alert {
  name: string;
  status: 'firing' | 'resolved';
  severity: Severity;
  metric: string;
  labels: Readonly<Record<string, string>>;
  value: number;
  /** Epoch ms. */
  startsAt: number;
  endsAt?: number;
}

export interface AlertManagerApi {
  add(rule: AlertRule): void;
  remove(name: string): boolean;
  silence(name: string, opts: { forMs: number }): void;
  list(): Array<{ rule: AlertRule; state: 'inactive' | 'pending' | 'firing'; silencedUntil?: number; last?: Alert }>;
}

/** Implemented by Metrics: the interface every area records through, plus reading back. */
export interface MetricsApi extends MetricsSink, MetricsReader {
  counter(name: string, options: MetricOptions): Counter;
  gauge(name: string, options: MetricOptions): Gauge;
  histogram(name: string, options: HistogramOptions): Histogram;
  expose(options?: ExposeOptions): Promise<Exposition>;
  readonly prefix: string;
  readonly alerts: AlertManagerApi;
}
