// What a Bus records into a MetricsSink (lib/internal/metrics-sink.ts) when the
// `metrics` option gives one. Names carry no prefix (the sink adds its own):
//
//   bus_events_published_total{priority}   events accepted into a lane
//   bus_events_delivered_total             events every delivery of which succeeded
//   bus_events_failed_total                events a delivery of which threw or rejected
//   bus_events_dropped_total{priority}     events dropped by overflow, or routed nowhere
//   bus_events_unrouted_total              part of dropped: no subscription matched
//   bus_publish_refused_total              publishes not accepted (lane full under 'wait' or 'reject')
//   bus_events_queued{priority}            events waiting in each lane
//   bus_events_in_flight                   events taken from a lane, some delivery unsettled
//   bus_subscriptions                      live subscriptions
//   bus_latency_seconds{quantile}          publish -> handler start: 0.5, 0.99, 0.999 and 1 (max)
//   bus_prefix_events_published_total{subject_prefix}   published, by the subject's first token
//   bus_prefix_events_dropped_total{subject_prefix}     dropped (overflow, shedding, unrouted)
//   bus_prefix_deliveries_failed_total{subject_prefix}  failed deliveries (an event failing
//                                                       in two subscriptions counts twice)
//       at most MAX_PREFIXES tokens, in first-seen order, then subject_prefix="other"
//   bus_stage_seconds{stage}               the hot-path breakdown, one delivery in 128 timed
//                                          (fewer at high rates: 1,000-4,000 a second, spread):
//                                          queue (publish -> its delivery round), dispatch
//                                          (round -> handler start), handler (start -> return,
//                                          or -> settlement for a Promise); in-process handlers
//   bus_worker_utilization_ratio{pool}     busy time / (threads x wall time) over the flush interval
//   bus_worker_restarts_total{pool}        worker threads that exited and were replaced
//
// The labelled prefix families are new names beside the unlabelled and per-priority ones,
// which stay as they were (alert rules and dashboards read them). Stage samples wait in
// a bounded reservoir (StageSamples) and reach the sink's histogram at the flush, so the
// sink is still never called from a delivery.
//
// The bus never calls the sink per event: a publish costs tens of nanoseconds and a
// sink call more than that. Instead the figures of stats() are copied into the sink
// every `FLUSH_MS` (an unref'd timer) and once more at close, counters as the
// increase since the last flush. So a scrape sees the bus as of at most a second ago,
// and the counters agree with stats() at every flush.
//
// The sink is untrusted: a call that throws (or a factory that returns no instrument)
// adds to `errors` and is otherwise ignored; it never fails the bus.
import { type CounterHandle, type GaugeHandle, type HistogramHandle, type MetricLabels, type MetricsSink, makeInstrument } from '../internal/metrics-sink.js';
import type { BusStats, Priority } from './types.js';

const FLUSH_MS = 1000;
/** One delivery in this many, at most, is timed for bus_stage_seconds (lib/bus/bus.ts). */
export const STAGE_SAMPLE_EVERY = 128;
/** Subject prefixes with a series of their own; the rest share subject_prefix="other". */
export const MAX_PREFIXES = 32;
const STAGES = ['queue', 'dispatch', 'handler'] as const;
/** Samples kept per stage per flush interval (a reservoir past that: unbiased, bounded). */
const STAGE_CAP = 2048;
const STAGE_BUCKETS = [0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** The bus's per-prefix counts: slot i is names[i]; slot MAX_PREFIXES is 'other'. */
export interface PrefixCounts {
  names: string[];
  published: number[];
  dropped: number[];
  failed: number[];
}

/** One worker pool's figures at a flush. */
export interface PoolSample {
  id: string;
  threads: number;
  /** Busy milliseconds since the pool started (WorkerPool.busyMs). */
  busyMs: number;
  /** Threads replaced after an exit, since the pool started. */
  restarts: number;
}

/** What a BusMetrics reads from its bus. */
export interface BusMetricsSource {
  stats(): BusStats;
  prefixes: PrefixCounts;
  stages: StageSamples;
  pools(): PoolSample[];
}

/**
 * Timed deliveries' stage durations (seconds) since the last flush: up to STAGE_CAP per
 * stage, then reservoir sampling (Algorithm R), so a busy second is sampled evenly and
 * memory stays fixed. Written by the bus's delivery loop, drained by the flush.
 */
export class StageSamples {
  readonly #values = STAGES.map(() => new Float64Array(STAGE_CAP));
  readonly #kept = [0, 0, 0];
  readonly #seen = [0, 0, 0];

  add(stage: number, seconds: number): void {
    const seen = ++this.#seen[stage];
    if (seen <= STAGE_CAP) {
      this.#values[stage][this.#kept[stage]++] = seconds;
    } else {
      const j = Math.floor(Math.random() * seen);
      if (j < STAGE_CAP) this.#values[stage][j] = seconds;
    }
  }

  /** Hands every kept sample to `f`, then starts a new interval. */
  drain(f: (stage: number, seconds: number) => void): void {
    for (let s = 0; s < STAGES.length; s++) {
      const v = this.#values[s];
      const n = this.#kept[s];
      this.#kept[s] = 0;
      this.#seen[s] = 0;
      for (let i = 0; i < n; i++) f(s, v[i]);
    }
  }
}
const PRIORITIES: readonly Priority[] = ['critical', 'high', 'normal', 'low'];
const QUANTILES = [
  ['0.5', 'p50'],
  ['0.99', 'p99'],
  ['0.999', 'p999'],
  ['1', 'max'],
] as const;

type Totals = Pick<BusStats, 'delivered' | 'failed' | 'unrouted' | 'refused'> & { published: number[]; dropped: number[] };

export class BusMetrics {
  /** Sink calls that threw, or instruments the sink did not give: each was ignored. */
  errors = 0;
  readonly #stats: () => BusStats;
  readonly #source: BusMetricsSource;
  readonly #prefixPublished: CounterHandle | undefined;
  readonly #prefixDropped: CounterHandle | undefined;
  readonly #prefixFailed: CounterHandle | undefined;
  readonly #stage: HistogramHandle | undefined;
  readonly #utilization: GaugeHandle | undefined;
  readonly #restarts: CounterHandle | undefined;
  readonly #stageLabels: MetricLabels[] = STAGES.map((stage) => ({ stage }));
  readonly #prefixLabels: MetricLabels[] = [];
  readonly #lastPrefix = { published: [] as number[], dropped: [] as number[], failed: [] as number[] };
  /** Per pool id: busyMs, restarts and the time at the last flush. */
  readonly #lastPool = new Map<string, { busyMs: number; restarts: number; at: number }>();
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #published: CounterHandle | undefined;
  readonly #delivered: CounterHandle | undefined;
  readonly #failed: CounterHandle | undefined;
  readonly #dropped: CounterHandle | undefined;
  readonly #unrouted: CounterHandle | undefined;
  readonly #refused: CounterHandle | undefined;
  readonly #queued: GaugeHandle | undefined;
  readonly #inFlight: GaugeHandle | undefined;
  readonly #subscriptions: GaugeHandle | undefined;
  readonly #latency: GaugeHandle | undefined;
  readonly #lane: MetricLabels[] = PRIORITIES.map((priority) => ({ priority }));
  readonly #quantile: MetricLabels[] = QUANTILES.map(([quantile]) => ({ quantile }));
  #last: Totals = { delivered: 0, failed: 0, unrouted: 0, refused: 0, published: [0, 0, 0, 0], dropped: [0, 0, 0, 0] };
  #closed = false;

  constructor(sink: MetricsSink, source: BusMetricsSource) {
    this.#source = source;
    this.#stats = source.stats;
    const lane = ['priority'];
    const prefix = ['subject_prefix'];
    this.#prefixPublished = this.#make(() => sink.counter('bus_prefix_events_published_total', { help: 'Events accepted by the bus, by the subject\'s first token (32 at most, then "other")', labelNames: prefix }), 'inc');
    this.#prefixDropped = this.#make(() => sink.counter('bus_prefix_events_dropped_total', { help: 'Bus events dropped (overflow, shedding, no subscription), by the subject\'s first token', labelNames: prefix }), 'inc');
    this.#prefixFailed = this.#make(() => sink.counter('bus_prefix_deliveries_failed_total', { help: 'Bus deliveries that threw or rejected, by the subject\'s first token', labelNames: prefix }), 'inc');
    this.#stage = this.#make(
      () => sink.histogram('bus_stage_seconds', { help: 'Hot-path stages of a bus event, one delivery in 128 timed (at most a few thousand a second): queue (publish to its delivery round), dispatch (round to handler start), handler (run time)', labelNames: ['stage'], buckets: STAGE_BUCKETS }),
      'observe',
    );
    this.#utilization = this.#make(() => sink.gauge('bus_worker_utilization_ratio', { help: 'Share of the flush interval a worker pool\'s threads spent handling events (0 to 1)', labelNames: ['pool'] }), 'set');
    this.#restarts = this.#make(() => sink.counter('bus_worker_restarts_total', { help: 'Worker threads that exited and were replaced', labelNames: ['pool'] }), 'inc');
    this.#published = this.#make(() => sink.counter('bus_events_published_total', { help: 'Events accepted into a bus lane', labelNames: lane }), 'inc');
    this.#delivered = this.#make(() => sink.counter('bus_events_delivered_total', { help: 'Bus events every delivery of which succeeded' }), 'inc');
    this.#failed = this.#make(() => sink.counter('bus_events_failed_total', { help: 'Bus events a delivery of which threw or rejected (dead-lettered)' }), 'inc');
    this.#dropped = this.#make(() => sink.counter('bus_events_dropped_total', { help: 'Bus events dropped by the overflow policy or routed to no subscription', labelNames: lane }), 'inc');
    this.#unrouted = this.#make(() => sink.counter('bus_events_unrouted_total', { help: 'Bus events no subscription matched (part of dropped)' }), 'inc');
    this.#refused = this.#make(() => sink.counter('bus_publish_refused_total', { help: "Publishes refused because a lane was full (overflow 'wait' or 'reject')" }), 'inc');
    this.#queued = this.#make(() => sink.gauge('bus_events_queued', { help: 'Events waiting in each bus lane', labelNames: lane }), 'set');
    this.#inFlight = this.#make(() => sink.gauge('bus_events_in_flight', { help: 'Bus events taken from a lane with a delivery not yet settled' }), 'set');
    this.#subscriptions = this.#make(() => sink.gauge('bus_subscriptions', { help: 'Live bus subscriptions' }), 'set');
    this.#latency = this.#make(() => sink.gauge('bus_latency_seconds', { help: 'Bus publish-to-handler latency quantiles', labelNames: ['quantile'] }), 'set');
    this.#timer = setInterval(() => this.flush(), FLUSH_MS);
    this.#timer.unref();
  }

  #make<T>(create: () => T, method: string): T | undefined {
    return makeInstrument(create, method, () => this.errors++);
  }

  #call(f: () => void): void {
    try {
      f();
    } catch {
      this.errors++;
    }
  }

  /** Copies stats() into the sink now. */
  flush(): void {
    if (this.#closed) return;
    const s = this.#stats();
    const last = this.#last;
    const next: Totals = {
      delivered: s.delivered,
      failed: s.failed,
      unrouted: s.unrouted,
      refused: s.refused,
      published: PRIORITIES.map((p) => s.lanes[p].published),
      dropped: [0, 0, 0, 0],
    };
    // Unrouted events count in `dropped` but in no lane's: charge them to the lane
    // totals' remainder so the labelled series add up to stats().dropped.
    let laneDropped = 0;
    for (let l = 0; l < 4; l++) laneDropped += s.lanes[PRIORITIES[l]].dropped;
    for (let l = 0; l < 4; l++) next.dropped[l] = s.lanes[PRIORITIES[l]].dropped;
    next.dropped[2] += s.dropped - laneDropped; // unrouted: reported under 'normal'
    const inc = (h: CounterHandle | undefined, labels: MetricLabels | undefined, d: number) => {
      if (h !== undefined && d > 0) this.#call(() => h.inc(labels, d));
    };
    for (let l = 0; l < 4; l++) {
      inc(this.#published, this.#lane[l], next.published[l] - last.published[l]);
      inc(this.#dropped, this.#lane[l], next.dropped[l] - last.dropped[l]);
      const q = this.#queued;
      if (q !== undefined) this.#call(() => q.set(this.#lane[l], s.lanes[PRIORITIES[l]].queued));
    }
    inc(this.#delivered, undefined, next.delivered - last.delivered);
    inc(this.#failed, undefined, next.failed - last.failed);
    inc(this.#unrouted, undefined, next.unrouted - last.unrouted);
    inc(this.#refused, undefined, next.refused - last.refused);
    const f = this.#inFlight;
    if (f !== undefined) this.#call(() => f.set(undefined, s.inFlight));
    const sub = this.#subscriptions;
    if (sub !== undefined) this.#call(() => sub.set(undefined, s.subscriptions));
    const lat = this.#latency;
    if (lat !== undefined && s.latencyUs.count > 0) {
      for (let k = 0; k < QUANTILES.length; k++) {
        const v = s.latencyUs[QUANTILES[k][1]] / 1e6;
        this.#call(() => lat.set(this.#quantile[k], v));
      }
    }
    this.#last = next;
    this.#flushPrefixes(inc);
    this.#flushStages();
    this.#flushPools(inc);
  }

  #flushPrefixes(inc: (h: CounterHandle | undefined, labels: MetricLabels | undefined, d: number) => void): void {
    const p = this.#source.prefixes;
    const labels = this.#prefixLabels;
    for (let i = 0; i <= MAX_PREFIXES; i++) {
      if (labels[i] === undefined) {
        if (i < MAX_PREFIXES && i >= p.names.length) continue; // no such prefix yet
        labels[i] = { subject_prefix: i === MAX_PREFIXES ? 'other' : p.names[i] };
      }
      const last = this.#lastPrefix;
      for (const [h, now, prev] of [
        [this.#prefixPublished, p.published, last.published],
        [this.#prefixDropped, p.dropped, last.dropped],
        [this.#prefixFailed, p.failed, last.failed],
      ] as const) {
        const v = now[i];
        inc(h, labels[i], v - (prev[i] ?? 0));
        prev[i] = v;
      }
    }
  }

  #flushStages(): void {
    const h = this.#stage;
    if (h === undefined) {
      this.#source.stages.drain(() => {});
      return;
    }
    let failed = false;
    this.#source.stages.drain((stage, v) => {
      if (failed) return;
      try {
        h.observe(this.#stageLabels[stage], v);
      } catch {
        failed = true; // once per flush: a broken sink is not called thousands of times
        this.errors++;
      }
    });
  }

  #flushPools(inc: (h: CounterHandle | undefined, labels: MetricLabels | undefined, d: number) => void): void {
    let pools: PoolSample[];
    try {
      pools = this.#source.pools();
    } catch {
      this.errors++;
      return;
    }
    const now = performance.now();
    for (const p of pools) {
      const labels = { pool: p.id };
      const last = this.#lastPool.get(p.id);
      if (last !== undefined) {
        const wall = (now - last.at) * p.threads;
        if (wall > 0 && this.#utilization !== undefined) {
          const r = Math.min(1, Math.max(0, (p.busyMs - last.busyMs) / wall));
          const g = this.#utilization;
          this.#call(() => g.set(labels, r));
        }
      }
      inc(this.#restarts, labels, p.restarts - (last?.restarts ?? 0));
      this.#lastPool.set(p.id, { busyMs: p.busyMs, restarts: p.restarts, at: now });
    }
  }

  /** A last flush, then no more. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    clearInterval(this.#timer);
  }
}
