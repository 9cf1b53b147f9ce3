// Where conversations live between turns: in process (bounded LRU + TTL) or in Redis
// under `ai:session:<id>` as JSON with a TTL, so any replica can serve the next turn.
// Writes are whole-value (last writer wins): one session is expected to be driven by
// one request at a time.
import type { Redis } from 'ioredis';
import { invalidArgument } from '../../errors.js';
import { MemoryCache } from '../cache/memory-cache.js';
import type { SessionMessage } from './token-count.js';

export interface SessionData {
  messages: SessionMessage[];
  model?: string;
  system?: string;
  /** Clock time of the last write (ms); set by the store. */
  updatedAt?: number;
  [field: string]: unknown;
}

export interface SessionStore {
  get(id: string): Promise<SessionData | undefined>;
  set(id: string, data: SessionData): Promise<void>;
  delete(id: string): Promise<void>;
}

function checkId(id: string): void {
  if (typeof id !== 'string' || id === '') throw invalidArgument(`session id must be a non-empty string, got ${String(id)}`);
}

export interface MemorySessionStoreOptions {
  /** Default 10 000 (least recently used forgotten first). */
  maxSessions?: number;
  /** Default 86 400 000 ms (a day) since the last write. */
  ttlMs?: number;
  now?: () => number;
}

export class MemorySessionStore implements SessionStore {
  readonly #cache: MemoryCache<SessionData>;
  readonly #now: () => number;

  constructor(options: MemorySessionStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#cache = new MemoryCache({ maxEntries: options.maxSessions ?? 10_000, ttlMs: options.ttlMs ?? 86_400_000, now: this.#now });
  }

  get size(): number {
    return this.#cache.size;
  }

  /**
   * The stored snapshot. Treat it as read-only: the same message objects come back on
   * every get, which keeps their token counts cached.
   */
  async get(id: string): Promise<SessionData | undefined> {
    checkId(id);
    return this.#cache.get(id);
  }

  /** Stores a snapshot (a structured clone), so later changes by the caller do not leak in. */
  async set(id: string, data: SessionData): Promise<void> {
    checkId(id);
    if (data === null || typeof data !== 'object' || !Array.isArray(data.messages)) throw invalidArgument('session data must have a messages array');
    this.#cache.set(id, { ...structuredClone(data), updatedAt: this.#now() });
  }

  async delete(id: string): Promise<void> {
    checkId(id);
    this.#cache.delete(id);
  }
}

export interface RedisSessionStoreOptions {
  /** A connected ioredis client; the store never closes it. */
  redis: Redis;
  /** Default 'ai:session:'. */
  prefix?: string;
  /** Default 86 400 000 ms (a day) since the last write. */
  ttlMs?: number;
  now?: () => number;
}

export class RedisSessionStore implements SessionStore {
  readonly prefix: string;
  readonly ttlMs: number;
  readonly #redis: Redis;
  readonly #now: () => number;

  constructor(options: RedisSessionStoreOptions) {
    if (options?.redis === undefined || typeof options.redis.set !== 'function') throw invalidArgument('redis must be an ioredis client');
    const ttlMs = options.ttlMs ?? 86_400_000;
    if (typeof ttlMs !== 'number' || !(ttlMs > 0)) throw invalidArgument(`ttlMs must be a positive number, got ${String(ttlMs)}`);
    this.#redis = options.redis;
    this.prefix = options.prefix ?? 'ai:session:';
    this.ttlMs = ttlMs;
    this.#now = options.now ?? Date.now;
  }

  async get(id: string): Promise<SessionData | undefined> {
    checkId(id);
    const raw = await this.#redis.get(this.prefix + id);
    if (raw === null) return undefined;
    try {
      const data = JSON.parse(raw) as SessionData;
      return Array.isArray(data?.messages) ? data : undefined;
    } catch {
      return undefined;
    }
  }

  async set(id: string, data: SessionData): Promise<void> {
    checkId(id);
    if (data === null || typeof data !== 'object' || !Array.isArray(data.messages)) throw invalidArgument('session data must have a messages array');
    await this.#redis.set(this.prefix + id, JSON.stringify({ ...data, updatedAt: this.#now() }), 'PX', Math.ceil(this.ttlMs));
  }

  async delete(id: string): Promise<void> {
    checkId(id);
    await this.#redis.del(this.prefix + id);
  }
}
