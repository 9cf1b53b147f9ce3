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
//
// The bus never calls the sink per event: a publish costs tens of nanoseconds and a
// sink call more than that. Instead the figures of stats() are copied into the sink
// every `FLUSH_MS` (an unref'd timer) and once more at close, counters as the
// increase since the last flush. So a scrape sees the bus as of at most a second ago,
// and the counters agree with stats() at every flush.
//
// The sink is untrusted: a call that throws (or a factory that returns no instrument)
// adds to `errors` and is otherwise ignored; it never fails the bus.
import { type CounterHandle, type GaugeHandle, type MetricLabels, type MetricsSink, makeInstrument } from '../internal/metrics-sink.js';
import type { BusStats, Priority } from './types.js';

const FLUSH_MS = 1000;
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

  constructor(sink: MetricsSink, stats: () => BusStats) {
    this.#stats = stats;
    const lane = ['priority'];
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
  }

  /** A last flush, then no more. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    clearInterval(this.#timer);
  }
}
