// The exact-match response cache in front of chat() and stream() (shared/API.md,
// AI-WIRE failure cases 7 and 8). One entry serves both forms: it keeps the final
// response and the parts that produced it, so a chat answer replays as a stream and a
// recorded stream answers a chat. The key is canonicalKey over the request, the first
// target the router picked ('provider/model', never the alias) and the `user` partition.
// The store is a bounded MemoryCache, or Redis when the client has a `store`; a store
// that fails reads as a miss and a failed write is dropped: the cache never fails a call.
import type { Redis } from 'ioredis';
import { canonicalKey, type CachedEntry, type CachePart, isCacheable, MemoryCache, RedisCache, replay, SingleFlight, StreamRecorder } from '../cache/exact-cache.js';
import type { Target } from './model-router.js';
import type { CacheOptions } from './options.js';
import type { ChatRequest, ChatResponse, StreamPart } from './types.js';

type Part = Exclude<StreamPart, { type: 'done' }>;
/** Parts are stored as the generic CachePart (JSON in Redis) and are StreamParts again on replay. */
export type ResponseEntry = CachedEntry<ChatResponse>;

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
  readonly counts: CacheStats = { hits: 0, misses: 0, shared: 0 };
  readonly #ttlMs: number;
  readonly #memory: MemoryCache<ResponseEntry> | undefined;
  readonly #redis: RedisCache<ResponseEntry> | undefined;

  constructor(o: CacheOptions, redis: Redis | undefined, prefix: string) {
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

  async get(key: string): Promise<ResponseEntry | undefined> {
    let e: ResponseEntry | undefined;
    try {
      e = this.#memory ? this.#memory.get(key) : await this.#redis!.get(key);
    } catch {
      e = undefined;
    }
    if (e) this.counts.hits++;
    else this.counts.misses++;
    return e;
  }

  async set(key: string, entry: ResponseEntry, ttlMs: number): Promise<void> {
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
