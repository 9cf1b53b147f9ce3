// What a Gateway records into a MetricsSink (lib/internal/metrics-sink.ts) when the
// `metrics` option gives one. As with the bus (lib/bus/bus-metrics.ts), nothing is
// recorded per frame: the native counters of stats() are copied into the sink every
// second and once more at close, counters as their increase since the last copy.
//
//   gateway_connections, gateway_websockets                  gauges
//   gateway_{accepted,refused}_total                          connections
//   gateway_http_requests_total, gateway_frames_{in,out}_total, gateway_bytes_{in,out}_total
//   gateway_events_{in,out}_total, gateway_events_refused_total
//   gateway_errors_sent_total, gateway_rate_limited_total, gateway_auth_failures_total
//   gateway_closes_total{reason}
//   gateway_http_responses_total{code}                        by status class: 1xx..5xx
//   gateway_http_request_duration_seconds                     request reaching JS -> response ended
//   gateway_stage_seconds{stage="ingress"}                    a pub's bytes read by the I/O thread -> published
//                                                             into the bus (one pub in 64 is timed)
//
// The sink is untrusted: a call that throws, or an instrument it does not give, adds to
// `errors` and is otherwise ignored.
import { type CounterHandle, type GaugeHandle, type HistogramHandle, type MetricsSink, makeInstrument } from '../internal/metrics-sink.js';
import type { GatewayStats } from './gateway.js';

const FLUSH_MS = 1000;

type NumericKey = { [K in keyof GatewayStats]: GatewayStats[K] extends number ? K : never }[keyof GatewayStats];

const COUNTERS: ReadonlyArray<[string, string, NumericKey]> = [
  ['gateway_accepted_total', 'Connections accepted', 'accepted'],
  ['gateway_refused_total', 'Connections refused at the connection limit', 'refused'],
  ['gateway_http_requests_total', 'HTTP requests parsed', 'httpRequests'],
  ['gateway_frames_in_total', 'WebSocket messages received', 'framesIn'],
  ['gateway_frames_out_total', 'WebSocket frames sent', 'framesOut'],
  ['gateway_bytes_in_total', 'Bytes received', 'bytesIn'],
  ['gateway_bytes_out_total', 'Bytes sent', 'bytesOut'],
  ['gateway_events_in_total', 'Events published by network clients', 'eventsIn'],
  ['gateway_events_out_total', 'Events delivered to WebSocket subscribers', 'eventsOut'],
  ['gateway_events_refused_total', 'Network events the bus refused', 'eventsRefused'],
  ['gateway_errors_sent_total', 'Error frames sent', 'errorsSent'],
  ['gateway_rate_limited_total', 'Publishes refused by a rate limit', 'rateLimited'],
  ['gateway_auth_failures_total', 'Requests refused for a missing or wrong token', 'authFailures'],
];
const GAUGES: ReadonlyArray<[string, string, NumericKey]> = [
  ['gateway_connections', 'Open connections', 'connections'],
  ['gateway_websockets', 'Open WebSocket connections', 'websockets'],
];

export class GatewayMetrics {
  errors = 0;
  readonly #stats: () => GatewayStats;
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #counters: Array<[CounterHandle | undefined, NumericKey]>;
  readonly #gauges: Array<[GaugeHandle | undefined, NumericKey]>;
  readonly #closes: CounterHandle | undefined;
  readonly #responses: CounterHandle | undefined;
  readonly #duration: HistogramHandle | undefined;
  readonly #stage: HistogramHandle | undefined;
  readonly #ingress = { stage: 'ingress' };
  readonly #classes = ['1xx', '2xx', '3xx', '4xx', '5xx'].map((code) => ({ code }));
  #last = new Map<string, number>();
  #closed = false;

  constructor(sink: MetricsSink, stats: () => GatewayStats) {
    this.#stats = stats;
    this.#counters = COUNTERS.map(([name, help, key]) => [this.#make(() => sink.counter(name, { help }), 'inc'), key]);
    this.#gauges = GAUGES.map(([name, help, key]) => [this.#make(() => sink.gauge(name, { help }), 'set'), key]);
    this.#closes = this.#make(() => sink.counter('gateway_closes_total', { help: 'Connections closed, by reason', labelNames: ['reason'] }), 'inc');
    this.#responses = this.#make(() => sink.counter('gateway_http_responses_total', { help: 'HTTP responses by status class', labelNames: ['code'] }), 'inc');
    this.#duration = this.#make(
      () =>
        sink.histogram('gateway_http_request_duration_seconds', {
          help: 'HTTP request handling time, from the request reaching JS to the end of the response',
          buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        }),
      'observe',
    );
    this.#stage = this.#make(
      () =>
        sink.histogram('gateway_stage_seconds', {
          help: 'Hot-path stages of a network event (ingress: bytes read by the I/O thread to the bus publish)',
          labelNames: ['stage'],
          buckets: [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1],
        }),
      'observe',
    );
    this.#timer = setInterval(() => this.flush(), FLUSH_MS);
    this.#timer.unref();
  }

  #make<T>(create: () => T, method: string): T | undefined {
    return makeInstrument(create, method, () => this.errors++);
  }

  #inc(h: CounterHandle | undefined, id: string, total: number, labels?: Record<string, string>): void {
    const d = total - (this.#last.get(id) ?? 0);
    this.#last.set(id, total);
    if (h === undefined || d <= 0) return;
    try {
      h.inc(labels, d);
    } catch {
      this.errors++;
    }
  }

  /** One response ended (per request, not per frame: a request costs microseconds anyway). */
  response(status: number, seconds: number): void {
    if (this.#closed) return;
    const cls = this.#classes[Math.min(4, Math.max(0, Math.floor(status / 100) - 1))];
    try {
      this.#responses?.inc(cls, 1);
      this.#duration?.observe(undefined, seconds);
    } catch {
      this.errors++;
    }
  }

  /** One timed pub's ingress stage. */
  ingress(seconds: number): void {
    if (this.#closed || this.#stage === undefined) return;
    try {
      this.#stage.observe(this.#ingress, seconds);
    } catch {
      this.errors++;
    }
  }

  flush(): void {
    if (this.#closed) return;
    const s = this.#stats();
    for (const [h, key] of this.#counters) this.#inc(h, key, s[key]);
    for (const [h, key] of this.#gauges) {
      if (h === undefined) continue;
      try {
        h.set(undefined, s[key]);
      } catch {
        this.errors++;
      }
    }
    for (const [reason, n] of Object.entries(s.closes)) this.#inc(this.#closes, `closes:${reason}`, n, { reason });
  }

  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    clearInterval(this.#timer);
  }
}
