// What the AIClient records into a MetricsSink (lib/internal/metrics-sink.ts), when
// the `metrics` option gives one. The instruments are created once, here; names carry
// no prefix (the sink adds its own):
//
//   ai_requests_total{target,outcome}       calls routed to a target, by outcome: ok or the MyelinError code
//   ai_attempts_total{target}               upstream attempts, retries included
//   ai_request_duration_seconds{target}     successful calls, from the target's first attempt to the answer
//   ai_ttft_seconds{target}                 streams: from the target's first attempt to the first content
//   ai_tokens_total{target,direction}       direction: input | output
//   ai_cost_usd_total{target}               for targets with a price
//   ai_breaker_state{target}                0 closed, 1 half-open, 2 open; set on every change
//   ai_cache_total{result}                  result: hit | miss | shared
//   ai_overhead_seconds                     time inside myelin per call (the values of stats().overheadUs)
//   ai_limit_store_errors_total{limit,outcome}  failed calls to the Redis limit store, by limits key and
//                                           outcome: admitted | refused | refund-lost (stats().limits)
//   ai_stage_seconds{stage}                 the hot-path breakdown of upstream requests (below)
//
// ai_stage_seconds splits an AI request's time into where it went, one observation per
// stage that the request reached (never per chunk):
//   limit_wait   an attempt's wait for the rate limits that cover its target (`limits`), from
//                asking to being admitted; only for attempts a limit applies to (0 when none
//                had to wait), and not for one refused (ERR_AI_RATE_LIMITED counts that).
//   connect      an upstream request (chat, stream, embed, models; every attempt, hedged ones
//                included) from handing it to undici to its response headers, whatever the
//                status. undici's request() does not tell a new connection apart cheaply, so
//                this holds the wait for a free pooled connection, the TCP/TLS handshake
//                when one is opened, sending the body and the upstream's time to answer.
//                A request that never got headers (refused, reset) records nothing.
//   first_token  streams: the committed attempt, from handing its request to undici to its
//                first content part. It includes that attempt's connect; unlike
//                ai_ttft_seconds it leaves out earlier attempts, backoff and limit waits.
//   stream       streams that end cleanly: first content part to the upstream's last one.
//                The consumer's pace is part of it (backpressure holds the socket).
// So a stream's time is about limit_wait + first_token + stream (plus retries), and a
// non-streamed call's about limit_wait + connect + reading its body. The family has no
// target label: four series, whatever the configuration, and a dashboard reads it with
// no aggregation; per-target latency is ai_request_duration_seconds and ai_ttft_seconds.
//
// The per-target figures are recorded where TargetCounters (stats().targets) records,
// so the two always agree.
//
// Label values are bounded: `target` is 'provider/model' for the targets named in the
// configuration (models routes, prices) and for the first MAX_OTHER_TARGETS others a
// request names directly; any further one is '<provider>/_other' (a request may name
// any model of a configured provider, and a label must not grow with what callers
// send). `outcome` is a code of the fixed code table (ERR_INTERNAL for anything else).
//
// The sink is untrusted: every call into it is wrapped, and one that throws (or an
// instrument that is not one) adds to `errors` (stats().metrics.errors) and is
// otherwise ignored. Recording costs one call per instrument with a cached label object.
import { ErrorCodes } from '../../internal/codes.js';
import { type CounterHandle, type GaugeHandle, type HistogramHandle, type MetricLabels, type MetricsSink, makeInstrument } from '../../internal/metrics-sink.js';
import type { StoreErrorOutcome } from '../limits/redis-rate-limiter.js';
import type { BreakerState } from '../resilience/circuit-breaker.js';
import type { ResolvedOptions } from './options.js';

/** Targets outside the configuration that get their own label value before '<provider>/_other'. */
export const MAX_OTHER_TARGETS = 64;

/** The stages of ai_stage_seconds. */
export type Stage = 'limit_wait' | 'connect' | 'first_token' | 'stream';

const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

/** Seconds. Calls and first tokens span tens of ms to minutes. */
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const TTFT_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20];
/** Seconds. One set for all four stages: limit waits and connects from a millisecond, streams to minutes. */
const STAGE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Seconds. Overhead is tens of microseconds to a few milliseconds. */
const OVERHEAD_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];

export type CacheResult = 'hit' | 'miss' | 'shared';

/** What TargetCounters reports for one target. */
export interface TargetRecorder {
  success(attempts: number, latencyMs: number, tokensIn: number, tokensOut: number, costUsd: number | undefined): void;
  failure(code: string, attempts: number): void;
}

/** The label objects of one target value, built once. */
interface TargetLabels {
  target: MetricLabels;
  input: MetricLabels;
  output: MetricLabels;
  outcomes: Map<string, MetricLabels>;
}

export class ClientMetrics {
  /** Sink calls that threw, or instruments the sink did not give: each was ignored. */
  errors = 0;
  readonly #requests: CounterHandle | undefined;
  readonly #attempts: CounterHandle | undefined;
  readonly #duration: HistogramHandle | undefined;
  readonly #ttft: HistogramHandle | undefined;
  readonly #tokens: CounterHandle | undefined;
  readonly #cost: CounterHandle | undefined;
  readonly #breaker: GaugeHandle | undefined;
  readonly #cache: CounterHandle | undefined;
  readonly #overhead: HistogramHandle | undefined;
  readonly #limitStore: CounterHandle | undefined;
  readonly #stage: HistogramHandle | undefined;
  readonly #stageLabels: Record<Stage, MetricLabels> = {
    limit_wait: { stage: 'limit_wait' },
    connect: { stage: 'connect' },
    first_token: { stage: 'first_token' },
    stream: { stage: 'stream' },
  };
  readonly #limitStoreLabels = new Map<string, MetricLabels>();
  readonly #configured: Set<string>;
  readonly #labels = new Map<string, TargetLabels>();
  readonly #cacheLabels: Record<CacheResult, MetricLabels> = { hit: { result: 'hit' }, miss: { result: 'miss' }, shared: { result: 'shared' } };
  #others = 0;

  constructor(sink: MetricsSink, o: Pick<ResolvedOptions, 'models' | 'prices'>) {
    this.#configured = new Set(o.prices.keys());
    for (const r of o.models.values()) for (const t of r.targets) this.#configured.add(t.target);
    const target = ['target'];
    this.#requests = this.#make(() => sink.counter('ai_requests_total', { help: 'AI calls routed to a target, by outcome (ok or the error code)', labelNames: ['target', 'outcome'] }), 'inc');
    this.#attempts = this.#make(() => sink.counter('ai_attempts_total', { help: 'Upstream attempts per target, retries included', labelNames: target }), 'inc');
    this.#duration = this.#make(
      () => sink.histogram('ai_request_duration_seconds', { help: "Successful AI calls per target, from the target's first attempt to the answer", labelNames: target, buckets: DURATION_BUCKETS }),
      'observe',
    );
    this.#ttft = this.#make(
      () => sink.histogram('ai_ttft_seconds', { help: "Streams per target, from the target's first attempt to the first content", labelNames: target, buckets: TTFT_BUCKETS }),
      'observe',
    );
    this.#tokens = this.#make(() => sink.counter('ai_tokens_total', { help: 'Tokens per target and direction (input, output)', labelNames: ['target', 'direction'] }), 'inc');
    this.#cost = this.#make(() => sink.counter('ai_cost_usd_total', { help: 'Cost in US dollars per target (targets with a price)', labelNames: target }), 'inc');
    this.#breaker = this.#make(() => sink.gauge('ai_breaker_state', { help: 'Circuit breaker per target: 0 closed, 1 half-open, 2 open', labelNames: target }), 'set');
    this.#cache = this.#make(() => sink.counter('ai_cache_total', { help: 'Response cache lookups: hit, miss, or shared (joined an identical call in flight)', labelNames: ['result'] }), 'inc');
    this.#overhead = this.#make(
      () => sink.histogram('ai_overhead_seconds', { help: 'Time spent inside myelin per AI call, upstream and deliberate waits excluded', labelNames: [], buckets: OVERHEAD_BUCKETS }),
      'observe',
    );
    this.#limitStore = this.#make(
      () =>
        sink.counter('ai_limit_store_errors_total', {
          help: 'Failed calls to the Redis store of the rate limits, by limits key and outcome (admitted, refused, refund-lost)',
          labelNames: ['limit', 'outcome'],
        }),
      'inc',
    );
    this.#stage = this.#make(
      () =>
        sink.histogram('ai_stage_seconds', {
          help: 'Where AI requests spend their time, by stage: limit_wait, connect (to response headers), first_token (streams), stream (first to last content)',
          labelNames: ['stage'],
          buckets: STAGE_BUCKETS,
        }),
      'observe',
    );
  }

  /** One observation of a stage, in ms; a negative or non-finite one is dropped. */
  stage(stage: Stage, ms: number): void {
    if (!(ms >= 0)) return;
    this.#observe(this.#stage, this.#stageLabels[stage], ms / 1000);
  }

  /** Label values are bounded: `limit` is a key of the `limits` option, `outcome` one of three. */
  limitStoreError(limit: string, outcome: StoreErrorOutcome): void {
    const k = `${outcome} ${limit}`;
    let l = this.#limitStoreLabels.get(k);
    if (!l) this.#limitStoreLabels.set(k, (l = { limit, outcome }));
    this.#inc(this.#limitStore, l, 1);
  }

  /** The recorder TargetCounters calls for `key`. */
  forTarget(key: string): TargetRecorder {
    const l = this.#target(key);
    return {
      success: (attempts, latencyMs, tokensIn, tokensOut, costUsd) => {
        this.#inc(this.#requests, this.#outcome(l, 'ok'), 1);
        this.#inc(this.#attempts, l.target, attempts);
        this.#observe(this.#duration, l.target, latencyMs / 1000);
        this.#inc(this.#tokens, l.input, tokensIn);
        this.#inc(this.#tokens, l.output, tokensOut);
        if (costUsd !== undefined) this.#inc(this.#cost, l.target, costUsd);
      },
      failure: (code, attempts) => {
        this.#inc(this.#requests, this.#outcome(l, Object.hasOwn(ErrorCodes, code) ? code : 'ERR_INTERNAL'), 1);
        this.#inc(this.#attempts, l.target, attempts);
      },
    };
  }

  ttft(key: string, ms: number): void {
    this.#observe(this.#ttft, this.#target(key).target, ms / 1000);
  }

  breaker(key: string, state: BreakerState): void {
    const h = this.#breaker;
    if (!h) return;
    try {
      h.set(this.#target(key).target, BREAKER_VALUE[state]);
    } catch {
      this.errors++;
    }
  }

  cache(result: CacheResult): void {
    this.#inc(this.#cache, this.#cacheLabels[result], 1);
  }

  overhead(ms: number): void {
    this.#observe(this.#overhead, undefined, ms / 1000);
  }

  #target(key: string): TargetLabels {
    let l = this.#labels.get(key);
    if (l) return l;
    let value = key;
    if (!this.#configured.has(key)) {
      if (this.#others < MAX_OTHER_TARGETS) this.#others++;
      else value = `${key.slice(0, key.indexOf('/'))}/_other`;
    }
    l = { target: { target: value }, input: { target: value, direction: 'input' }, output: { target: value, direction: 'output' }, outcomes: new Map() };
    this.#labels.set(key, l);
    return l;
  }

  #outcome(l: TargetLabels, outcome: string): MetricLabels {
    let o = l.outcomes.get(outcome);
    if (!o) l.outcomes.set(outcome, (o = { target: l.target.target, outcome }));
    return o;
  }

  #inc(h: CounterHandle | undefined, labels: MetricLabels, n: number): void {
    if (!h || !(n > 0)) return;
    try {
      h.inc(labels, n);
    } catch {
      this.errors++;
    }
  }

  #observe(h: HistogramHandle | undefined, labels: MetricLabels | undefined, v: number): void {
    if (!h || !Number.isFinite(v)) return;
    try {
      h.observe(labels, v);
    } catch {
      this.errors++;
    }
  }

  /** Creates an instrument; one the sink fails to give is counted and left out. */
  #make<H>(create: () => H, method: string): H | undefined {
    return makeInstrument(create, method, () => this.errors++);
  }
}
