// Downsampled metric history kept in process, fed from MetricsReader.snapshot() on the
// alert manager's evaluation tick; read by trend rules, GET /api/metrics/history and
// `myelin report`.
//
// Two tiers per series, each a ring of Float64Array slots indexed by slot number
// (time / resolution) modulo its length, with the slot number stored beside the value
// so a stale slot (from a lap ago) is recognised without clearing:
//
//   fine    1 s resolution, 3,600 slots  (the last hour)      last value in the second
//   coarse  1 min resolution, 1,440 slots (the last 24 hours) counters: last value;
//                                                             gauges: mean of the minute
//
// One series costs (3,600 * 2 + 1,440 * 3) * 8 B = 92 KB, so the series count is
// bounded (`maxSeries`, default 1,000: 92 MB at most; the first series seen win, and
// later ones are counted in `dropped`).
//
// Histograms are kept as three derived series per labelled series: `<name>_count`,
// `<name>_sum` (counters) and `<name>` with an added `quantile` label (0.5, 0.95, 0.99)
// computed from the buckets *observed since the previous record* (so a chart shows the
// latency of each second, not since start; NaN for a second without observations).
import { invalidArgument } from '../errors.js';
import type { RouteHandler } from '../gateway/http-types.js';
import { parseDuration, parseTime } from './duration.js';
import type { Alert, MetricLabels, MetricSnapshot, MetricType } from './types.js';

export interface HistoryOptions {
  /** Series kept (derived histogram series included). Default 1,000. */
  maxSeries?: number;
  /** Alerts kept (firing and resolved notifications). Default 1,000. */
  maxAlerts?: number;
  /** Clock for queries' defaults. Default Date.now. */
  now?: () => number;
}

export interface HistoryQuery {
  /** Epoch ms, inclusive. Default: to - 1 h. */
  from?: number;
  /** Epoch ms, inclusive. Default: now. */
  to?: number;
  /** Bucket width in ms (>= 1,000): the fine tier under 60,000 while `from` is within the last hour, else the coarse one. */
  step?: number;
}

export interface HistorySeries {
  labels: Record<string, string>;
  /** [bucket start (epoch ms), value]: the last value in the bucket for counters, the mean for gauges. */
  points: Array<[number, number]>;
}

export interface HistoryResult {
  metric: string;
  type: MetricType | undefined;
  from: number;
  to: number;
  step: number;
  series: HistorySeries[];
}

export const HISTOGRAM_QUANTILES = [0.5, 0.95, 0.99] as const;
/** Most points one query may ask for per series (Prometheus' limit). */
export const MAX_POINTS = 11_000;

const FINE_MS = 1000;
const FINE_SLOTS = 3600;
const COARSE_MS = 60_000;
const COARSE_SLOTS = 1440;

interface Series {
  labels: Record<string, string>;
  /** 'last' for counters, 'mean' for gauges in the coarse tier. */
  mean: boolean;
  fineSlot: Float64Array;
  fineVal: Float64Array;
  coarseSlot: Float64Array;
  coarseSum: Float64Array;
  coarseN: Float64Array;
}

interface Metric {
  type: MetricType;
  series: Map<string, Series>;
}

export function labelKey(labels: Readonly<Record<string, string | number>>): string {
  const keys = Object.keys(labels).sort();
  let s = '';
  for (const k of keys) s += `${k}\u0000${String(labels[k])}\u0001`;
  return s;
}

/**
 * The q-quantile (0..1) of cumulative buckets ([le, count], +Inf last), interpolated
 * linearly inside the bucket as Prometheus' histogram_quantile does (the first bucket
 * from 0; a rank in +Inf gives the highest finite bound). NaN without observations.
 */
export function bucketQuantile(buckets: ReadonlyArray<readonly [number, number]>, q: number): number {
  const n = buckets.length;
  if (n === 0) return Number.NaN;
  const total = buckets[n - 1][1];
  if (!(total > 0)) return Number.NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (let i = 0; i < n; i++) {
    const [le, count] = buckets[i];
    if (count >= rank) {
      if (le === Infinity) return i > 0 ? buckets[i - 1][0] : Number.NaN;
      const inBucket = count - prevCount;
      return inBucket > 0 ? prevLe + ((le - prevLe) * (rank - prevCount)) / inBucket : le;
    }
    prevLe = le;
    prevCount = count;
  }
  return buckets[n - 1][0];
}

function matches(labels: Record<string, string>, want: Readonly<Record<string, string | number>> | undefined): boolean {
  if (!want) return true;
  for (const k of Object.keys(want)) if (labels[k] !== String(want[k])) return false;
  return true;
}

function checkLabels(labels: unknown, where: string): Readonly<Record<string, string | number>> | undefined {
  if (labels === undefined) return undefined;
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) throw invalidArgument(`${where}: labels must be an object of strings`);
  for (const [k, v] of Object.entries(labels)) {
    if (typeof v !== 'string' && typeof v !== 'number') throw invalidArgument(`${where}: label '${k}' must be a string`);
  }
  return labels as Record<string, string | number>;
}

export class MetricHistory {
  /** Snapshots recorded so far (the first is the histograms' baseline). */
  #snapshots = 0;
  readonly maxSeries: number;
  readonly maxAlerts: number;
  /** Series not kept because maxSeries was reached (counted once per record that met them). */
  dropped = 0;
  readonly #now: () => number;
  readonly #metrics = new Map<string, Metric>();
  /**
   * Per histogram series: the cumulative bucket counts at the end of the previous
   * 1 s point (`base`) and at the last snapshot (`last`). A point's quantiles come from
   * the counts since `base`, so several snapshots inside one second all describe that
   * whole second (the last one written wins, and it has seen everything).
   */
  readonly #prevBuckets = new Map<string, { slot: number; base: number[]; last: number[] }>();
  readonly #alerts: Alert[] = [];
  #count = 0;
  #last = Number.NEGATIVE_INFINITY;

  constructor(options: HistoryOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalidArgument('MetricHistory options must be an object');
    for (const k of Object.keys(options)) if (!['maxSeries', 'maxAlerts', 'now'].includes(k)) throw invalidArgument(`MetricHistory: unknown option '${k}'`);
    const int = (v: unknown, d: number, name: string): number => {
      if (v === undefined) return d;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1_000_000) throw invalidArgument(`MetricHistory: ${name} must be an integer in [1, 1e6], got ${String(v)}`);
      return v;
    };
    this.maxSeries = int(options.maxSeries, 1000, 'maxSeries');
    this.maxAlerts = int(options.maxAlerts, 1000, 'maxAlerts');
    if (options.now !== undefined && typeof options.now !== 'function') throw invalidArgument('MetricHistory: now must be a function');
    this.#now = options.now ?? Date.now;
  }

  /** Series kept. */
  get size(): number {
    return this.#count;
  }

  /** Records every series of a snapshot at time `at` (epoch ms). Records going back in time are ignored. */
  record(snapshot: readonly MetricSnapshot[], at: number): void {
    this.#snapshots++;
    if (!Array.isArray(snapshot)) throw invalidArgument('history.record: snapshot must be an array');
    if (typeof at !== 'number' || !Number.isFinite(at) || at < 0) throw invalidArgument('history.record: at must be epoch ms');
    if (at < this.#last) return;
    this.#last = at;
    for (const m of snapshot) {
      if (!m || typeof m.name !== 'string' || !Array.isArray(m.series)) continue;
      if (m.type === 'histogram') {
        for (const s of m.series) this.#recordHistogram(m.name, s.labels, s.value, s.count, s.buckets, at);
      } else {
        for (const s of m.series) this.#put(m.name, m.type, s.labels, s.value, at);
      }
    }
  }

  #recordHistogram(name: string, labels: Readonly<Record<string, string>>, sum: number, count: number | undefined, buckets: SeriesBuckets, at: number): void {
    this.#put(`${name}_sum`, 'counter', labels, sum, at);
    if (count !== undefined) this.#put(`${name}_count`, 'counter', labels, count, at);
    if (!buckets || buckets.length === 0) return;
    const key = `${name}\u0002${labelKey(labels)}`;
    const prev = this.#prevBuckets.get(key);
    const now = buckets.map((b) => b[1]);
    // Only series kept get a previous-bucket entry, so this map is bounded with them.
    if (prev === undefined && !this.#has(name, labels) && this.#count + HISTOGRAM_QUANTILES.length > this.maxSeries) {
      this.dropped++;
      return;
    }
    const slot = Math.floor(at / 1000);
    let st = prev;
    if (st === undefined) {
      // The history's first snapshot is the baseline: what it holds may span the whole
      // process. A series that appears in a later snapshot started from zero since the
      // one before, so its observations so far belong to this second. (Skipping them
      // lost them: a stage timed only in its first second never showed a quantile.)
      if (this.#snapshots <= 1) {
        this.#prevBuckets.set(key, { slot, base: now, last: now });
        return;
      }
      st = { slot, base: now.map(() => 0), last: now.map(() => 0) };
      this.#prevBuckets.set(key, st);
    }
    if (st.base.length !== now.length) {
      this.#prevBuckets.set(key, { slot, base: now, last: now });
      return;
    }
    if (slot !== st.slot) {
      st.base = st.last;
      st.slot = slot;
    }
    st.last = now;
    const delta: Array<[number, number]> = [];
    let reset = false;
    for (let i = 0; i < now.length; i++) {
      const d = now[i] - st.base[i];
      if (d < 0) reset = true;
      delta.push([buckets[i][0], d]);
    }
    for (const q of HISTOGRAM_QUANTILES) {
      const v = reset ? Number.NaN : bucketQuantile(delta, q);
      this.#put(name, 'gauge', { ...labels, quantile: String(q) }, v, at);
    }
  }

  #has(name: string, labels: Readonly<Record<string, string>>): boolean {
    const key = labelKey({ ...labels, quantile: String(HISTOGRAM_QUANTILES[0]) });
    return this.#metrics.get(name)?.series.has(key) ?? false;
  }

  #put(name: string, type: MetricType, labels: Readonly<Record<string, string>>, v: number, at: number): void {
    let m = this.#metrics.get(name);
    const key = labelKey(labels);
    let s = m?.series.get(key);
    if (!s) {
      if (this.#count >= this.maxSeries) {
        this.dropped++;
        return;
      }
      if (!m) this.#metrics.set(name, (m = { type, series: new Map() }));
      s = {
        labels: { ...labels },
        mean: type === 'gauge',
        fineSlot: new Float64Array(FINE_SLOTS).fill(-1),
        fineVal: new Float64Array(FINE_SLOTS),
        coarseSlot: new Float64Array(COARSE_SLOTS).fill(-1),
        coarseSum: new Float64Array(COARSE_SLOTS),
        coarseN: new Float64Array(COARSE_SLOTS),
      };
      m.series.set(key, s);
      this.#count++;
    }
    const fs = Math.floor(at / FINE_MS);
    const fi = fs % FINE_SLOTS;
    s.fineSlot[fi] = fs;
    s.fineVal[fi] = v;
    const cs = Math.floor(at / COARSE_MS);
    const ci = cs % COARSE_SLOTS;
    if (s.coarseSlot[ci] !== cs) {
      s.coarseSlot[ci] = cs;
      s.coarseSum[ci] = 0;
      s.coarseN[ci] = 0;
    }
    if (!s.mean) {
      s.coarseSum[ci] = v;
      s.coarseN[ci] = 1;
    } else if (Number.isFinite(v)) {
      s.coarseSum[ci] += v;
      s.coarseN[ci]++;
    }
  }

  /** Keeps a firing or resolved notification for the report and the route (the newest maxAlerts). */
  recordAlert(alert: Alert): void {
    this.#alerts.push({ ...alert, labels: { ...alert.labels } });
    if (this.#alerts.length > this.maxAlerts) this.#alerts.splice(0, this.#alerts.length - this.maxAlerts);
  }

  /** Notifications whose time (startsAt, or endsAt when resolved) is within [from, to]. */
  alerts(from = Number.NEGATIVE_INFINITY, to = Number.POSITIVE_INFINITY): Alert[] {
    return this.#alerts.filter((a) => {
      const t = a.status === 'resolved' ? (a.endsAt ?? a.startsAt) : a.startsAt;
      return t >= from && t <= to;
    });
  }

  /** The metrics kept, with their type and series count. */
  metrics(): Array<{ name: string; type: MetricType; series: number }> {
    return [...this.#metrics].map(([name, m]) => ({ name, type: m.type, series: m.series.size })).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** The series of `name` whose labels include `labels`, bucketed by `step` over [from, to]. */
  query(name: string, labels?: MetricLabels, q: HistoryQuery = {}): HistoryResult {
    if (typeof name !== 'string' || name.length === 0) throw invalidArgument('history.query: name must be a non-empty string');
    const want = checkLabels(labels, 'history.query');
    if (q === null || typeof q !== 'object') throw invalidArgument('history.query: options must be { from?, to?, step? }');
    for (const k of Object.keys(q)) if (!['from', 'to', 'step'].includes(k)) throw invalidArgument(`history.query: unknown option '${k}'`);
    const now = this.#now();
    const time = (v: unknown, d: number, w: string): number => {
      if (v === undefined) return d;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw invalidArgument(`history.query: ${w} must be epoch ms, got ${String(v)}`);
      return v;
    };
    const to = time(q.to, now, 'to');
    const from = time(q.from, to - 3_600_000, 'from');
    if (from > to) throw invalidArgument(`history.query: from (${from}) is after to (${to})`);
        // A minute of slack: a caller's "-1h" is computed a moment before this `now`; the
    // fine ring simply has no points for the part older than it keeps.
    const fineOk = from >= now - FINE_MS * FINE_SLOTS - COARSE_MS;
    let step: number;
    if (q.step === undefined) step = fineOk ? FINE_MS : COARSE_MS;
    else {
      if (typeof q.step !== 'number' || !Number.isFinite(q.step) || q.step < FINE_MS) throw invalidArgument(`history.query: step must be a number of ms >= 1000, got ${String(q.step)}`);
      step = q.step;
    }
    if ((to - from) / step > MAX_POINTS) throw invalidArgument(`history.query: (to - from) / step is over ${MAX_POINTS} points; use a larger step`);
    const fine = fineOk && step < COARSE_MS;
    const m = this.#metrics.get(name);
    const series: HistorySeries[] = [];
    if (m) for (const s of m.series.values()) if (matches(s.labels, want)) series.push({ labels: { ...s.labels }, points: this.#points(s, from, to, step, fine) });
    return { metric: name, type: m?.type, from, to, step, series };
  }

  #points(s: Series, from: number, to: number, step: number, fine: boolean): Array<[number, number]> {
    const res = fine ? FINE_MS : COARSE_MS;
    const slots = fine ? FINE_SLOTS : COARSE_SLOTS;
    const slotArr = fine ? s.fineSlot : s.coarseSlot;
    const first = Math.max(Math.floor(from / res), Math.floor(to / res) - slots + 1);
    const last = Math.floor(to / res);
    const out: Array<[number, number]> = [];
    let bucket = -1;
    let sum = 0;
    let n = 0;
    let lastV = Number.NaN;
    const flush = (): void => {
      if (bucket < 0) return;
      const v = s.mean ? (n > 0 ? sum / n : Number.NaN) : lastV;
      out.push([from + bucket * step, v]);
    };
    for (let slot = first; slot <= last; slot++) {
      const i = slot % slots;
      if (slotArr[i] !== slot) continue;
      const t = slot * res;
      if (t < from || t > to) continue;
      let v: number;
      let w = 1;
      if (fine) v = s.fineVal[i];
      else {
        w = s.coarseN[i];
        v = s.mean ? (w > 0 ? s.coarseSum[i] / w : Number.NaN) : s.coarseSum[i];
      }
      const b = Math.floor((t - from) / step);
      if (b !== bucket) {
        flush();
        bucket = b;
        sum = 0;
        n = 0;
        lastV = Number.NaN;
      }
      lastV = v;
      if (Number.isFinite(v) && w > 0) {
        sum += v * (fine ? 1 : w);
        n += fine ? 1 : w;
      }
    }
    flush();
    return out;
  }
}

type SeriesBuckets = ReadonlyArray<readonly [number, number]> | undefined;

/** JSON has no NaN: a point without a value is sent as null. */
function jsonPoints(points: Array<[number, number]>): Array<[number, number | null]> {
  return points.map(([t, v]) => [t, Number.isFinite(v) ? v : null]);
}

/**
 * GET /api/metrics/history for the gateway (mount with
 * `gw.route('GET', '/api/metrics/history', historyRoute(history))`):
 *
 *   ?metric=<name>&from=-1h&to=now&step=1m&labels={"priority":"low"}
 *       -> { metric, type, from, to, step, series: [{ labels, points: [[t, v|null]] }] }
 *   without metric
 *       -> { now, metrics: [{ name, type, series }], alerts: [...] } (alerts within from..to)
 *
 * from/to: epoch ms, ISO dates, 'now' or '-1h'; step: '10s', '1m' or ms. Bad parameters
 * answer 400 { error: { code: 'ERR_INVALID_ARGUMENT', message } }; the message never
 * repeats a string that was sent (the metric name is only looked up, never parsed).
 */
export function historyRoute(history: MetricHistory, now: () => number = Date.now): RouteHandler {
  if (!(history instanceof MetricHistory)) throw invalidArgument('historyRoute: history must be a MetricHistory');
  return (req) => {
    try {
      const q = req.query;
      const t = now();
      const to = parseTime(q.get('to') ?? 'now', t, 'to');
      const from = parseTime(q.get('from') ?? '-1h', t, 'from');
      const metric = q.get('metric');
      if (metric === null || metric === '') {
        return { status: 200, headers: { 'cache-control': 'no-store' }, body: { now: t, metrics: history.metrics(), alerts: history.alerts(from, to) } };
      }
      const stepRaw = q.get('step');
      const step = stepRaw === null ? undefined : parseDuration(/^\d+$/.test(stepRaw) ? Number(stepRaw) : stepRaw, 'step');
      let labels: Record<string, string> | undefined;
      const l = q.get('labels');
      if (l !== null) {
        try {
          labels = JSON.parse(l) as Record<string, string>;
        } catch {
          throw invalidArgument('labels must be a JSON object of strings');
        }
      }
      const r = history.query(metric, labels, { from, to, step });
      return { status: 200, headers: { 'cache-control': 'no-store' }, body: { ...r, series: r.series.map((s) => ({ labels: s.labels, points: jsonPoints(s.points) })) } };
    } catch (err) {
      const e = err as { code?: string; message?: string };
      if (e?.code === 'ERR_INVALID_ARGUMENT') return { status: 400, body: { error: { code: e.code, message: String(e.message).slice(0, 200) } } };
      throw err;
    }
  };
}
