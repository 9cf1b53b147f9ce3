// The exact-match response cache in front of chat() and stream() (shared/API.md,
// AI-WIRE failure cases 7 and 8). One entry serves both forms: it keeps the final
// response and the parts that produced it, so a chat answer replays as a stream and a
// recorded stream answers a chat. The key is canonicalKey over the request, the first
// target the router picked ('provider/model', never the alias) and the `user` partition.
// The store is a bounded MemoryCache, or Redis when the client has a `store`; a store
// that fails reads as a miss and a failed write is dropped: the cache never fails a call.
// embed() results share the store: their key is canonicalKey over the embed request
// (input as an array, dimensions and any other field but signal/cache/model, marked
// op 'embed' so that it can never equal a chat key) and the first target.
import type { Redis } from 'ioredis';
import { canonicalKey, type CachedEntry, type CachePart, isCacheable, MemoryCache, RedisCache, replay, SingleFlight, StreamRecorder } from '../cache/exact-cache.js';
import type { Target } from './model-router.js';
import type { CacheOptions } from './options.js';
import type { StreamFlight } from './stream-flight.js';
import type { ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, StreamPart } from './types.js';

type Part = Exclude<StreamPart, { type: 'done' }>;
/** Parts are stored as the generic CachePart (JSON in Redis) and are StreamParts again on replay. */
export type ResponseEntry = CachedEntry<ChatResponse>;
/** An embed result: no parts. */
export type EmbedEntry = CachedEntry<EmbedResponse>;
type Entry = ResponseEntry | EmbedEntry;

/** Records a stream's parts for the cache (text runs merged; nothing kept past the recorder's bound). */
export class StreamCapture {
  readonly #rec = new StreamRecorder();

  push(p: StreamPart): void {
    this.#rec.push(p as unknown as CachePart);
  }

  finish(res: ChatResponse): ResponseEntry | undefined {
    return this.#rec.finish(stored(res));
  }
}

export interface CachePlan {
  key: string;
  ttlMs: number;
}

export interface CacheStats {
  hits: number;
  misses: number;
  /** Calls that joined an identical call already in flight instead of going upstream. */
  shared: number;
}

export class ResponseCache {
  readonly flights = new SingleFlight();
  /** Cacheable streams in flight, by cache key (stream-flight.ts). */
  readonly streams = new Map<string, StreamFlight>();
  readonly counts: CacheStats = { hits: 0, misses: 0, shared: 0 };
  readonly #ttlMs: number;
  readonly #memory: MemoryCache<Entry> | undefined;
  readonly #redis: RedisCache<Entry> | undefined;

  readonly #onCount: ((result: 'hit' | 'miss' | 'shared') => void) | undefined;

  /** `onCount` sees every change of `counts` (the client's metrics). */
  constructor(o: CacheOptions, redis: Redis | undefined, prefix: string, onCount?: (result: 'hit' | 'miss' | 'shared') => void) {
    this.#onCount = onCount;
    this.#ttlMs = o.ttlMs ?? 600_000;
    if (redis) this.#redis = new RedisCache({ redis, prefix: `${prefix}cache:`, ttlMs: this.#ttlMs });
    else this.#memory = new MemoryCache({ ttlMs: this.#ttlMs, maxEntries: o.maxEntries ?? 10_000 });
  }

  /** The key and TTL for a cacheable request, or undefined when it must not be cached. */
  plan(req: ChatRequest, first: Target): CachePlan | undefined {
    const perRequest = typeof req.cache === 'object' ? req.cache : undefined;
    const { signal: _signal, ...fields } = req;
    const cache = perRequest ? true : (req.cache as boolean | undefined);
    if (!isCacheable({ ...fields, cache }, { provider: first.provider.kind })) return undefined;
    const key = canonicalKey(fields, { resolvedModel: first.key, partition: req.user, provider: first.provider.kind });
    return { key, ttlMs: perRequest?.ttlMs ?? this.#ttlMs };
  }

  /** The key and TTL for an embed request, or undefined with `cache: false`. */
  planEmbed(req: EmbedRequest, first: Target): CachePlan | undefined {
    if (req.cache === false) return undefined;
    const perRequest = typeof req.cache === 'object' ? req.cache : undefined;
    const { signal: _signal, cache: _cache, model: _model, input, ...rest } = req;
    const fields = { ...rest, op: 'embed', input: typeof input === 'string' ? [input] : input };
    const key = canonicalKey(fields, { resolvedModel: first.key });
    return { key, ttlMs: perRequest?.ttlMs ?? this.#ttlMs };
  }

  async get(key: string): Promise<ResponseEntry | undefined> {
    const e = await this.#read(key);
    return this.#count(e && !isEmbed(e) ? e : undefined);
  }

  async getEmbed(key: string): Promise<EmbedEntry | undefined> {
    const e = await this.#read(key);
    return this.#count(e && isEmbed(e) ? e : undefined);
  }

  async #read(key: string): Promise<Entry | undefined> {
    try {
      return this.#memory ? this.#memory.get(key) : await this.#redis!.get(key);
    } catch {
      return undefined;
    }
  }

  #count<E>(e: E | undefined): E | undefined {
    if (e) this.counts.hits++;
    else this.counts.misses++;
    this.#onCount?.(e ? 'hit' : 'miss');
    return e;
  }

  /** A call joined an identical call already in flight. */
  shared(): void {
    this.counts.shared++;
    this.#onCount?.('shared');
  }

  async set(key: string, entry: Entry, ttlMs: number): Promise<void> {
    try {
      if (this.#memory) this.#memory.set(key, entry, ttlMs);
      else await this.#redis!.set(key, entry, ttlMs);
    } catch {
      // A cache that cannot store costs a later miss, never this answer.
    }
  }

  /** The entry for a finished non-streamed answer: its text, then its tool calls. */
  static entryOf(res: ChatResponse): ResponseEntry {
    const parts: CachePart[] = [];
    if (res.text !== '') parts.push({ type: 'text', text: res.text });
    for (const c of res.toolCalls ?? []) parts.push({ ...c, type: 'tool-call' });
    return { response: stored(res), parts, createdAt: Date.now() };
  }

  /** The answer a hit gives: the stored one, marked cached, costing nothing now. */
  static served(e: ResponseEntry, t0: number): ChatResponse {
    const res: ChatResponse = { ...e.response, cached: true, attempts: 0, latencyMs: performance.now() - t0 };
    if (res.costUsd !== undefined) res.costUsd = 0;
    return res;
  }

  /** The entry for an embed result; its vectors copied, so that the caller may change its own. */
  static embedEntryOf(res: EmbedResponse): EmbedEntry {
    return { response: { ...ResponseCache.copyEmbed(res), latencyMs: 0 }, parts: [], createdAt: Date.now() };
  }

  /** An embed hit: the stored vectors (copied), marked cached. */
  static servedEmbed(e: EmbedEntry, t0: number): EmbedResponse {
    return { ...ResponseCache.copyEmbed(e.response), cached: true, attempts: 0, latencyMs: performance.now() - t0 };
  }

  static copyEmbed(res: EmbedResponse): EmbedResponse {
    return { ...res, vectors: res.vectors.map((v) => v.slice()), usage: { ...res.usage } };
  }

  static async *replay(e: ResponseEntry, t0: number): AsyncGenerator<StreamPart, void, undefined> {
    for await (const p of replay(e)) {
      if (p.type === 'done') yield { type: 'done', response: ResponseCache.served(e, t0) };
      else yield p as unknown as Part;
    }
  }
}

function stored(res: ChatResponse): ChatResponse {
  const { latencyMs: _l, ...rest } = res;
  return { ...rest, latencyMs: 0 };
}

function isEmbed(e: Entry): e is EmbedEntry {
  return Array.isArray((e.response as Partial<EmbedResponse>).vectors);
}
