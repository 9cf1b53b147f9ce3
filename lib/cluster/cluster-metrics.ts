// The cluster bus's series, through the metrics sink (lib/internal/metrics-sink.ts):
// the outbox (queued, unacknowledged), engine acknowledgements, send failures,
// redeliveries, dead letters, takeovers and losses, and per group the load signals
// the engine reports (lag, pending, redeliveries), which alert rules and the
// autoscale action read (lib/metrics/alerts.ts). Polled every FLUSH_MS, never per event.
import { type CounterHandle, type GaugeHandle, type MetricsSink, makeInstrument } from '../internal/metrics-sink.js';
import type { GroupSignal } from './transport.js';
import type { ClusterStats } from './cluster-bus.js';

const FLUSH_MS = 5000;

export class ClusterMetrics {
  readonly #stats: () => ClusterStats;
  readonly #signals: () => Promise<GroupSignal[]>;
  readonly #timer: NodeJS.Timeout;
  readonly #gauges: Record<string, GaugeHandle | undefined>;
  readonly #counters: Record<string, CounterHandle | undefined>;
  readonly #last: Record<string, number> = {};
  readonly #lag: GaugeHandle | undefined;
  readonly #pending: GaugeHandle | undefined;
  readonly #groupRedelivered: GaugeHandle | undefined;
  #broken = false;

  constructor(sink: MetricsSink, stats: () => ClusterStats, signals: () => Promise<GroupSignal[]>) {
    this.#stats = stats;
    this.#signals = signals;
    const off = () => {
      this.#broken = true;
    };
    const g = (name: string, help: string, labelNames?: string[]) => makeInstrument(() => sink.gauge(name, { help, labelNames }), 'set', off);
    const c = (name: string, help: string) => makeInstrument(() => sink.counter(name, { help }), 'inc', off);
    this.#gauges = {
      outbox: g('bus_cluster_outbox_events', 'Events accepted by publish and not yet sent to the engine'),
      unacked: g('bus_cluster_unacked_events', 'Events sent to the engine and not yet acknowledged'),
      inFlight: g('bus_cluster_deliveries_in_flight', 'Deliveries taken from the engine and not yet settled here'),
      connected: g('bus_cluster_connected', '1 while the engine connection is up'),
    };
    this.#counters = {
      published: c('bus_cluster_published_total', 'Events accepted by publish on a cluster transport'),
      acked: c('bus_cluster_acked_total', 'Events the engine acknowledged'),
      sendFailures: c('bus_cluster_send_failures_total', 'Sends that failed and were retried'),
      unknown: c('bus_cluster_unknown_total', 'Events whose fate is unknown (publishAsync past its deadline, sends abandoned at close)'),
      delivered: c('bus_cluster_delivered_total', 'Deliveries whose handler succeeded (acknowledged)'),
      failed: c('bus_cluster_failed_total', 'Events dead-lettered after maxDeliver failed runs'),
      redelivered: c('bus_cluster_redelivered_total', 'Deliveries the engine made again (ack-wait expired, takeover)'),
      takeovers: c('bus_cluster_takeovers_total', 'Pending events of lapsed members taken over'),
      lost: c('bus_cluster_lost_total', 'Events the engine lost before delivery (trimmed)'),
    };
    this.#lag = g('bus_cluster_consumer_lag', 'Events in the engine a queue group has not been given yet', ['group']);
    this.#pending = g('bus_cluster_consumer_pending', 'Events delivered to a queue group and not yet acknowledged', ['group']);
    this.#groupRedelivered = g('bus_cluster_consumer_redelivered', 'Redeliveries the engine counted for a queue group', ['group']);
    this.#timer = setInterval(() => void this.flush(), FLUSH_MS);
    this.#timer.unref();
  }

  /** Copies the current figures into the sink. Never throws. */
  async flush(): Promise<void> {
    if (this.#broken) return;
    try {
      const s = this.#stats();
      const t = s.transport;
      this.#gauges.outbox?.set(undefined, t.outbox);
      this.#gauges.unacked?.set(undefined, t.unacked);
      this.#gauges.inFlight?.set(undefined, s.inFlight + s.queued);
      this.#gauges.connected?.set(undefined, t.connected ? 1 : 0);
      const now: Record<string, number> = {
        published: s.published,
        acked: t.acked,
        sendFailures: t.sendFailures,
        unknown: t.unknown,
        delivered: s.delivered,
        failed: s.failed,
        redelivered: t.redelivered,
        takeovers: t.takeovers.count,
        lost: t.lost,
      };
      for (const k in now) {
        const d = now[k] - (this.#last[k] ?? 0);
        if (d > 0) this.#counters[k]?.inc(undefined, d);
        this.#last[k] = now[k];
      }
      for (const sig of await this.#signals()) {
        const labels = { group: sig.group };
        this.#lag?.set(labels, sig.lag);
        this.#pending?.set(labels, sig.pending);
        this.#groupRedelivered?.set(labels, sig.redelivered);
      }
    } catch {
      // a sink or engine query that fails must not fail the bus; the next flush tries again
    }
  }

  /** Stops the timer after a last flush (before the transport closes: it asks the engine). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
