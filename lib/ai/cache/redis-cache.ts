// The response cache in Redis, shared by replicas: JSON values, TTL set by PX on the
// same SET (never a separate EXPIRE that a crash could skip).
import type { Redis } from 'ioredis';
import { invalidArgument } from '../../errors.js';

export interface RedisCacheOptions {
  /** A connected ioredis client; the cache never closes it. */
  redis: Redis;
  /** Default 'myelin:cache:'. */
  prefix?: string;
  /** Default 600 000 ms. */
  ttlMs?: number;
}

export class RedisCache<V> {
  readonly prefix: string;
  readonly ttlMs: number;
  readonly #redis: Redis;

  constructor(options: RedisCacheOptions) {
    if (options?.redis === undefined || typeof options.redis.set !== 'function') throw invalidArgument('redis must be an ioredis client');
    const ttlMs = options.ttlMs ?? 600_000;
    if (typeof ttlMs !== 'number' || !(ttlMs > 0)) throw invalidArgument(`ttlMs must be a positive number, got ${String(ttlMs)}`);
    this.#redis = options.redis;
    this.prefix = options.prefix ?? 'myelin:cache:';
    this.ttlMs = ttlMs;
  }

  /** The value, or undefined when absent, expired or unreadable (an unreadable entry is deleted). */
  async get(key: string): Promise<V | undefined> {
    const raw = await this.#redis.get(this.prefix + key);
    if (raw === null) return undefined;
    try {
      return JSON.parse(raw) as V;
    } catch {
      await this.#redis.del(this.prefix + key);
      return undefined;
    }
  }

  async set(key: string, value: V, ttlMs: number = this.ttlMs): Promise<void> {
    if (typeof ttlMs !== 'number' || !(ttlMs > 0)) throw invalidArgument(`ttlMs must be a positive number, got ${String(ttlMs)}`);
    await this.#redis.set(this.prefix + key, JSON.stringify(value), 'PX', Math.ceil(ttlMs));
  }

  async delete(key: string): Promise<boolean> {
    return (await this.#redis.del(this.prefix + key)) > 0;
  }
}
