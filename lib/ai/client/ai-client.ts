// The AIClient (shared/API.md): one call goes through
//   model router (alias -> ordered targets)
//   -> per target: retry loop (retry.ts) -> attempt (transport + provider adapter)
//   -> next target on a failure that another target may not share.
// A stream is "committed" once its first part is ready: everything before (headers,
// lifecycle frames, pings, tool-call fragments) is held, so a failure there is retried
// or falls back like any other (AI-WIRE failure case 1). After commit, errors reach
// the consumer, and the call's deadline no longer applies (the idle watchdog and the
// caller's signal still do).
//
//
// Around that core (each in its own file):
//   options.ts, request-check.ts  every option and request checked up front (unknown names refused)
//   cache-layer.ts  exact cache + single flight in front of chat(), stream() and embed()
//   stream-flight.ts  identical concurrent cacheable streams read one upstream stream
//   overhead.ts     per call: time inside myelin (less upstream and deliberate waits) -> stats().overheadUs
//   telemetry.ts    per call: an OpenTelemetry GenAI span (no-op without a TracerProvider)
//   client-metrics.ts  with `metrics`: per-target counters/histograms, breaker gauge, cache, overhead,
//                   limit-store failures and the stage breakdown (ai_stage_seconds), into a MetricsSink
//   model-router.ts the one routing mechanism: alias -> targets by fallback, weighted or least-latency
//   failure.ts      how a failure is described: retryable or not, and whether breakers count it
//   guards.ts       per attempt: the target's circuit breaker, then its rate limits
//   limit-store.ts  with Redis limits: store failures counted (stats().limits) and announced
//   ../resilience/hedge.ts  for aliases with hedgeAfterMs: targets raced, first answer wins
//   session.ts      ai.session(): history in the store, trimmed, kept on one target
//                   (../session/affinity.ts) while that target's breaker is not open
import { Redis } from 'ioredis';
import { MyelinError } from '../../errors.js';
import { hedge } from '../resilience/hedge.js';
import { SessionAffinity } from '../session/affinity.js';
import { MemorySessionStore, RedisSessionStore, type SessionStore } from '../session/session-store.js';
import { countMessages, countTokens } from '../session/token-count.js';
import { type CachePlan, type CacheStats, ResponseCache, StreamCapture } from './cache-layer.js';
import { aiError, type AIError, countsAsBreakerFailure, isRetryable, tag } from './failure.js';
import { type Guard, type GuardInput, Guards } from './guards.js';
import { LimitStoreHealth, type LimitStoreStats } from './limit-store.js';
import { LiveStream } from './live-stream.js';
import { ModelRouter, type Target } from './model-router.js';
import { type AIClientOptions, checkHeaders, onlyKnown, type ProviderKind, type ResolvedOptions, resolveOptions, splitTarget, type Strategy } from './options.js';
import { ClientMetrics } from './client-metrics.js';
import { CallClock, OverheadHistogram, type OverheadStats } from './overhead.js';
import { anthropic } from './providers/anthropic.js';
import { ollama } from './providers/ollama.js';
import { openai } from './providers/openai.js';
import type { ChatResult, HttpCall, ProviderAdapter } from './providers/provider.js';
import { clip, Redactor } from './redactor.js';
import { checkChatRequest, checkEmbedRequest } from './request-check.js';
import { classify, serverDelay, withRetries } from './retry.js';
import { type AttemptSource, CallScope } from './scope.js';
import { AISession, type SessionOptions } from './session.js';
import { StreamFlight } from './stream-flight.js';
import { TargetCounters, type TargetStats } from './target-stats.js';
import { endChat, endEmbed, endError, endStopped, startSpan } from './telemetry.js';
import { type PoolStats, Transport, connectionError, readText } from './transport.js';
import type { ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, StreamPart } from './types.js';
import { estimateUsage } from './usage-estimate.js';

const ADAPTERS: Record<ProviderKind, ProviderAdapter> = { openai, anthropic, ollama };

/** Error bodies are read up to this much; the rest is dropped with the connection. */
const ERROR_BODY_BYTES = 64 * 1024;

export interface AIClientStats {
  /** Per target ('provider/model'); `breaker` is there when the client has one. */
  targets: Record<string, TargetStats>;
  /** Per upstream origin: connection pool state. */
  pools: Record<string, PoolStats>;
  /** Present when the client has a cache. */
  cache?: CacheStats;
  /**
   * Time spent inside myelin per call (chat, stream, embed; hits and failures
   * included), in microseconds: the call's time less its waits for the upstream,
   * for retry backoff and for rate limits (overhead.ts says what a stream's covers).
   */
  overheadUs: OverheadStats;
  /**
   * Present when limits are shared through a Redis `store`: store failures, and what
   * became of the calls that met them (limit-store.ts).
   */
  limits?: LimitStoreStats;
  /** Present when the client has a `metrics` sink: calls into it that threw (each ignored). */
  metrics?: { errors: number };
}

/** AIClient.catalog(): the configured routing, without keys or URLs. */
export interface AICatalog {
  providers: Array<{ name: string; kind: ProviderKind }>;
  aliases: Array<{ name: string; strategy: Strategy; targets: string[] }>;
  /** 'provider/model' targets named by an alias or a price, each once, in configuration order. */
  targets: string[];
}

interface Dispatched<T> {
  value: T;
  target: Target;
  /** Upstream attempts of the whole call (all targets). */
  attempts: number;
  /** Attempts on the target that answered. */
  targetAttempts: number;
  started: number;
  /** Settle with the answer's tokens, or fail; the breaker and limits wait for it. */
  guard: Guard;
}

/** Whether an error is a refusal before sending (open breaker, local limit): no attempt was made. */
function refused(err: unknown): boolean {
  const e = err as AIError & { local?: boolean };
  return e?.failure === 'circuit-open' || e?.local === true;
}

export class AIClient {
  readonly #o: ResolvedOptions;
  readonly #transport: Transport;
  readonly #redactor: Redactor;
  readonly #router: ModelRouter;
  readonly #counters = new Map<string, TargetCounters>();
  readonly #guards: Guards;
  readonly #cache: ResponseCache | undefined;
  readonly #affinity = new SessionAffinity();
  readonly #overhead = new OverheadHistogram();
  readonly #metrics: ClientMetrics | undefined;
  readonly #storeHealth: LimitStoreHealth | undefined;
  #sessions: SessionStore | undefined;
  #redisClient: Redis | undefined;
  #closed = false;

  constructor(options: AIClientOptions) {
    this.#o = resolveOptions(options);
    this.#transport = new Transport({ maxResponseSize: this.#o.maxResponseSize, connectMs: this.#o.timeouts.connectMs });
    this.#redactor = new Redactor([...this.#o.providers.values()].map((p) => p.apiKey));
    this.#router = new ModelRouter(this.#o, (key) => {
      const c = this.#counters.get(key);
      return c && c.latency.count > 0 ? c.latency.percentiles(0.5)[0] : undefined;
    });
    const o = this.#o;
    const m = o.metrics ? new ClientMetrics(o.metrics, o) : undefined;
    this.#metrics = m;
    const prefix = o.store?.prefix ?? 'myelin:';
    this.#storeHealth = o.store && o.limits ? new LimitStoreHealth(m && ((limit, outcome) => m.limitStoreError(limit, outcome))) : undefined;
    this.#guards = new Guards({
      breaker: o.breaker,
      limits: o.limits,
      redis: o.store ? () => this.#redis() : undefined,
      storeHealth: this.#storeHealth,
      prefix,
      onBreakerState: m && ((target, state) => m.breaker(target, state)),
      onLimitWait: m && ((ms) => m.stage('limit_wait', ms)),
    });
    this.#cache = o.cache ? new ResponseCache(o.cache, o.store ? this.#redis() : undefined, prefix, m && ((r) => m.cache(r))) : undefined;
  }

  /** One connection for cache, limits and sessions; it connects on first use. */
  #redis(): Redis {
    if (!this.#redisClient) {
      this.#redisClient = new Redis(this.#o.store!.redis, { lazyConnect: true, maxRetriesPerRequest: 2 });
      // Failures surface on the commands (cache: a miss; limits: their onStoreError, counted
      // and announced by limit-store.ts; sessions: the error).
      this.#redisClient.on('error', () => undefined);
    }
    return this.#redisClient;
  }

  /** The resilience options as validated (breaker, limits, cache, store). */
  get resilience(): Pick<ResolvedOptions, 'breaker' | 'limits' | 'cache' | 'store'> {
    const o = this.#o;
    return { breaker: o.breaker, limits: o.limits, cache: o.cache, store: o.store };
  }

  /**
   * What this client routes to, read-only, for callers that describe it (a gateway's
   * model list): provider names and kinds, aliases with their strategy and targets, and
   * every 'provider/model' target named in an alias or a price. Built from the validated
   * options, so it never changes; keys and URLs are not part of it.
   */
  catalog(): AICatalog {
    const o = this.#o;
    const targets = new Set<string>();
    const aliases = [...o.models].map(([name, r]) => {
      for (const t of r.targets) targets.add(t.target);
      return { name, strategy: r.strategy, targets: r.targets.map((t) => t.target) };
    });
    for (const t of o.prices.keys()) if (o.providers.has(splitTarget(t)?.provider ?? '')) targets.add(t);
    return {
      providers: [...o.providers.values()].map((p) => ({ name: p.name, kind: p.kind })),
      aliases,
      targets: [...targets],
    };
  }

  async chat(req: ChatRequest): Promise<ChatResponse> {
    checkChatRequest(req);
    this.#checkOpen();
    return this.#chat(req, this.#router.resolve(req.model));
  }

  /** The provider kind of a configured provider name (gen_ai.system). */
  #kind(provider: string): ProviderKind | undefined {
    return this.#o.providers.get(provider)?.kind;
  }

  /**
   * A conversation whose history lives in the store (memory, or Redis with `store`),
   * trimmed to maxContextTokens before each turn, kept on one target while it is healthy.
   */
  session(id: string, options: SessionOptions): AISession {
    this.#checkOpen();
    this.#sessions ??= this.#o.store
      ? new RedisSessionStore({ redis: this.#redis(), prefix: `${this.#o.store.prefix ?? 'myelin:'}session:`, ttlMs: this.#o.sessionTtlMs })
      : new MemorySessionStore({ ttlMs: this.#o.sessionTtlMs });
    return new AISession(id, options, this.#sessions, { chat: (req, sid) => this.#sessionChat(req, sid), checkOpen: () => this.#checkOpen() });
  }

  async #sessionChat(req: ChatRequest, sessionId: string): Promise<ChatResponse> {
    checkChatRequest(req);
    this.#checkOpen();
    const targets = this.#router.resolve(req.model);
    const byKey = new Map(targets.map((t) => [t.key, t]));
    const order = this.#affinity.order(sessionId, [...byKey.keys()], (k) => this.#guards.healthy(k));
    const res = await this.#chat(req, order.map((k) => byKey.get(k)!));
    if (!res.cached) this.#affinity.record(sessionId, res.target);
    return res;
  }

  /** One public chat: its span and its overhead record around #cached(). */
  #chat(req: ChatRequest, targets: Target[]): Promise<ChatResponse> {
    return this.#observed('chat', req, targets, (clock) => this.#cached(req, targets, clock), endChat);
  }

  /** Runs one public call inside its span, recording its overhead whatever the outcome. */
  async #observed<Q extends ChatRequest | EmbedRequest, R extends { provider: string }>(
    op: 'chat' | 'embed',
    req: Q,
    targets: Target[],
    run: (clock: CallClock) => Promise<R>,
    end: (span: ReturnType<typeof startSpan>, res: R, kind: string | undefined) => void,
  ): Promise<R> {
    const clock = new CallClock();
    const span = startSpan(op, req, targets[0]);
    try {
      const res = await run(clock);
      end(span, res, this.#kind(res.provider));
      return res;
    } catch (err) {
      endError(span, err);
      throw err;
    } finally {
      this.#recordOverhead(clock);
    }
  }

  /** The cache in front of the upstream: a hit, a share of an identical call in flight, or a call. */
  #cached(req: ChatRequest, targets: Target[], clock: CallClock): Promise<ChatResponse> {
    const cache = this.#cache;
    return this.#throughCache(req, clock, cache?.plan(req, targets[0]), {
      get: (key) => cache!.get(key),
      served: (hit, t0) => ResponseCache.served(hit, t0),
      entryOf: (r) => ResponseCache.entryOf(r),
      copy: (r) => ({ ...r }),
      upstream: (q) => this.#chatUpstream(q, targets, clock),
    });
  }

  /**
   * One mechanism in front of chat and embed calls: a cache hit, a share of an identical
   * call in flight, or a call whose answer is stored. The shared call runs on the
   * flight's signal, which fires only when every caller left; it marks its waits on the
   * first caller's clock, and the others wait for it as a whole.
   */
  async #throughCache<Q extends { signal?: AbortSignal }, R, E extends Parameters<ResponseCache['set']>[1]>(
    req: Q,
    clock: CallClock,
    plan: { key: string; ttlMs: number } | undefined,
    io: {
      get: (key: string) => Promise<E | undefined>;
      served: (hit: E, t0: number) => R;
      entryOf: (r: R) => E;
      copy: (r: R, follower: boolean) => R;
      upstream: (req: Q) => Promise<R>;
    },
  ): Promise<R> {
    const cache = this.#cache;
    if (!cache || !plan) return io.upstream(req);
    const hit = await io.get(plan.key);
    if (hit) return io.served(hit, clock.t0);
    const follower = cache.flights.has(plan.key);
    if (follower) cache.shared();
    const shared = cache.flights.run(
      plan.key,
      async (signal) => {
        const r = await io.upstream({ ...req, signal });
        await cache.set(plan.key, io.entryOf(r), plan.ttlMs);
        return r as unknown;
      },
      { signal: req.signal },
    ) as Promise<R>;
    return io.copy(await (follower ? clock.wait(shared) : shared), follower);
  }

  async #chatUpstream(req: ChatRequest, targets: Target[], clock: CallClock): Promise<ChatResponse> {
    const t0 = clock.t0;
    const scope = new CallScope(req.signal, this.#o.retry.deadlineMs, clock);
    try {
      const d = await this.#dispatch(req.model, targets, scope, this.#chatGuard(req), (t, s) => this.#chatAttempt(t, req, s));
      let res: ChatResponse;
      try {
        res = await this.#response(d.target, d.value, req, d.attempts, t0);
      } catch (err) {
        d.guard.fail(err);
        throw err;
      }
      d.guard.done(res.usage.inputTokens + res.usage.outputTokens);
      this.#stat(d.target).success(d.targetAttempts, performance.now() - d.started, res.usage.inputTokens, res.usage.outputTokens, res.costUsd);
      return res;
    } finally {
      scope.dispose();
    }
  }

  /** Limit input for a chat: prompt tokens (counted for the target's model) + maxTokens or the provider's default. */
  #chatGuard(req: ChatRequest): Omit<GuardInput, 'deadline' | 'signal'> {
    return { priority: req.priority, tokens: (t) => countMessages(req.messages, t.model) + (req.maxTokens ?? t.provider.defaultMaxTokens) };
  }

  /** Streams parts; breaking out of the loop aborts the upstream request and frees its socket. */
  stream(req: ChatRequest): AsyncIterable<StreamPart> {
    checkChatRequest(req);
    this.#checkOpen();
    const targets = this.#router.resolve(req.model);
    return this.#streamParts(req, targets);
  }

  /**
   * A cache hit replays as a stream; a cacheable miss joins the identical stream in
   * flight (stream-flight.ts) or starts one, recorded while it streams and stored at
   * its end; anything else streams straight from the upstream.
   */
  async *#streamParts(req: ChatRequest, targets: Target[]): AsyncGenerator<StreamPart, void, undefined> {
    const clock = new CallClock();
    const span = startSpan('chat', req, targets[0]);
    const out: { response?: ChatResponse } = {};
    let failed = false;
    try {
      const cache = this.#cache;
      const plan = cache?.plan(req, targets[0]);
      if (!cache || !plan) {
        yield* this.#streamUpstream(req, targets, clock, out, undefined);
        return;
      }
      const hit = await cache.get(plan.key);
      if (hit) {
        clock.commit();
        out.response = ResponseCache.served(hit, clock.t0);
        yield* ResponseCache.replay(hit, clock.t0);
        return;
      }
      let flight = cache.streams.get(plan.key);
      const follower = flight !== undefined;
      if (flight) cache.shared();
      else {
        const f: StreamFlight = new StreamFlight(
          (signal) => this.#streamUpstream({ ...req, signal }, targets, clock, {}, plan),
          () => {
            if (cache.streams.get(plan.key) === f) cache.streams.delete(plan.key);
          },
        );
        cache.streams.set(plan.key, f);
        flight = f;
      }
      for await (const p of flight.read(req.signal, clock, follower)) {
        if (p.type === 'done') out.response = p.response;
        yield p;
      }
    } catch (err) {
      failed = true;
      endError(span, err);
      throw err;
    } finally {
      if (!failed) {
        if (out.response) endChat(span, out.response, this.#kind(out.response.provider));
        else endStopped(span);
      }
      this.#recordOverhead(clock);
    }
  }

  /** One upstream stream (with fallback, retries before commit); recorded for the cache when `plan` is given. */
  async *#streamUpstream(req: ChatRequest, targets: Target[], clock: CallClock, out: { response?: ChatResponse }, plan: CachePlan | undefined): AsyncGenerator<StreamPart, void, undefined> {
    const cache = this.#cache;
    const rec = plan ? new StreamCapture() : undefined;
    const scope = new CallScope(req.signal, this.#o.retry.deadlineMs, clock);
    let live: LiveStream | undefined;
    let committed: Dispatched<LiveStream> | undefined;
    let settled = false;
    try {
      const d = await this.#dispatch(req.model, targets, scope, this.#chatGuard(req), (t, s) => this.#openStream(t, req, s), (l) =>
        l.close(new MyelinError('ERR_ABORTED', 'hedged stream lost the race')),
      );
      live = d.value;
      committed = d;
      scope.release();
      let parts = live.held;
      live.held = undefined;
      clock.commit();
      const m = this.#metrics;
      m?.ttft(d.target.key, performance.now() - d.started);
      // Stage times of the committed attempt only: a hedge's losers never reach here.
      const firstAt = live.firstAt;
      if (m && firstAt !== undefined) m.stage('first_token', firstAt - live.sentAt!);
      while (parts) {
        for (const p of parts) {
          rec?.push(p);
          yield p;
        }
        parts = await live.next();
      }
      const a0 = performance.now();
      if (m && firstAt !== undefined) m.stage('stream', a0 - firstAt);
      const response = await this.#response(d.target, live.result(), req, d.attempts, clock.t0);
      settled = true;
      d.guard.done(response.usage.inputTokens + response.usage.outputTokens);
      this.#stat(d.target).success(d.targetAttempts, performance.now() - d.started, response.usage.inputTokens, response.usage.outputTokens, response.costUsd);
      const entry = rec?.finish(response);
      if (entry) await cache!.set(plan!.key, entry, plan!.ttlMs);
      out.response = response;
      clock.assembly(performance.now() - a0);
      yield { type: 'done', response };
    } catch (err) {
      this.#redactError(err);
      if (committed) {
        tag(err, committed.target.provider.name, committed.target.key);
        if (!settled) committed.guard.fail(err);
        settled = true;
        this.#stat(committed.target).failure((err as MyelinError).code ?? 'ERR_INTERNAL', committed.targetAttempts);
      }
      throw err;
    } finally {
      const stop = new MyelinError('ERR_ABORTED', 'the stream consumer stopped reading');
      if (committed && !settled) committed.guard.fail(stop);
      live?.close(stop);
      scope.dispose();
    }
  }

  async embed(req: EmbedRequest): Promise<EmbedResponse> {
    checkEmbedRequest(req);
    this.#checkOpen();
    const targets = this.#router.resolve(req.model);
    for (const t of targets) {
      if (!ADAPTERS[t.provider.kind].embed) throw new MyelinError('ERR_INVALID_ARGUMENT', `embed: provider '${t.provider.name}' (${t.provider.kind}) has no embeddings API`);
    }
    return this.#observed('embed', req, targets, (clock) => this.#embedCached(req, targets, clock), endEmbed);
  }

  /** The cache in front of embeddings, as for chat; callers sharing one answer get their own vectors. */
  #embedCached(req: EmbedRequest, targets: Target[], clock: CallClock): Promise<EmbedResponse> {
    const cache = this.#cache;
    return this.#throughCache(req, clock, cache?.planEmbed(req, targets[0]), {
      get: (key) => cache!.getEmbed(key),
      served: (hit, t0) => ResponseCache.servedEmbed(hit, t0),
      entryOf: (r) => ResponseCache.embedEntryOf(r),
      copy: (r, follower) => (follower ? ResponseCache.copyEmbed(r) : r),
      upstream: (q) => this.#embedUpstream(q, targets, clock),
    });
  }

  async #embedUpstream(req: EmbedRequest, targets: Target[], clock: CallClock): Promise<EmbedResponse> {
    const scope = new CallScope(req.signal, this.#o.retry.deadlineMs, clock);
    const t0 = clock.t0;
    try {
      const inputs = typeof req.input === 'string' ? [req.input] : req.input;
      const guard = { priority: undefined, tokens: (t: Target) => inputs.reduce((n, s) => n + countTokens(s, t.model), 0) };
      const d = await this.#dispatch(req.model, targets, scope, guard, async (t, s) => {
        const adapter = ADAPTERS[t.provider.kind];
        const body = await this.#jsonAttempt(t, adapter.embed!(t.provider, t.model, req), req.headers, s);
        try {
          return adapter.parseEmbed!(body);
        } catch (err) {
          throw tag(err, t.provider.name, t.key);
        }
      });
      d.guard.done(d.value.inputTokens);
      const latencyMs = performance.now() - t0;
      this.#stat(d.target).success(d.targetAttempts, performance.now() - d.started, d.value.inputTokens, 0, this.#cost(d.target.key, d.value.inputTokens, 0));
      return {
        vectors: d.value.vectors,
        usage: { inputTokens: d.value.inputTokens },
        model: d.value.model ?? d.target.model,
        provider: d.target.provider.name,
        target: d.target.key,
        latencyMs,
        attempts: d.attempts,
        cached: false,
      };
    } finally {
      scope.dispose();
    }
  }

  /** Model ids the provider lists (OpenAI /models, Anthropic /v1/models, Ollama /api/tags). */
  async models(provider: string, options: { signal?: AbortSignal } = {}): Promise<string[]> {
    this.#checkOpen();
    if (options === null || typeof options !== 'object') throw new MyelinError('ERR_INVALID_ARGUMENT', 'models: options must be { signal? }');
    onlyKnown('models', options as Record<string, unknown>, ['signal']);
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new MyelinError('ERR_INVALID_ARGUMENT', 'models: signal must be an AbortSignal');
    const p = this.#o.providers.get(provider);
    if (!p) throw new MyelinError('ERR_INVALID_ARGUMENT', `models: provider '${provider}' is not configured`);
    const adapter = ADAPTERS[p.kind];
    const t: Target = { key: `${p.name}/*`, provider: p, model: '*' };
    const scope = new CallScope(options.signal, this.#o.retry.deadlineMs);
    try {
      const { value } = await withRetries({
        retry: this.#o.retry,
        deadline: scope.deadline,
        signal: scope.signal,
        target: t.key,
        run: async () => adapter.parseModels(await this.#jsonAttempt(t, adapter.models(p), undefined, scope)),
      });
      return value;
    } catch (err) {
      throw tag(err, p.name, t.key);
    } finally {
      scope.dispose();
    }
  }

  /**
   * Opens the circuit breaker of `target` ('provider/model', a configured provider)
   * for `forMs`: calls routed to it fail fast with ERR_AI_CIRCUIT_OPEN (and the
   * dispatcher moves on to the route's next target) until then, when the breaker goes
   * half-open as after any opening. For automated responses (a metrics alert's
   * 'open-breaker' action) and operators. Works without the `breaker` option too.
   */
  openBreaker(target: string, options: { forMs: number }): void {
    this.#checkOpen();
    const s = typeof target === 'string' ? splitTarget(target) : undefined;
    if (!s) throw new MyelinError('ERR_INVALID_ARGUMENT', `openBreaker: target must be a 'provider/model' string, got ${typeof target === 'string' ? JSON.stringify(target) : typeof target}`);
    if (!this.#o.providers.has(s.provider)) throw new MyelinError('ERR_INVALID_ARGUMENT', `openBreaker: provider '${s.provider}' is not configured`);
    if (options === null || typeof options !== 'object') throw new MyelinError('ERR_INVALID_ARGUMENT', 'openBreaker: options must be { forMs }');
    onlyKnown('openBreaker', options as Record<string, unknown>, ['forMs']);
    const { forMs } = options;
    if (typeof forMs !== 'number' || !(forMs > 0) || !Number.isFinite(forMs)) {
      throw new MyelinError('ERR_INVALID_ARGUMENT', `openBreaker: forMs must be a positive finite number of ms, got ${String(forMs)}`);
    }
    this.#guards.openBreaker(target, forMs);
  }

  stats(): AIClientStats {
    const targets: Record<string, TargetStats> = {};
    for (const [k, c] of this.#counters) {
      const s = c.snapshot();
      const breaker = this.#guards.state(k);
      if (breaker !== undefined) s.breaker = breaker;
      targets[k] = s;
    }
    const out: AIClientStats = { targets, pools: this.#transport.stats(), overheadUs: this.#overhead.stats() };
    if (this.#cache) out.cache = { ...this.#cache.counts };
    if (this.#storeHealth) out.limits = { ...this.#storeHealth.counts };
    if (this.#metrics) out.metrics = { errors: this.#metrics.errors };
    return out;
  }

  /** Closes every connection pool and the store connection; calls waiting for a rate
   * limit end with ERR_ABORTED. Idempotent; later calls throw ERR_AI_CLOSED. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#guards.close();
    this.#overhead.close();
    const redis = this.#redisClient;
    this.#redisClient = undefined;
    redis?.disconnect();
    await this.#transport.close();
  }

  #recordOverhead(clock: CallClock): void {
    const ms = this.#overhead.record(clock);
    if (ms !== undefined) this.#metrics?.overhead(ms);
  }

  #checkOpen(): void {
    if (this.#closed) throw new MyelinError('ERR_AI_CLOSED', 'AIClient: used after close()');
  }

  #stat(t: Target): TargetCounters {
    let c = this.#counters.get(t.key);
    if (!c) this.#counters.set(t.key, (c = new TargetCounters(this.#metrics?.forTarget(t.key))));
    return c;
  }

  /**
   * Tries targets in order, each through its retry loop, or races them when the alias
   * has hedgeAfterMs. Targets whose breaker is open go last (and are skipped when
   * reached). Moves on after a failure that another target may not share: retryable
   * ones (after their retries), quota (per account), open circuits and local limits.
   * Anything else (a bad request, the caller's abort, the deadline) ends the call.
   * `discard` closes an answer that lost a hedge race after all.
   */
  async #dispatch<T>(
    model: string,
    targets: Target[],
    scope: CallScope,
    input: Omit<GuardInput, 'deadline' | 'signal'>,
    attempt: (t: Target, s: AttemptSource) => Promise<T>,
    discard?: (value: T) => void,
  ): Promise<Dispatched<T>> {
    const order = this.#guards.healthyFirst(targets);
    const hedgeMs = this.#router.hedgeAfterMs(model);
    if (hedgeMs !== undefined && order.length > 1) return this.#hedged(order, hedgeMs, scope, input, attempt, discard);
    let total = 0;
    let last: unknown;
    let lastSent: unknown;
    for (const t of order) {
      try {
        const r = await this.#runTarget(t, scope, input, attempt);
        return { ...r, attempts: total + r.targetAttempts };
      } catch (err) {
        total += (err as AIError).attempts ?? 0;
        last = err;
        if (!refused(err)) lastSent = err;
        if (scope.signal.aborted || !this.#fallsBack(err)) break;
      }
    }
    // A target that really failed explains more than the open breakers after it.
    const out = (last as AIError)?.failure === 'circuit-open' && lastSent !== undefined ? lastSent : last;
    if (out instanceof MyelinError) Object.assign(out, { attempts: total });
    throw out;
  }

  /** One target's retry loop, each attempt behind the target's guard. */
  async #runTarget<T>(
    t: Target,
    s: AttemptSource,
    input: Omit<GuardInput, 'deadline' | 'signal'>,
    attempt: (t: Target, s: AttemptSource) => Promise<T>,
  ): Promise<Omit<Dispatched<T>, 'attempts'>> {
    const c = this.#stat(t);
    c.requests++;
    const started = performance.now();
    try {
      const { value, attempts } = await withRetries({
        retry: this.#o.retry,
        deadline: s.deadline,
        signal: s.signal,
        target: t.key,
        clock: s.clock,
        run: async () => {
          const guard = await this.#guards.enter(t, { ...input, deadline: s.deadline, signal: s.signal, clock: s.clock });
          try {
            return { v: await attempt(t, s), guard };
          } catch (err) {
            guard.fail(err);
            throw err;
          }
        },
      });
      return { value: value.v, guard: value.guard, target: t, targetAttempts: attempts, started };
    } catch (err) {
      tag(err, t.provider.name, t.key);
      const e = err as AIError;
      // A refused attempt (open breaker, local limit) never reached the upstream.
      const n = Math.max(0, (typeof e.attempts === 'number' ? e.attempts : 1) - (refused(err) ? 1 : 0));
      if (err instanceof MyelinError) Object.assign(e, { attempts: n });
      c.failure(e.code ?? 'ERR_INTERNAL', n);
      throw err;
    }
  }

  /**
   * Hedging (shared/API.md): the first target starts; when it has produced nothing
   * after hedgeMs (or failed), the next starts too; the first answer wins and the
   * others are aborted. A failure that no other target can fix (a bad request) ends
   * the race at once.
   */
  async #hedged<T>(
    targets: Target[],
    hedgeMs: number,
    scope: CallScope,
    input: Omit<GuardInput, 'deadline' | 'signal'>,
    attempt: (t: Target, s: AttemptSource) => Promise<T>,
    discard: ((value: T) => void) | undefined,
  ): Promise<Dispatched<T>> {
    const byKey = new Map(targets.map((t) => [t.key, t]));
    const fatal = new AbortController();
    let fatalErr: unknown;
    let total = 0;
    try {
      const r = await hedge(
        async (key, signal) => {
          const branch = scope.branch(signal);
          try {
            const got = await this.#runTarget(byKey.get(key)!, branch, input, attempt);
            total += got.targetAttempts;
            if (signal.aborted) {
              // Answered just as another target won: give it back.
              got.guard.fail(signal.reason);
              discard?.(got.value);
              throw signal.reason;
            }
            return got;
          } catch (err) {
            if (!signal.aborted) total += (err as AIError).attempts ?? 0;
            if (!signal.aborted && !scope.signal.aborted && !this.#fallsBack(err)) {
              fatalErr = err;
              fatal.abort(err);
            }
            throw err;
          }
        },
        targets.map((t) => t.key),
        hedgeMs,
        AbortSignal.any([scope.signal, fatal.signal]),
      );
      return { ...r.value, attempts: total };
    } catch (err) {
      const out = fatalErr ?? (scope.signal.aborted ? scope.signal.reason : err);
      if (out instanceof MyelinError) Object.assign(out, { attempts: total });
      throw out;
    }
  }

  #fallsBack(err: unknown): boolean {
    const e = err as AIError;
    return isRetryable(err) || e.failure === 'quota' || e.failure === 'rate-limit' || e.code === 'ERR_AI_CIRCUIT_OPEN' || countsAsBreakerFailure(err);
  }

  #headers(call: HttpCall, extra: Record<string, string> | undefined): Record<string, string> {
    return extra ? { ...call.headers, ...checkHeaders('headers', extra) } : call.headers;
  }

  /** One non-streamed request under timeouts.requestMs; returns the parsed JSON body. */
  async #jsonAttempt(t: Target, call: HttpCall, extra: Record<string, string> | undefined, scope: AttemptSource): Promise<unknown> {
    const a = scope.attempt();
    const ms = this.#o.timeouts.requestMs;
    a.arm(ms, () => aiError('ERR_AI_TIMEOUT', `${t.provider.name} ${call.path}: no complete answer within ${ms} ms (requestMs)`, { failure: 'timeout', retryable: true }));
    const clock = scope.clock;
    try {
      let status: number;
      let text: string;
      // Upstream I/O, from sending to the body's last byte: waiting, not overhead.
      clock?.enter();
      try {
        const m = this.#metrics;
        const sent = m ? performance.now() : 0;
        const res = await this.#transport.send({ provider: t.provider, method: call.method, path: call.path, headers: this.#headers(call, extra), body: call.body, signal: a.signal });
        m?.stage('connect', performance.now() - sent);
        status = res.status;
        if (res.status < 200 || res.status > 299) throw await this.#httpError(t, call.path, res.status, res.headers, res.body);
        try {
          text = await readText(res.body, this.#o.maxResponseSize, t.provider.name, call.path);
        } catch (err) {
          if (err instanceof MyelinError) throw err;
          throw a.signal.aborted ? a.signal.reason : connectionError(err, t.provider.name, call.path);
        }
      } finally {
        clock?.leave();
      }
      try {
        return JSON.parse(text);
      } catch {
        throw aiError('ERR_AI_UPSTREAM', `${t.provider.name} ${call.path}: the answer is not JSON`, { failure: 'invalid-response', retryable: false, status });
      }
    } catch (err) {
      throw this.#redactError(tag(a.reason(err), t.provider.name, t.key));
    } finally {
      a.dispose();
    }
  }

  async #chatAttempt(t: Target, req: ChatRequest, scope: AttemptSource): Promise<ChatResult> {
    const adapter = ADAPTERS[t.provider.kind];
    const body = await this.#jsonAttempt(t, adapter.chat(t.provider, t.model, req, false), req.headers, scope);
    try {
      return adapter.parseChat(body);
    } catch (err) {
      throw tag(err, t.provider.name, t.key);
    }
  }

  /** Opens a stream and reads it up to its first parts. */
  async #openStream(t: Target, req: ChatRequest, scope: AttemptSource): Promise<LiveStream> {
    const adapter = ADAPTERS[t.provider.kind];
    const call = adapter.chat(t.provider, t.model, req, true);
    const a = scope.attempt();
    const ms = this.#o.timeouts.firstTokenMs;
    a.arm(ms, () => aiError('ERR_AI_TIMEOUT', `${t.provider.name}: no stream content within ${ms} ms (firstTokenMs)`, { failure: 'timeout', retryable: true }));
    let live: LiveStream | undefined;
    const clock = scope.clock;
    // Upstream I/O up to the first parts (their decoding included: overhead.ts).
    clock?.enter();
    try {
      const m = this.#metrics;
      const sentAt = m ? performance.now() : undefined;
      const res = await this.#transport.send({ provider: t.provider, method: call.method, path: call.path, headers: this.#headers(call, req.headers), body: call.body, signal: a.signal });
      if (sentAt !== undefined) m!.stage('connect', performance.now() - sentAt);
      if (res.status < 200 || res.status > 299) throw await this.#httpError(t, call.path, res.status, res.headers, res.body);
      live = new LiveStream(res.body, adapter.decoder(), a, { idleMs: this.#o.timeouts.idleMs, maxBytes: this.#o.maxResponseSize, provider: t.provider.name, sentAt });
      // prime() aborts and disposes the attempt itself when it fails.
      await live.prime();
      clock?.leave();
      return live;
    } catch (err) {
      clock?.leave();
      const e = tag(a.reason(err), t.provider.name, t.key);
      if (!live) {
        a.abort(e);
        a.dispose();
      }
      throw this.#redactError(e);
    }
  }

  /** Builds the error for a non-2xx answer from its status, headers and (bounded) body. */
  async #httpError(t: Target, path: string, status: number, headers: Record<string, string | string[] | undefined>, body: AsyncIterable<Uint8Array> & { destroy(): unknown }): Promise<AIError> {
    const adapter = ADAPTERS[t.provider.kind];
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of body) {
        chunks.push(Buffer.from(c));
        n += c.length;
        if (n >= ERROR_BODY_BYTES) {
          body.destroy();
          break;
        }
      }
    } catch {
      // A body cut short still leaves the status to classify by.
    }
    const text = Buffer.concat(chunks).subarray(0, ERROR_BODY_BYTES).toString('utf8');
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not JSON (a proxy's HTML page): keep the text.
    }
    const info = adapter.parseError(parsed);
    const cls = classify(status, info, headers);
    const delay = cls.retryable ? serverDelay(status, headers) : undefined;
    const name = t.provider.name;
    const message =
      cls.failure === 'redirect'
        ? `${name} ${path}: answered ${status}, a redirect, which is never followed`
        : `${name} ${path}: ${status}${info.type ? ` ${info.type}` : ''}${info.message ? `: ${clip(info.message, this.#redactor)}` : ''}`;
    return aiError(cls.code, message, {
      failure: cls.failure,
      retryable: cls.retryable,
      provider: name,
      target: t.key,
      status,
      requestId: adapter.requestId(headers, parsed),
      retryAfterMs: delay?.ms,
      retryAfterSource: delay?.source,
      type: info.type,
      upstreamCode: info.code ?? info.detailCode,
    });
  }

  /** Error frames carry upstream text too: redact their messages as well. */
  #redactError(err: unknown): unknown {
    if (err instanceof MyelinError) {
      const clean = this.#redactor.redact(err.message);
      if (clean !== err.message) err.message = clean;
    }
    return err;
  }

  #cost(key: string, input: number, output: number): number | undefined {
    const p = this.#o.prices.get(key);
    if (!p) return undefined;
    return (input * p.inputPerMTok + output * p.outputPerMTok) / 1e6;
  }

  async #response(t: Target, r: ChatResult, req: ChatRequest, attempts: number, t0: number): Promise<ChatResponse> {
    const usage = r.usage ? { inputTokens: r.usage.inputTokens, outputTokens: r.usage.outputTokens } : await estimateUsage(req.messages, r.text, r.toolCalls);
    const hasCalls = r.toolCalls.length > 0;
    const message: ChatResponse['message'] = { role: 'assistant', content: hasCalls && r.text === '' ? null : r.text };
    if (hasCalls) message.tool_calls = r.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.argumentsText } }));
    const res: ChatResponse = {
      id: r.id,
      model: r.model || t.model,
      provider: t.provider.name,
      target: t.key,
      text: r.text,
      message,
      finishReason: r.finishReason,
      usage,
      latencyMs: performance.now() - t0,
      attempts,
      cached: false,
    };
    if (hasCalls) res.toolCalls = r.toolCalls;
    const cost = this.#cost(t.key, usage.inputTokens, usage.outputTokens);
    if (cost !== undefined) res.costUsd = cost;
    return res;
  }
}
