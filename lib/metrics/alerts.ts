// The alert manager behind `metrics.alerts` (shared/API.md "Metrics"): rules evaluated
// every `intervalMs` against MetricsReader.snapshot(), one state machine per rule and
// series, delivery (emit -> metrics.on('alert'), Alertmanager webhooks, `$SYS.alert.<name>`
// on an attached bus) and automated responses (actions.ts).
//
// Per series:  inactive --condition--> pending --held for `for`--> firing --condition
// gone--> resolved (notified with endsAt) -> inactive. While firing, `repeatInterval`
// re-notifies and `escalateAfter` raises the severity one step (info -> warning ->
// critical) each time that long has passed. A silence suppresses delivery and actions;
// the state is still tracked, so list() tells the truth and a resolve after the
// silence is delivered. A series that disappears from the snapshot resolves.
//
// A rule without `labels` evaluates every series of its metric separately (one alert
// per series), at most `maxSeriesPerRule` of them (the first seen; later ones are counted
// in stats().overflow). A rule on a metric that does not exist yet stays inactive.
//
// Nothing here throws out of evaluation: a snapshot that throws, a listener, a webhook
// or an action that fails are counted in stats().
import { invalidArgument } from '../errors.js';
import type { GaugeHandle, MetricsSink } from '../internal/metrics-sink.js';
import { type ActionContext, type AIClientLike, type BusLike, checkAction, runAction } from './actions.js';
import { EwmaDetector, checkEwmaOptions, linearTrend } from './detectors.js';
import { parseDuration } from './duration.js';
import { MetricHistory, bucketQuantile, labelKey } from './history.js';
import type { Alert, AlertAction, AlertCondition, AlertManagerApi, AlertRule, MetricLabels, MetricSnapshot, MetricsReader, SeriesSample, Severity } from './types.js';
import { type WebhookDeliveryOptions, deliverWebhook, webhookPayload } from './webhook.js';

/**
 * The series the default rules read, as the areas name them (without the prefix; the
 * manager prepends its `prefix`, default 'myelin_'). Prometheus conventions: base
 * units, `_ratio` for 0..1, `_total` on counters. Where an area does not record a
 * series yet, its rule simply stays inactive until it does.
 *
 * | key            | series                                        | type      | recorded by                  |
 * |----------------|-----------------------------------------------|-----------|------------------------------|
 * | cpu            | system_cpu_utilization_ratio{cpu}             | gauge     | lib/metrics/system.ts        |
 * | memory         | system_memory_utilization_ratio               | gauge     | lib/metrics/system.ts        |
 * | workers        | bus_worker_utilization_ratio{pool}            | gauge     | not yet (bus worker pools)   |
 * | busLatency     | bus_latency_seconds{quantile=0.5,0.99,..}     | gauge     | lib/bus/bus-metrics.ts       |
 * | httpLatency    | gateway_http_request_duration_seconds         | histogram | lib/gateway/gateway-metrics.ts |
 * | delivered      | bus_events_delivered_total                    | counter   | lib/bus/bus-metrics.ts       |
 * | failed         | bus_events_failed_total                       | counter   | lib/bus/bus-metrics.ts       |
 * | published      | bus_events_published_total{priority}          | counter   | lib/bus/bus-metrics.ts       |
 * | queued         | bus_events_queued{priority}                   | gauge     | lib/bus/bus-metrics.ts       |
 * | cache          | ai_cache_total{result=hit,miss,shared}        | counter   | lib/ai/client/client-metrics.ts |
 * | autoscale      | autoscale_desired_replicas                    | gauge     | actions.ts (autoscale action)|
 * | lag            | bus_cluster_consumer_lag{group}               | gauge     | lib/cluster/cluster-metrics.ts |
 */
export const KPI_SERIES = {
  cpu: 'system_cpu_utilization_ratio',
  memory: 'system_memory_utilization_ratio',
  workers: 'bus_worker_utilization_ratio',
  busLatency: 'bus_latency_seconds',
  httpLatency: 'gateway_http_request_duration_seconds',
  delivered: 'bus_events_delivered_total',
  failed: 'bus_events_failed_total',
  published: 'bus_events_published_total',
  queued: 'bus_events_queued',
  cache: 'ai_cache_total',
  autoscale: 'autoscale_desired_replicas',
  lag: 'bus_cluster_consumer_lag',
} as const;

/** The seed's KPIs as rules (shared/API.md "Metrics": on unless `defaultRules: false`). */
export function defaultRules(prefix = 'myelin_'): AlertRule[] {
  const n = (k: keyof typeof KPI_SERIES) => `${prefix}${KPI_SERIES[k]}`;
  return [
    { name: 'cpu-high', when: { metric: n('cpu'), above: 0.8 }, for: '1m', severity: 'warning' },
    { name: 'memory-high', when: { metric: n('memory'), above: 0.9 }, for: '1m', severity: 'warning' },
    { name: 'worker-utilization-high', when: { metric: n('workers'), above: 0.9 }, for: '1m', severity: 'warning' },
    { name: 'latency-p50-high', when: { metric: n('busLatency'), labels: { quantile: '0.5' }, above: 0.1 }, for: '30s', severity: 'warning' },
    { name: 'latency-p95-high', when: { metric: n('httpLatency'), quantile: 0.95, rateOverMs: 60_000, above: 0.5 }, for: '30s', severity: 'warning' },
    { name: 'latency-p99-high', when: { metric: n('busLatency'), labels: { quantile: '0.99' }, above: 1 }, for: '30s', severity: 'critical' },
    { name: 'error-rate-high', when: { metric: n('failed'), per: [n('failed'), n('delivered')], rateOverMs: 60_000, above: 0.001 }, for: '1m', severity: 'warning' },
    { name: 'queue-depth-high', when: { metric: n('queued'), above: 100 }, for: '30s', severity: 'warning' },
    // A queue group on a cluster transport falling behind: the scale-out signal (give
    // the rule an autoscale action to ask for replicas).
    { name: 'consumer-lag-high', when: { metric: n('lag'), above: 10_000 }, for: '1m', severity: 'warning' },
    { name: 'cache-hit-rate-low', when: { metric: n('cache'), labels: { result: 'hit' }, per: n('cache'), rateOverMs: 300_000, below: 0.9 }, for: '5m', severity: 'info' },
    { name: 'throughput-off-trend', when: { metric: n('published'), rateOverMs: 60_000, trend: { windowMs: 600_000, tolerance: 0.1, minRate: 1 } }, for: '1m', severity: 'info' },
  ];
}

export interface AlertManagerOptions {
  reader: MetricsReader;
  /** Every notification delivered (Metrics turns it into metrics.on('alert')). */
  emit?: (alert: Alert) => void;
  /** Evaluation period. Default 1,000 ms. */
  intervalMs?: number;
  /** The KPI rules of defaultRules(prefix). Default true. */
  defaultRules?: boolean;
  /** The prefix of the series names (Metrics' own). Default 'myelin_'. */
  prefix?: string;
  /** Where the autoscale gauge is made (Metrics itself). */
  sink?: MetricsSink;
  /** The history fed on each evaluation; false for none (trend rules then stay inactive). Default: a new MetricHistory. */
  history?: MetricHistory | false;
  /** Evaluate on an unref'd timer. Default true; false for tests that call evaluate(now). */
  timer?: boolean;
  /** Clock for the timer's evaluations. Default Date.now. */
  now?: () => number;
  /** Series one rule follows at most. Default 100. */
  maxSeriesPerRule?: number;
  /** Webhook delivery: attempts, backoff, timeout. */
  webhook?: Omit<WebhookDeliveryOptions, 'signal'>;
  /** Sent as the payloads' externalURL (the gateway's address). */
  externalURL?: string;
}

export interface AlertManagerStats {
  evaluations: number;
  /** reader.snapshot() calls that threw. */
  snapshotErrors: number;
  notifications: number;
  /** Notifications not delivered because their rule was silenced. */
  silenced: number;
  emitErrors: number;
  busErrors: number;
  webhooks: { sent: number; failed: number; attempts: number };
  actions: { run: number; failed: number; skipped: number };
  /** Series beyond maxSeriesPerRule, not followed. */
  overflow: number;
}

type State = 'inactive' | 'pending' | 'firing';

interface Cond {
  metric: string;
  labels: Record<string, string> | undefined;
  above: number | undefined;
  below: number | undefined;
  anomaly: ReturnType<typeof checkEwmaOptions> | undefined;
  quantile: number | undefined;
  rateOverMs: number | undefined;
  per: string[] | undefined;
  trend: { windowMs: number; tolerance: number; minRate: number } | undefined;
}

interface Sample {
  t: number;
  v: number;
  /** Histograms with a windowed quantile: the cumulative bucket counts. */
  b?: number[];
}

interface SeriesState {
  labels: Record<string, string>;
  state: State;
  detector: EwmaDetector | undefined;
  pendingSince: number;
  alert: Alert | undefined;
  lastNotified: number;
  lastEscalated: number;
  /** A shed-load (or other undo-able) action is on. */
  acting: boolean;
  seen: number;
}

interface RuleState {
  rule: AlertRule;
  cond: Cond;
  forMs: number;
  repeatMs: number | undefined;
  escalateMs: number | undefined;
  severity: Severity;
  series: Map<string, SeriesState>;
  /** Rate windows per metric series this rule reads: key metric + labels. */
  windows: Map<string, Sample[]>;
  silencedUntil: number;
  last: Alert | undefined;
}

const RULE_KEYS = ['name', 'when', 'for', 'severity', 'webhook', 'action', 'repeatInterval', 'escalateAfter'];
const COND_KEYS = ['metric', 'labels', 'above', 'below', 'anomaly', 'quantile', 'rateOverMs', 'per', 'trend'];
const SEVERITIES: readonly Severity[] = ['info', 'warning', 'critical'];
const NAME_RE = /^[A-Za-z][A-Za-z0-9_-]{0,127}$/;
const METRIC_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
/** Samples one rate window keeps at most (a 5 min window at 1 s ticks is 300). */
const MAX_WINDOW_SAMPLES = 4096;
const DEFAULT_RATE_WINDOW = 60_000;

function finite(v: unknown, where: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalidArgument(`${where} must be a finite number, got ${String(v)}`);
  return v;
}

function checkLabels(v: unknown, where: string): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalidArgument(`${where} must be an object of label values`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string' && typeof x !== 'number') throw invalidArgument(`${where}.${k} must be a string`);
    out[k] = String(x);
  }
  return out;
}

function checkMetric(v: unknown, where: string): string {
  if (typeof v !== 'string' || !METRIC_RE.test(v) || v.length > 200) throw invalidArgument(`${where} must be a metric name as exposed (prefix included)`);
  return v;
}

function checkCondition(w: unknown): Cond {
  if (w === null || typeof w !== 'object' || Array.isArray(w)) throw invalidArgument('alert rule: when must be { metric, above?, below?, anomaly?, ... }');
  const c = w as AlertCondition & Record<string, unknown>;
  for (const k of Object.keys(c)) if (!COND_KEYS.includes(k)) throw invalidArgument(`alert rule: unknown key 'when.${k}'`);
  const metric = checkMetric(c.metric, 'when.metric');
  const above = finite(c.above, 'when.above');
  const below = finite(c.below, 'when.below');
  const anomaly = c.anomaly === undefined ? undefined : checkEwmaOptions(c.anomaly, 'when.anomaly');
  let trend: Cond['trend'];
  if (c.trend !== undefined) {
    const t = c.trend as Record<string, unknown>;
    if (t === null || typeof t !== 'object' || Array.isArray(t)) throw invalidArgument('when.trend must be { windowMs?, tolerance?, minRate? }');
    for (const k of Object.keys(t)) if (!['windowMs', 'tolerance', 'minRate'].includes(k)) throw invalidArgument(`alert rule: unknown key 'when.trend.${k}'`);
    const windowMs = t.windowMs === undefined ? 600_000 : parseDuration(t.windowMs, 'when.trend.windowMs');
    if (windowMs < 10_000) throw invalidArgument('when.trend.windowMs must be at least 10 s');
    const tolerance = finite(t.tolerance, 'when.trend.tolerance') ?? 0.1;
    if (!(tolerance > 0)) throw invalidArgument('when.trend.tolerance must be > 0');
    const minRate = finite(t.minRate, 'when.trend.minRate') ?? 0;
    if (minRate < 0) throw invalidArgument('when.trend.minRate must be >= 0');
    trend = { windowMs, tolerance, minRate };
  }
  if (above === undefined && below === undefined && anomaly === undefined && trend === undefined) {
    throw invalidArgument('alert rule: when needs a condition: above, below, anomaly or trend');
  }
  const quantile = finite(c.quantile, 'when.quantile');
  if (quantile !== undefined && !(quantile > 0 && quantile < 1)) throw invalidArgument('when.quantile must be in (0, 1)');
  let rateOverMs = c.rateOverMs === undefined ? undefined : parseDuration(c.rateOverMs, 'when.rateOverMs');
  if (rateOverMs !== undefined && rateOverMs < 1000) throw invalidArgument('when.rateOverMs must be at least 1,000 ms');
  let per: string[] | undefined;
  if (c.per !== undefined) {
    const list = typeof c.per === 'string' ? [c.per] : c.per;
    if (!Array.isArray(list) || list.length === 0 || list.length > 16) throw invalidArgument('when.per must be a metric name or a list of 1..16');
    per = list.map((m, i) => checkMetric(m, `when.per[${i}]`));
    rateOverMs ??= DEFAULT_RATE_WINDOW;
    if (quantile !== undefined) throw invalidArgument('when.per and when.quantile do not go together');
  }
  return { metric, labels: checkLabels(c.labels, 'when.labels'), above, below, anomaly, quantile, rateOverMs, per, trend };
}

function checkWebhook(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(v as string);
  } catch {
    throw invalidArgument('alert rule: webhook must be an http(s) URL');
  }
  if (typeof v !== 'string' || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.username !== '' || u.password !== '') {
    throw invalidArgument('alert rule: webhook must be an http(s) URL without credentials');
  }
  return u.href;
}

/** Labels ⊇ want. */
function matches(labels: Readonly<Record<string, string>>, want: Record<string, string> | undefined): boolean {
  if (!want) return true;
  for (const k in want) if (labels[k] !== want[k]) return false;
  return true;
}

/** Per-second increase over the samples (counter resets counted as from zero). */
function rate(samples: Sample[]): number | undefined {
  if (samples.length < 2) return undefined;
  const dt = samples[samples.length - 1].t - samples[0].t;
  if (!(dt > 0)) return undefined;
  let inc = 0;
  for (let i = 1; i < samples.length; i++) {
    const d = samples[i].v - samples[i - 1].v;
    inc += d >= 0 ? d : samples[i].v;
  }
  return (inc * 1000) / dt;
}

function nextSeverity(s: Severity): Severity {
  return s === 'info' ? 'warning' : 'critical';
}

export class AlertManager implements AlertManagerApi {
  readonly history: MetricHistory | undefined;
  readonly intervalMs: number;
  readonly prefix: string;
  readonly #reader: MetricsReader;
  readonly #emit: ((a: Alert) => void) | undefined;
  readonly #sink: MetricsSink | undefined;
  readonly #now: () => number;
  readonly #maxSeries: number;
  readonly #webhook: Omit<WebhookDeliveryOptions, 'signal'>;
  readonly #externalURL: string | undefined;
  readonly #rules = new Map<string, RuleState>();
  readonly #abort = new AbortController();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #timer: ReturnType<typeof setInterval> | undefined;
  #bus: BusLike | undefined;
  #ai: AIClientLike | undefined;
  #replicas: GaugeHandle | undefined;
  #closed = false;
  #evaluating = false;
  readonly #stats: AlertManagerStats = {
    evaluations: 0,
    snapshotErrors: 0,
    notifications: 0,
    silenced: 0,
    emitErrors: 0,
    busErrors: 0,
    webhooks: { sent: 0, failed: 0, attempts: 0 },
    actions: { run: 0, failed: 0, skipped: 0 },
    overflow: 0,
  };

  constructor(options: AlertManagerOptions) {
    if (options === null || typeof options !== 'object') throw invalidArgument('AlertManager: options must be an object');
    const known = ['reader', 'emit', 'intervalMs', 'defaultRules', 'prefix', 'sink', 'history', 'timer', 'now', 'maxSeriesPerRule', 'webhook', 'externalURL'];
    for (const k of Object.keys(options)) if (!known.includes(k)) throw invalidArgument(`AlertManager: unknown option '${k}'`);
    const r = options.reader as unknown as Record<string, unknown> | null;
    if (r === null || typeof r !== 'object' || typeof r.snapshot !== 'function') throw invalidArgument('AlertManager: reader must implement snapshot()');
    if (options.emit !== undefined && typeof options.emit !== 'function') throw invalidArgument('AlertManager: emit must be a function');
    if (options.now !== undefined && typeof options.now !== 'function') throw invalidArgument('AlertManager: now must be a function');
    const iv = options.intervalMs ?? 1000;
    if (typeof iv !== 'number' || !Number.isFinite(iv) || iv < 10 || iv > 3_600_000) throw invalidArgument(`AlertManager: intervalMs must be in [10, 3600000], got ${String(iv)}`);
    const ms = options.maxSeriesPerRule ?? 100;
    if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 1 || ms > 10_000) throw invalidArgument('AlertManager: maxSeriesPerRule must be an integer in [1, 10000]');
    const prefix = options.prefix ?? 'myelin_';
    if (typeof prefix !== 'string' || (prefix !== '' && !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix))) throw invalidArgument('AlertManager: prefix must be a metric name prefix');
    if (options.history !== undefined && options.history !== false && !(options.history instanceof MetricHistory)) throw invalidArgument('AlertManager: history must be a MetricHistory or false');
    if (options.externalURL !== undefined) checkWebhook(options.externalURL);
    const wh = options.webhook ?? {};
    if (wh === null || typeof wh !== 'object') throw invalidArgument('AlertManager: webhook must be { attempts?, backoffMs?, timeoutMs? }');
    for (const k of Object.keys(wh)) if (!['attempts', 'backoffMs', 'timeoutMs'].includes(k)) throw invalidArgument(`AlertManager: unknown option 'webhook.${k}'`);
    if (wh.attempts !== undefined && (!Number.isInteger(wh.attempts) || wh.attempts < 1 || wh.attempts > 10)) throw invalidArgument('AlertManager: webhook.attempts must be an integer in [1, 10]');
    for (const k of ['backoffMs', 'timeoutMs'] as const) {
      const v = wh[k];
      if (v !== undefined && (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v))) throw invalidArgument(`AlertManager: webhook.${k} must be a number of ms >= 0`);
    }
    this.#reader = options.reader;
    this.#emit = options.emit;
    this.#sink = options.sink;
    this.#now = options.now ?? Date.now;
    this.#maxSeries = ms;
    this.#webhook = { ...wh };
    this.#externalURL = options.externalURL;
    this.intervalMs = iv;
    this.prefix = prefix;
    this.history = options.history === false ? undefined : (options.history ?? new MetricHistory({ now: this.#now }));
    if (options.defaultRules ?? true) for (const rule of defaultRules(prefix)) this.add(rule);
    if (options.timer ?? true) {
      this.#timer = setInterval(() => this.evaluate(this.#now()), iv);
      this.#timer.unref();
    }
  }

  /** Connects the bus (`$SYS.alert.<name>` events, shed-load, autoscale events) and the AI client (open-breaker). */
  attach(peers: { bus?: unknown; ai?: unknown }): void {
    if (peers === null || typeof peers !== 'object') throw invalidArgument('alerts.attach: expects { bus?, ai? }');
    for (const k of Object.keys(peers)) if (k !== 'bus' && k !== 'ai') throw invalidArgument(`alerts.attach: unknown key '${k}'`);
    const { bus, ai } = peers;
    if (bus !== undefined && (bus === null || typeof (bus as BusLike).publish !== 'function')) throw invalidArgument('alerts.attach: bus must have publish()');
    if (ai !== undefined && (ai === null || typeof (ai as AIClientLike).openBreaker !== 'function')) throw invalidArgument('alerts.attach: ai must have openBreaker()');
    if (bus !== undefined) this.#bus = bus as BusLike;
    if (ai !== undefined) this.#ai = ai as AIClientLike;
  }

  add(rule: AlertRule): void {
    this.#checkOpen();
    if (rule === null || typeof rule !== 'object' || Array.isArray(rule)) throw invalidArgument('alerts.add: rule must be an object');
    for (const k of Object.keys(rule)) if (!RULE_KEYS.includes(k)) throw invalidArgument(`alerts.add: unknown key '${k}'`);
    if (typeof rule.name !== 'string' || !NAME_RE.test(rule.name)) throw invalidArgument('alerts.add: name must be 1..128 letters, digits, _ or -, starting with a letter');
    if (this.#rules.has(rule.name)) throw invalidArgument(`alerts.add: a rule named '${rule.name}' exists`);
    const cond = checkCondition(rule.when);
    const forMs = rule.for === undefined ? 0 : parseDuration(rule.for, 'alerts.add: for');
    const repeatMs = rule.repeatInterval === undefined ? undefined : parseDuration(rule.repeatInterval, 'alerts.add: repeatInterval');
    const escalateMs = rule.escalateAfter === undefined ? undefined : parseDuration(rule.escalateAfter, 'alerts.add: escalateAfter');
    if (repeatMs !== undefined && repeatMs < 1000) throw invalidArgument('alerts.add: repeatInterval must be at least 1 s');
    if (escalateMs !== undefined && escalateMs < 1000) throw invalidArgument('alerts.add: escalateAfter must be at least 1 s');
    if (rule.severity !== undefined && !SEVERITIES.includes(rule.severity)) throw invalidArgument("alerts.add: severity must be 'info', 'warning' or 'critical'");
    const webhook = checkWebhook(rule.webhook);
    if (rule.action !== undefined) checkAction(rule.action, 'alerts.add: action');
    const copy: AlertRule = { ...rule, when: { ...rule.when } };
    if (webhook !== undefined) copy.webhook = webhook;
    this.#rules.set(rule.name, {
      rule: copy,
      cond,
      forMs,
      repeatMs,
      escalateMs,
      severity: rule.severity ?? 'warning',
      series: new Map(),
      windows: new Map(),
      silencedUntil: 0,
      last: undefined,
    });
  }

  /** Removes a rule; its active actions are undone (shed-load off), nothing is notified. */
  remove(name: string): boolean {
    if (typeof name !== 'string') throw invalidArgument('alerts.remove: name must be a string');
    const r = this.#rules.get(name);
    if (!r) return false;
    this.#rules.delete(name);
    for (const s of r.series.values()) if (s.acting && s.alert) this.#act(r, { ...s.alert, status: 'resolved', endsAt: this.#now() }, 'resolve', s);
    return true;
  }

  /** Suppresses delivery and actions of a rule for forMs from now (0 lifts a silence). */
  silence(name: string, opts: { forMs: number }): void {
    if (typeof name !== 'string') throw invalidArgument('alerts.silence: name must be a string');
    const r = this.#rules.get(name);
    if (!r) throw invalidArgument(`alerts.silence: no rule named '${name.slice(0, 128)}'`);
    if (opts === null || typeof opts !== 'object') throw invalidArgument('alerts.silence: options must be { forMs }');
    for (const k of Object.keys(opts)) if (k !== 'forMs') throw invalidArgument(`alerts.silence: unknown option '${k}'`);
    const f = opts.forMs;
    if (typeof f !== 'number' || !Number.isFinite(f) || f < 0 || f > 30 * 86_400_000) throw invalidArgument('alerts.silence: forMs must be a number of ms in [0, 30 days]');
    r.silencedUntil = f === 0 ? 0 : this.#now() + f;
  }

  list(): Array<{ rule: AlertRule; state: State; silencedUntil?: number; last?: Alert }> {
    const now = this.#now();
    return [...this.#rules.values()].map((r) => {
      let state: State = 'inactive';
      for (const s of r.series.values()) {
        if (s.state === 'firing') state = 'firing';
        else if (s.state === 'pending' && state === 'inactive') state = 'pending';
      }
      const out: { rule: AlertRule; state: State; silencedUntil?: number; last?: Alert } = { rule: { ...r.rule, when: { ...r.rule.when } }, state };
      if (r.silencedUntil > now) out.silencedUntil = r.silencedUntil;
      if (r.last) out.last = { ...r.last };
      return out;
    });
  }

  /** Counts of what evaluation and delivery did. */
  stats(): AlertManagerStats {
    const s = this.#stats;
    return { ...s, webhooks: { ...s.webhooks }, actions: { ...s.actions } };
  }

  /** Resolves once every webhook delivery and action started so far has settled. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  /** Stops the timer and webhook retries, and undoes active actions (shed-load off). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#abort.abort();
    const now = this.#now();
    for (const r of this.#rules.values()) for (const s of r.series.values()) if (s.acting && s.alert) this.#act(r, { ...s.alert, status: 'resolved', endsAt: now }, 'resolve', s);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Runs every rule once at `now` (epoch ms): the timer calls it; tests call it with their own clock. */
  evaluate(now: number = this.#now()): void {
    if (typeof now !== 'number' || !Number.isFinite(now)) throw invalidArgument('alerts.evaluate: now must be epoch ms');
    if (this.#closed || this.#evaluating) return;
    this.#evaluating = true;
    try {
      let snap: MetricSnapshot[];
      try {
        snap = this.#reader.snapshot();
        if (!Array.isArray(snap)) throw new TypeError('snapshot() did not return an array');
      } catch {
        this.#stats.snapshotErrors++;
        return;
      }
      this.#stats.evaluations++;
      try {
        this.history?.record(snap, now);
      } catch {
        this.#stats.snapshotErrors++;
      }
      const byName = new Map<string, MetricSnapshot>();
      for (const m of snap) if (m && typeof m.name === 'string') byName.set(m.name, m);
      for (const r of this.#rules.values()) this.#evaluateRule(r, byName, now);
    } finally {
      this.#evaluating = false;
    }
  }

  #evaluateRule(r: RuleState, byName: Map<string, MetricSnapshot>, now: number): void {
    const c = r.cond;
    if (c.per) {
      const v = this.#ratio(r, byName, now);
      this.#step(r, '', c.labels ?? {}, v, now);
    } else {
      const m = byName.get(c.metric);
      if (m) {
        for (const s of m.series) {
          if (!matches(s.labels, c.labels)) continue;
          const key = labelKey(s.labels);
          if (!r.series.has(key) && r.series.size >= this.#maxSeries) {
            this.#stats.overflow++;
            continue;
          }
          this.#step(r, key, s.labels, this.#value(r, m, s, key, now), now);
        }
      }
    }
    // Series not seen this time (gone from the snapshot): resolve and forget them.
    for (const [key, s] of r.series) {
      if (s.seen === now) continue;
      if (s.state === 'firing') this.#resolve(r, s, s.alert?.value ?? Number.NaN, now);
      r.series.delete(key);
    }
    for (const [key, w] of r.windows) if (w.length === 0 || w[w.length - 1].t !== now) r.windows.delete(key);
  }

  /** The series' value as the condition compares it: raw, quantile, or rate. */
  #value(r: RuleState, m: MetricSnapshot, s: SeriesSample, key: string, now: number): number | undefined {
    const c = r.cond;
    if (c.quantile !== undefined) {
      if (!s.buckets || s.buckets.length === 0) return undefined;
      if (c.rateOverMs === undefined) return bucketQuantile(s.buckets, c.quantile);
      const w = this.#window(r, `${m.name}\u0002${key}`, { t: now, v: s.count ?? 0, b: s.buckets.map((b) => b[1]) }, c.rateOverMs);
      const first = w[0];
      const last = w[w.length - 1];
      if (w.length < 2 || !first.b || !last.b || first.b.length !== last.b.length) return undefined;
      const delta = s.buckets.map((b, i) => [b[0], last.b![i] - first.b![i]] as [number, number]);
      if (delta.some((d) => d[1] < 0)) return undefined; // reset inside the window
      return bucketQuantile(delta, c.quantile);
    }
    let v: number | undefined = s.value;
    if (c.rateOverMs !== undefined) v = rate(this.#window(r, `${m.name}\u0002${key}`, { t: now, v: s.value }, c.rateOverMs));
    return v;
  }

  /** Appends a sample to a rate window and drops those older than needed. */
  #window(r: RuleState, key: string, sample: Sample, windowMs: number): Sample[] {
    let w = r.windows.get(key);
    if (!w) r.windows.set(key, (w = []));
    if (w.length > 0 && w[w.length - 1].t === sample.t) w[w.length - 1] = sample;
    else w.push(sample);
    // Keep the newest sample at or before the window's start, so a full window is measured.
    let drop = 0;
    while (drop + 1 < w.length && w[drop + 1].t <= sample.t - windowMs) drop++;
    if (w.length - drop > MAX_WINDOW_SAMPLES) drop = w.length - MAX_WINDOW_SAMPLES;
    if (drop > 0) w.splice(0, drop);
    return w;
  }

  #ratio(r: RuleState, byName: Map<string, MetricSnapshot>, now: number): number | undefined {
    const c = r.cond;
    const windowMs = c.rateOverMs ?? DEFAULT_RATE_WINDOW;
    const sumRates = (name: string, want: Record<string, string> | undefined): number | undefined => {
      const m = byName.get(name);
      if (!m) return undefined;
      let total = 0;
      let any = false;
      for (const s of m.series) {
        if (!matches(s.labels, want)) continue;
        const v = rate(this.#window(r, `${name}\u0002${labelKey(s.labels)}`, { t: now, v: s.value }, windowMs));
        if (v !== undefined) {
          total += v;
          any = true;
        }
      }
      return any ? total : undefined;
    };
    const num = sumRates(c.metric, c.labels);
    let den = 0;
    for (const p of c.per!) {
      // A metric named both as numerator and denominator reuses the window updated above.
      const v = p === c.metric && c.labels === undefined ? num : sumRates(p, undefined);
      if (v !== undefined) den += v;
    }
    if (num === undefined || !(den > 0)) return undefined;
    return num / den;
  }

  /** The trend condition: the value strays from the least-squares line of the metric's recent history. */
  #offTrend(r: RuleState, labels: Record<string, string>, value: number, now: number): boolean {
    const t = r.cond.trend!;
    const h = this.history;
    if (!h) return false;
    const step = Math.max(1000, Math.ceil(t.windowMs / 300 / 1000) * 1000);
    const res = h.query(r.cond.metric, labels, { from: Math.max(0, now - t.windowMs), to: now, step });
    const s = res.series.find((x) => labelKey(x.labels) === labelKey(labels));
    if (!s || s.points.length < 5) return false;
    const recent = now - (r.cond.rateOverMs ?? 0);
    const ts: number[] = [];
    const vs: number[] = [];
    const isCounter = res.type === 'counter' && r.cond.rateOverMs !== undefined;
    for (let i = isCounter ? 1 : 0; i < s.points.length; i++) {
      const [pt, pv] = s.points[i];
      if (pt >= recent) break;
      if (isCounter) {
        const [qt, qv] = s.points[i - 1];
        if (pv < qv || pt <= qt) continue;
        ts.push(pt);
        vs.push(((pv - qv) * 1000) / (pt - qt));
      } else {
        ts.push(pt);
        vs.push(pv);
      }
    }
    if (ts.length < 5) return false;
    const fit = linearTrend(ts, vs);
    if (!fit) return false;
    const predicted = fit.meanV + fit.slope * (now - fit.meanT);
    if (Math.max(Math.abs(predicted), Math.abs(value)) < t.minRate) return false;
    return Math.abs(value - predicted) > t.tolerance * Math.abs(predicted);
  }

  #step(r: RuleState, key: string, labels: Readonly<Record<string, string>>, v: number | undefined, now: number): void {
    let s = r.series.get(key);
    if (!s) {
      s = {
        labels: { ...labels },
        state: 'inactive',
        detector: r.cond.anomaly ? new EwmaDetector(r.cond.anomaly) : undefined,
        pendingSince: 0,
        alert: undefined,
        lastNotified: 0,
        lastEscalated: 0,
        acting: false,
        seen: now,
      };
      r.series.set(key, s);
    }
    s.seen = now;
    const c = r.cond;
    let active = false;
    const known = v !== undefined && Number.isFinite(v);
    if (known) {
      if (c.above !== undefined && v > c.above) active = true;
      if (c.below !== undefined && v < c.below) active = true;
    }
    if (s.detector) {
      // Non-finite values are ignored by the detector: its last decision stands.
      if (s.detector.update(known ? v : Number.NaN).firing) active = true;
    }
    if (c.trend && known && this.#offTrend(r, s.labels, v, now)) active = true;
    const value = known ? v : (s.alert?.value ?? Number.NaN);
    if (!active) {
      if (s.state === 'firing') this.#resolve(r, s, value, now);
      s.state = 'inactive';
      return;
    }
    if (s.state === 'inactive') {
      s.state = 'pending';
      s.pendingSince = now;
    }
    if (s.state === 'pending') {
      if (now - s.pendingSince < r.forMs) return;
      s.state = 'firing';
      s.alert = { name: r.rule.name, status: 'firing', severity: r.severity, metric: c.metric, labels: { ...s.labels }, value, startsAt: now };
      s.lastNotified = now;
      s.lastEscalated = now;
      this.#notify(r, s.alert, 'fire', s, now);
      return;
    }
    // Firing: keep the value current, re-notify and escalate on schedule.
    const a = s.alert!;
    a.value = value;
    let notify = false;
    if (r.escalateMs !== undefined && a.severity !== 'critical' && now - s.lastEscalated >= r.escalateMs) {
      a.severity = nextSeverity(a.severity);
      s.lastEscalated = now;
      notify = true;
    }
    if (r.repeatMs !== undefined && now - s.lastNotified >= r.repeatMs) notify = true;
    if (notify) {
      s.lastNotified = now;
      this.#notify(r, { ...a, labels: { ...a.labels } }, 'repeat', s, now);
    }
  }

  #resolve(r: RuleState, s: SeriesState, value: number, now: number): void {
    const a = s.alert;
    s.state = 'inactive';
    s.alert = undefined;
    if (!a) return;
    this.#notify(r, { ...a, labels: { ...a.labels }, status: 'resolved', value, endsAt: now }, 'resolve', s, now);
  }

  #notify(r: RuleState, alert: Alert, phase: 'fire' | 'repeat' | 'resolve', s: SeriesState, now: number): void {
    const snapshot = (): Alert => ({ ...alert, labels: { ...alert.labels } });
    r.last = snapshot();
    this.history?.recordAlert(snapshot());
    const silenced = r.silencedUntil > now;
    // An action that is on is always undone, silence or not.
    if (!silenced || (phase === 'resolve' && s.acting)) this.#act(r, snapshot(), phase, s);
    if (silenced) {
      this.#stats.silenced++;
      return;
    }
    this.#stats.notifications++;
    if (this.#emit) {
      try {
        this.#emit(snapshot());
      } catch {
        this.#stats.emitErrors++;
      }
    }
    const bus = this.#bus;
    if (bus) {
      try {
        if (!bus.publish(`$SYS.alert.${alert.name}`, snapshot(), { priority: 'high' })) this.#stats.busErrors++;
      } catch {
        this.#stats.busErrors++;
      }
    }
    const url = r.rule.webhook;
    if (url !== undefined && !this.#closed) {
      const payload = webhookPayload([alert], { externalURL: this.#externalURL });
      this.#track(
        deliverWebhook(url, payload, { ...this.#webhook, signal: this.#abort.signal }).then((o) => {
          this.#stats.webhooks.attempts += o.attempts;
          if (o.ok) this.#stats.webhooks.sent++;
          else this.#stats.webhooks.failed++;
        }),
      );
    }
  }

  #act(r: RuleState, alert: Alert, phase: 'fire' | 'repeat' | 'resolve', s: SeriesState): void {
    const action: AlertAction | undefined = r.rule.action;
    if (action === undefined) return;
    if (typeof action === 'object' && action.kind === 'shed-load') s.acting = phase !== 'resolve';
    const ctx: ActionContext = { bus: this.#bus, ai: this.#ai, setReplicas: this.#sink ? (n) => this.#setReplicas(n) : undefined };
    let p: Promise<boolean>;
    try {
      p = runAction(action, alert, phase, ctx);
    } catch (err) {
      p = Promise.reject(err);
    }
    this.#track(
      p.then(
        (done) => {
          if (done) this.#stats.actions.run++;
          else this.#stats.actions.skipped++;
        },
        () => {
          this.#stats.actions.failed++;
        },
      ),
    );
  }

  #setReplicas(n: number): void {
    if (!this.#replicas) {
      this.#replicas = this.#sink!.gauge(KPI_SERIES.autoscale, { help: 'Replicas an autoscale alert action asks for' });
    }
    this.#replicas.set(undefined, n);
  }

  #track(p: Promise<unknown>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  #checkOpen(): void {
    if (this.#closed) throw invalidArgument('alerts: the alert manager is closed');
  }
}
