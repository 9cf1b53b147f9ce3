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
// Accepted for the resilience layer and stored, not yet applied here: breaker, limits,
// cache, store, metrics (see `resilience`).
import { MyelinError } from '../../errors.js';
import { aiError, type AIError, countsAsBreakerFailure, isRetryable, tag } from './failure.js';
import { LiveStream } from './live-stream.js';
import { ModelRouter, type Target } from './model-router.js';
import { type AIClientOptions, checkHeaders, type ProviderKind, type ResolvedOptions, resolveOptions } from './options.js';
import { anthropic } from './providers/anthropic.js';
import { ollama } from './providers/ollama.js';
import { openai } from './providers/openai.js';
import type { ChatResult, HttpCall, ProviderAdapter } from './providers/provider.js';
import { clip, Redactor } from './redactor.js';
import { checkChatRequest, checkEmbedRequest } from './request-check.js';
import { classify, serverDelay, withRetries } from './retry.js';
import { CallScope } from './scope.js';
import { TargetCounters, type TargetStats } from './target-stats.js';
import { type PoolStats, Transport, connectionError, readText } from './transport.js';
import type { ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, StreamPart } from './types.js';
import { estimateUsage } from './usage-estimate.js';

const ADAPTERS: Record<ProviderKind, ProviderAdapter> = { openai, anthropic, ollama };

/** Error bodies are read up to this much; the rest is dropped with the connection. */
const ERROR_BODY_BYTES = 64 * 1024;

export interface AIClientStats {
  /** Per target ('provider/model'). */
  targets: Record<string, TargetStats>;
  /** Per upstream origin: connection pool state. */
  pools: Record<string, PoolStats>;
}

export class AIClient {
  readonly #o: ResolvedOptions;
  readonly #transport: Transport;
  readonly #redactor: Redactor;
  readonly #router: ModelRouter;
  readonly #counters = new Map<string, TargetCounters>();
  #closed = false;

  constructor(options: AIClientOptions) {
    this.#o = resolveOptions(options);
    this.#transport = new Transport({ maxResponseSize: this.#o.maxResponseSize, connectMs: this.#o.timeouts.connectMs });
    this.#redactor = new Redactor([...this.#o.providers.values()].map((p) => p.apiKey));
    this.#router = new ModelRouter(this.#o, (key) => {
      const c = this.#counters.get(key);
      return c && c.latency.count > 0 ? c.latency.percentiles(0.5)[0] : undefined;
    });
  }

  /** Options the resilience layer (breaker, limits, cache, sessions, metrics) wires in. */
  get resilience(): Pick<ResolvedOptions, 'breaker' | 'limits' | 'cache' | 'store' | 'metrics'> {
    const o = this.#o;
    return { breaker: o.breaker, limits: o.limits, cache: o.cache, store: o.store, metrics: o.metrics };
  }

  async chat(req: ChatRequest): Promise<ChatResponse> {
    checkChatRequest(req);
    this.#checkOpen();
    const targets = this.#router.resolve(req.model);
    const scope = new CallScope(req.signal, this.#o.retry.deadlineMs);
    const t0 = performance.now();
    try {
      const d = await this.#dispatch(targets, scope, (t) => this.#chatAttempt(t, req, scope));
      const res = await this.#response(d.target, d.value, req, d.attempts, t0);
      this.#stat(d.target).success(d.targetAttempts, performance.now() - d.started, res.usage.inputTokens, res.usage.outputTokens, res.costUsd);
      return res;
    } finally {
      scope.dispose();
    }
  }

  /** Streams parts; breaking out of the loop aborts the upstream request and frees its socket. */
  stream(req: ChatRequest): AsyncIterable<StreamPart> {
    checkChatRequest(req);
    this.#checkOpen();
    const targets = this.#router.resolve(req.model);
    return this.#streamParts(req, targets);
  }

  async *#streamParts(req: ChatRequest, targets: Target[]): AsyncGenerator<StreamPart, void, undefined> {
    const scope = new CallScope(req.signal, this.#o.retry.deadlineMs);
    const t0 = performance.now();
    let live: LiveStream | undefined;
    let committed: { target: Target; targetAttempts: number; started: number } | undefined;
    try {
      const d = await this.#dispatch(targets, scope, (t) => this.#openStream(t, req, scope));
      live = d.value;
      committed = d;
      scope.release();
      let parts = live.held;
      live.held = undefined;
      while (parts) {
        for (const p of parts) yield p;
        parts = await live.next();
      }
      const response = await this.#response(d.target, live.result(), req, d.attempts, t0);
      this.#stat(d.target).success(d.targetAttempts, performance.now() - d.started, response.usage.inputTokens, response.usage.outputTokens, response.costUsd);
      yield { type: 'done', response };
    } catch (err) {
      this.#redactError(err);
      if (committed) {
        tag(err, committed.target.provider.name, committed.target.key);
        this.#stat(committed.target).failure((err as MyelinError).code ?? 'ERR_INTERNAL', committed.targetAttempts);
      }
      throw err;
    } finally {
      live?.close(new MyelinError('ERR_ABORTED', 'the stream consumer stopped reading'));
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
    const scope = new CallScope(req.signal, this.#o.retry.deadlineMs);
    const t0 = performance.now();
    try {
      const d = await this.#dispatch(targets, scope, async (t) => {
        const adapter = ADAPTERS[t.provider.kind];
        const body = await this.#jsonAttempt(t, adapter.embed!(t.provider, t.model, req), req.headers, scope);
        return adapter.parseEmbed!(body);
      });
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
      };
    } finally {
      scope.dispose();
    }
  }

  /** Model ids the provider lists (OpenAI /models, Anthropic /v1/models, Ollama /api/tags). */
  async models(provider: string, options: { signal?: AbortSignal } = {}): Promise<string[]> {
    this.#checkOpen();
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

  stats(): AIClientStats {
    const targets: Record<string, TargetStats> = {};
    for (const [k, c] of this.#counters) targets[k] = c.snapshot();
    return { targets, pools: this.#transport.stats() };
  }

  /** Closes every connection pool. Idempotent; later calls throw ERR_AI_CLOSED. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#transport.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new MyelinError('ERR_AI_CLOSED', 'AIClient: used after close()');
  }

  #stat(t: Target): TargetCounters {
    let c = this.#counters.get(t.key);
    if (!c) this.#counters.set(t.key, (c = new TargetCounters()));
    return c;
  }

  /**
   * Tries targets in order, each through its retry loop. Moves on after a failure that
   * another target may not share: retryable ones (after their retries), quota (per
   * account) and open circuits. Anything else (a bad request, the caller's abort, the
   * deadline) ends the call.
   */
  async #dispatch<T>(
    targets: Target[],
    scope: CallScope,
    attempt: (t: Target) => Promise<T>,
  ): Promise<{ value: T; target: Target; attempts: number; targetAttempts: number; started: number }> {
    let total = 0;
    let last: unknown;
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i];
      const c = this.#stat(t);
      c.requests++;
      const started = performance.now();
      try {
        const { value, attempts } = await withRetries({ retry: this.#o.retry, deadline: scope.deadline, signal: scope.signal, target: t.key, run: () => attempt(t) });
        total += attempts;
        return { value, target: t, attempts: total, targetAttempts: attempts, started };
      } catch (err) {
        tag(err, t.provider.name, t.key);
        const e = err as AIError;
        const n = typeof e.attempts === 'number' ? e.attempts : 1;
        total += n;
        c.failure(e.code ?? 'ERR_INTERNAL', n);
        last = err;
        if (scope.signal.aborted || !this.#fallsBack(err)) break;
      }
    }
    if (last instanceof MyelinError) Object.assign(last, { attempts: total });
    throw last;
  }

  #fallsBack(err: unknown): boolean {
    const e = err as AIError;
    return isRetryable(err) || e.failure === 'quota' || e.code === 'ERR_AI_CIRCUIT_OPEN' || countsAsBreakerFailure(err);
  }

  #headers(call: HttpCall, extra: Record<string, string> | undefined): Record<string, string> {
    return extra ? { ...call.headers, ...checkHeaders('headers', extra) } : call.headers;
  }

  /** One non-streamed request under timeouts.requestMs; returns the parsed JSON body. */
  async #jsonAttempt(t: Target, call: HttpCall, extra: Record<string, string> | undefined, scope: CallScope): Promise<unknown> {
    const a = scope.attempt();
    const ms = this.#o.timeouts.requestMs;
    a.arm(ms, () => aiError('ERR_AI_TIMEOUT', `${t.provider.name} ${call.path}: no complete answer within ${ms} ms (requestMs)`, { failure: 'timeout', retryable: true }));
    try {
      const res = await this.#transport.send({ provider: t.provider, method: call.method, path: call.path, headers: this.#headers(call, extra), body: call.body, signal: a.signal });
      if (res.status < 200 || res.status > 299) throw await this.#httpError(t, call.path, res.status, res.headers, res.body);
      let text: string;
      try {
        text = await readText(res.body, this.#o.maxResponseSize, t.provider.name, call.path);
      } catch (err) {
        if (err instanceof MyelinError) throw err;
        throw a.signal.aborted ? a.signal.reason : connectionError(err, t.provider.name, call.path);
      }
      try {
        return JSON.parse(text);
      } catch {
        throw aiError('ERR_AI_UPSTREAM', `${t.provider.name} ${call.path}: the answer is not JSON`, { failure: 'invalid-response', retryable: false, status: res.status });
      }
    } catch (err) {
      throw this.#redactError(tag(a.reason(err), t.provider.name, t.key));
    } finally {
      a.dispose();
    }
  }

  async #chatAttempt(t: Target, req: ChatRequest, scope: CallScope): Promise<ChatResult> {
    const adapter = ADAPTERS[t.provider.kind];
    const body = await this.#jsonAttempt(t, adapter.chat(t.provider, t.model, req, false), req.headers, scope);
    try {
      return adapter.parseChat(body);
    } catch (err) {
      throw tag(err, t.provider.name, t.key);
    }
  }

  /** Opens a stream and reads it up to its first parts. */
  async #openStream(t: Target, req: ChatRequest, scope: CallScope): Promise<LiveStream> {
    const adapter = ADAPTERS[t.provider.kind];
    const call = adapter.chat(t.provider, t.model, req, true);
    const a = scope.attempt();
    const ms = this.#o.timeouts.firstTokenMs;
    a.arm(ms, () => aiError('ERR_AI_TIMEOUT', `${t.provider.name}: no stream content within ${ms} ms (firstTokenMs)`, { failure: 'timeout', retryable: true }));
    let live: LiveStream | undefined;
    try {
      const res = await this.#transport.send({ provider: t.provider, method: call.method, path: call.path, headers: this.#headers(call, req.headers), body: call.body, signal: a.signal });
      if (res.status < 200 || res.status > 299) throw await this.#httpError(t, call.path, res.status, res.headers, res.body);
      live = new LiveStream(res.body, adapter.decoder(), a, { idleMs: this.#o.timeouts.idleMs, maxBytes: this.#o.maxResponseSize, provider: t.provider.name });
      // prime() aborts and disposes the attempt itself when it fails.
      await live.prime();
      return live;
    } catch (err) {
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
