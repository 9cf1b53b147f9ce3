// Metrics (shared/API.md "Metrics"): counters, gauges and histograms recorded into
// shared typed arrays (lib/metrics/series.ts), exposed as Prometheus text 0.0.4 or
// OpenMetrics 1.0 (lib/metrics/exposition.ts), read back for analysis (MetricsReader),
// shared with worker threads (lib/metrics/worker.ts) and with a prom-client Registry
// (lib/metrics/prom-client-bridge.ts).
//
// Additions to the contract in lib/metrics/types.ts (compatible):
// - `metrics.shareWith()` / `Metrics.attach(share)`: worker threads record into the same series;
// - `metrics.hdrHistogram(name, { help, histogram, scale? })`: exposes an HDR histogram
//   (the bus's latency histogram is one: native, shared across workers) as a summary read
//   at scrape time, so it adds nothing per event;
// - `metrics.errors`: worker announcements that could not be adopted;
// - `metrics.close()`.
// expose() always returns the body as a Buffer of UTF-8 (the contract allows string or
// Buffer): rendering writes bytes as it goes, so a large scrape never builds one big
// string on the main thread.
//
// Semantics chosen where the spec leaves room (tested in test/metrics/):
// - a histogram takes any number: NaN counts in `+Inf` and `_count` only and makes
//   `_sum` NaN (as client_golang does); +Inf counts in `+Inf`; -Inf in the first bucket;
//   a value equal to a bound counts in that bound's bucket (`le` is inclusive);
// - a gauge takes any number, NaN and ±Inf included; a counter increment must be a
//   finite number >= 0;
// - the overflow series carries `__overflow__` in every label;
// - reading (value, quantile) with labels omitted or partial sums over the series that
//   match the given labels.
import { EventEmitter } from 'node:events';
import { invalidArgument } from '../errors.js';
import type { MetricLabels } from '../internal/metrics-sink.js';
import {
  acceptsGzip,
  ByteSink,
  contentTypeOf,
  gzipBody,
  negotiate,
  renderFamily,
  renderForeign,
  renderSummary,
  type SummaryFamily,
  yieldToLoop,
} from './exposition.js';
import { AlertManager } from './alerts.js';
import { PromClientBridge } from './prom-client-bridge.js';
import { Instruments } from './registry.js';
import { checkMetricName, type Family } from './series.js';
import { SystemMetrics } from './system.js';
import type {
  Counter,
  Exposition,
  ExposeOptions,
  Gauge,
  Histogram,
  HistogramOptions,
  MetricOptions,
  MetricSnapshot,
  MetricsApi,
  MetricsOptions,
  SeriesSample,
} from './types.js';
import { type MetricsShare, ShareClient, openShare } from './worker.js';

const OPTION_KEYS = new Set(['prefix', 'register', 'maxSeries', 'evaluationIntervalMs', 'defaultRules', 'system']);
const PREFIX = /^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/;

/** What hdrHistogram() reads: the snapshot of a native (or JS) HDR histogram. */
export interface HdrSource {
  snapshot(): { count: number; sum: number; p50: number; p90: number; p99: number; p999: number; max: number };
}

function checkOptions(options: unknown): Required<Pick<MetricsOptions, 'prefix' | 'maxSeries' | 'evaluationIntervalMs' | 'defaultRules' | 'system'>> & { register: unknown } {
  if (options === undefined) options = {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw invalidArgument('Metrics(options): options must be an object');
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!OPTION_KEYS.has(k)) throw invalidArgument(`Metrics(options): unknown option ${JSON.stringify(k)}`);
  const prefix = o.prefix ?? 'myelin_';
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) throw invalidArgument(`Metrics(options): prefix must match [a-zA-Z_:][a-zA-Z0-9_:]* (or be empty), got ${JSON.stringify(prefix)}`);
  const maxSeries = o.maxSeries ?? 2000;
  if (typeof maxSeries !== 'number' || !Number.isInteger(maxSeries) || maxSeries < 2 || maxSeries > 10_000_000) {
    throw invalidArgument(`Metrics(options): maxSeries must be an integer from 2 to 10,000,000, got ${String(maxSeries)}`);
  }
  const evaluationIntervalMs = o.evaluationIntervalMs ?? 1000;
  if (typeof evaluationIntervalMs !== 'number' || !Number.isFinite(evaluationIntervalMs) || evaluationIntervalMs < 10 || evaluationIntervalMs > 2 ** 31 - 1) {
    throw invalidArgument(`Metrics(options): evaluationIntervalMs must be a number of ms from 10 to 2^31-1, got ${String(evaluationIntervalMs)}`);
  }
  for (const k of ['defaultRules', 'system']) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw invalidArgument(`Metrics(options): ${k} must be a boolean`);
  }
  return { prefix, maxSeries, evaluationIntervalMs, defaultRules: o.defaultRules !== false, system: o.system !== false, register: o.register };
}

function checkLabelsArg(labels: unknown, what: string): Record<string, string | number> | undefined {
  if (labels === undefined) return undefined;
  if (labels === null || typeof labels !== 'object') throw invalidArgument(`${what}: labels must be an object`);
  return labels as Record<string, string | number>;
}

export class Metrics extends EventEmitter implements MetricsApi {
  readonly prefix: string;
  /** Alert rules: add/remove/silence/list, attach({ bus, ai }) (lib/metrics/alerts.ts); notifications come as 'alert' events. */
  readonly alerts: AlertManager;
  /** Worker announcements that could not be adopted (a shape clash). */
  errors = 0;
  readonly #inst: Instruments;
  readonly #bridge: PromClientBridge | undefined;
  readonly #system: SystemMetrics | undefined;
  readonly #summaries: SummaryFamily[] = [];
  readonly #shares = new Set<() => void>();
  #closed = false;

  constructor(options?: MetricsOptions) {
    super();
    const o = checkOptions(options);
    this.prefix = o.prefix;
    this.#inst = new Instruments(o.prefix, o.maxSeries);
    if (o.register !== undefined) {
      const bridge = new PromClientBridge(o.register);
      this.#bridge = bridge;
      this.#inst.onFamily = (fam) => bridge.register(fam);
    }
    if (o.system) this.#system = new SystemMetrics(this, o.evaluationIntervalMs);
    this.alerts = new AlertManager({
      reader: this,
      emit: (alert) => this.emit('alert', alert),
      intervalMs: o.evaluationIntervalMs,
      defaultRules: o.defaultRules,
      prefix: o.prefix,
      sink: this,
    });
  }

  /** In a worker thread: records into the series of the Metrics that made `share` (see lib/metrics/worker.ts). */
  static attach(share: MetricsShare): WorkerMetrics {
    return new WorkerMetrics(share);
  }

  counter(name: string, options: MetricOptions): Counter {
    return this.#inst.counter(name, options);
  }

  gauge(name: string, options: MetricOptions): Gauge {
    return this.#inst.gauge(name, options);
  }

  histogram(name: string, options: HistogramOptions): Histogram {
    return this.#inst.histogram(name, options);
  }

  /**
   * Exposes an HDR histogram as a summary (quantiles 0.5, 0.9, 0.99, 0.999 and 1 = max,
   * `_sum`, `_count`) read from its snapshot at scrape time. `scale` converts its unit to
   * the exposed one (default 1e-9: nanoseconds to seconds). Nothing is added per recording.
   */
  hdrHistogram(name: string, options: { help: string; histogram: HdrSource; scale?: number }): void {
    const what = 'metrics.hdrHistogram';
    checkMetricName(name, what);
    if (options === null || typeof options !== 'object') throw invalidArgument(`${what}: options must be an object`);
    const { help, histogram, scale = 1e-9 } = options;
    if (typeof help !== 'string') throw invalidArgument(`${what}: help must be a string`);
    if (histogram === null || typeof histogram !== 'object' || typeof histogram.snapshot !== 'function') throw invalidArgument(`${what}: histogram must have snapshot()`);
    if (typeof scale !== 'number' || !Number.isFinite(scale) || scale <= 0) throw invalidArgument(`${what}: scale must be a positive finite number`);
    const full = `${this.prefix}${name}`;
    checkMetricName(full, what);
    this.#inst.claim(full, 'summary', what);
    this.#summaries.push({
      name: full,
      help,
      read: () => {
        const s = histogram.snapshot();
        return {
          count: s.count,
          sum: s.sum * scale,
          quantiles: [
            [0.5, s.p50 * scale],
            [0.9, s.p90 * scale],
            [0.99, s.p99 * scale],
            [0.999, s.p999 * scale],
            [1, s.max * scale],
          ],
        };
      },
    });
  }

  /**
   * A descriptor a worker thread passes to `Metrics.attach()` to record into this
   * instance's series. Transfer its port: `{ workerData: { share }, transferList: [share.port] }`.
   */
  shareWith(): MetricsShare {
    const { share, close } = openShare(
      {
        family: (shape) => {
          try {
            return this.#inst.family(shape, 'worker');
          } catch {
            return undefined;
          }
        },
        error: () => this.errors++,
      },
      this.prefix,
      this.#inst.maxSeries,
    );
    this.#shares.add(close);
    return share;
  }

  async expose(options?: ExposeOptions): Promise<Exposition> {
    if (options !== undefined && (options === null || typeof options !== 'object')) throw invalidArgument('metrics.expose(options): options must be an object');
    const accept = options?.accept;
    const acceptEncoding = options?.acceptEncoding;
    if (accept !== undefined && typeof accept !== 'string') throw invalidArgument('metrics.expose(options): accept must be a string');
    if (acceptEncoding !== undefined && typeof acceptEncoding !== 'string') throw invalidArgument('metrics.expose(options): acceptEncoding must be a string');
    const f = negotiate(accept);
    const out = new ByteSink();
    const clock = { start: performance.now() };
    for (const fam of [...this.#inst.families.values()]) await renderFamily(fam, f, out, clock);
    for (const s of this.#summaries) out.push(renderSummary(s, f));
    if (this.#bridge !== undefined) {
      const { metrics, defaultLabels } = await this.#bridge.foreign(new Set(this.#inst.claims.keys()));
      clock.start = performance.now();
      for (const m of metrics) {
        out.push(renderForeign(m, f, defaultLabels));
        if (performance.now() - clock.start > 4) {
          await yieldToLoop();
          clock.start = performance.now();
        }
      }
    }
    if (f === 'openmetrics') out.push('# EOF\n');
    const body = await out.bytes(clock);
    const contentType = contentTypeOf(f);
    if (acceptsGzip(acceptEncoding)) return { contentType, body: await gzipBody(body), contentEncoding: 'gzip' };
    return { contentType, body };
  }

  // ------------------------------------------------------------------ MetricsReader

  #find(name: string): Family | undefined {
    if (typeof name !== 'string') throw invalidArgument('metrics: a metric name must be a string');
    return this.#inst.families.get(name) ?? this.#inst.families.get(`${name}_total`);
  }

  /** Indexes of the series of `fam` whose labels include every given label. */
  #matching(fam: Family, labels: Record<string, string | number> | undefined): number[] {
    const out: number[] = [];
    const want = labels === undefined ? [] : Object.entries(labels).map(([k, v]) => [fam.labelNames.indexOf(k), String(v)] as const);
    if (want.some(([j]) => j < 0)) return out;
    for (let i = 0; i < fam.seriesCount; i++) {
      const vals = fam.labelValues[i];
      if (want.every(([j, v]) => vals[j] === v)) out.push(i);
    }
    return out;
  }

  snapshot(): MetricSnapshot[] {
    const out: MetricSnapshot[] = [];
    for (const fam of this.#inst.families.values()) {
      const series: SeriesSample[] = [];
      const buf = new Float64Array(fam.stride);
      for (let i = 0; i < fam.seriesCount; i++) {
        const labels = Object.freeze(Object.fromEntries(fam.labelNames.map((k, j) => [k, fam.labelValues[i][j]])));
        if (fam.type !== 'histogram') {
          series.push({ labels, value: fam.value(i) });
          continue;
        }
        fam.readHistogram(i, buf);
        const nb = fam.bounds.length;
        const buckets: Array<readonly [number, number]> = [];
        let cum = 0;
        for (let k = 0; k <= nb; k++) {
          cum += buf[k];
          buckets.push([k < nb ? fam.bounds[k] : Number.POSITIVE_INFINITY, cum]);
        }
        series.push({ labels, value: buf[nb + 1], count: cum, buckets });
      }
      out.push({ name: fam.name, type: fam.type, help: fam.help, series });
    }
    return out;
  }

  value(name: string, labels?: MetricLabels): number | undefined {
    const fam = this.#find(name);
    const l = checkLabelsArg(labels, 'metrics.value');
    if (fam === undefined) return undefined;
    const idx = this.#matching(fam, l);
    if (idx.length === 0) return undefined;
    let v = 0;
    const buf = new Float64Array(fam.stride);
    for (const i of idx) {
      if (fam.type === 'histogram') {
        fam.readHistogram(i, buf);
        v += buf[fam.bounds.length + 1];
      } else {
        v += fam.value(i);
      }
    }
    return v;
  }

  /** Prometheus' histogram_quantile over the matching series' buckets (linear within a bucket). */
  quantile(name: string, q: number, labels?: MetricLabels): number | undefined {
    if (typeof q !== 'number' || !(q >= 0 && q <= 1)) throw invalidArgument(`metrics.quantile: q must be a number from 0 to 1, got ${String(q)}`);
    const fam = this.#find(name);
    const l = checkLabelsArg(labels, 'metrics.quantile');
    if (fam === undefined || fam.type !== 'histogram') return undefined;
    const idx = this.#matching(fam, l);
    const nb = fam.bounds.length;
    const counts = new Float64Array(nb + 2);
    const buf = new Float64Array(nb + 2);
    for (const i of idx) {
      fam.readHistogram(i, buf);
      for (let k = 0; k <= nb; k++) counts[k] += buf[k];
    }
    let total = 0;
    for (let k = 0; k <= nb; k++) total += counts[k];
    if (total === 0) return undefined;
    const rank = q * total;
    let cum = 0;
    for (let k = 0; k <= nb; k++) {
      const prev = cum;
      cum += counts[k];
      if (cum >= rank && counts[k] > 0) {
        if (k === nb) return nb > 0 ? fam.bounds[nb - 1] : Number.NaN;
        const upper = fam.bounds[k];
        const lower = k > 0 ? fam.bounds[k - 1] : upper > 0 ? 0 : upper;
        return lower + (upper - lower) * ((rank - prev) / counts[k]);
      }
    }
    return nb > 0 ? fam.bounds[nb - 1] : Number.NaN;
  }

  /** Stops the timers, the worker channels and takes our series out of the prom-client registry. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.alerts.close();
    this.#system?.close();
    for (const close of this.#shares) close();
    this.#shares.clear();
    this.#bridge?.close();
  }
}

/** A worker thread's view of a Metrics (Metrics.attach): the recording half only. */
export class WorkerMetrics {
  readonly prefix: string;
  readonly #inst: Instruments;
  readonly #client: ShareClient;

  constructor(share: MetricsShare) {
    this.#client = new ShareClient(share);
    this.prefix = share.prefix;
    this.#inst = new Instruments(share.prefix, share.maxSeries);
    this.#inst.onFamily = (fam) => this.#client.adopt(fam);
  }

  counter(name: string, options: MetricOptions): Counter {
    return this.#inst.counter(name, options);
  }

  gauge(name: string, options: MetricOptions): Gauge {
    return this.#inst.gauge(name, options);
  }

  histogram(name: string, options: HistogramOptions): Histogram {
    return this.#inst.histogram(name, options);
  }

  /** Resolves once the main thread has adopted every series made so far. */
  flush(): Promise<void> {
    return this.#client.flush();
  }

  close(): void {
    this.#client.close();
  }
}
