// A bounded in-process cache: least recently used evicted beyond `maxEntries`, entries
// expire `ttlMs` after they were set (checked on read, and expired entries are the
// first to go when making room). A Map keeps insertion order, so re-inserting on each
// hit makes its first key the least recently used: O(1) per operation, no timers.
import { invalidArgument } from '../../errors.js';

export interface MemoryCacheOptions {
  /** Default 10 000. */
  maxEntries?: number;
  /** Default 600 000 ms. */
  ttlMs?: number;
  now?: () => number;
}

interface Slot<V> {
  value: V;
  expires: number;
}

export class MemoryCache<V> {
  readonly maxEntries: number;
  readonly ttlMs: number;
  readonly #now: () => number;
  readonly #map = new Map<string, Slot<V>>();

  constructor(options: MemoryCacheOptions = {}) {
    const { maxEntries = 10_000, ttlMs = 600_000 } = options;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw invalidArgument(`maxEntries must be a positive integer, got ${String(maxEntries)}`);
    if (typeof ttlMs !== 'number' || !(ttlMs > 0)) throw invalidArgument(`ttlMs must be a positive number, got ${String(ttlMs)}`);
    this.maxEntries = maxEntries;
    this.ttlMs = ttlMs;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: string): V | undefined {
    const slot = this.#map.get(key);
    if (slot === undefined) return undefined;
    this.#map.delete(key);
    if (slot.expires <= this.#now()) return undefined;
    this.#map.set(key, slot);
    return slot.value;
  }

  has(key: string): boolean {
    const slot = this.#map.get(key);
    return slot !== undefined && slot.expires > this.#now();
  }

  set(key: string, value: V, ttlMs: number = this.ttlMs): void {
    if (typeof ttlMs !== 'number' || !(ttlMs > 0)) throw invalidArgument(`ttlMs must be a positive number, got ${String(ttlMs)}`);
    this.#map.delete(key);
    this.#map.set(key, { value, expires: this.#now() + ttlMs });
    if (this.#map.size > this.maxEntries) this.#evict();
  }

  delete(key: string): boolean {
    return this.#map.delete(key);
  }

  clear(): void {
    this.#map.clear();
  }

  #evict(): void {
    // The least recently used goes; an expired one at the old end goes with it for free.
    const now = this.#now();
    for (const [key, slot] of this.#map) {
      if (this.#map.size <= this.maxEntries && slot.expires > now) break;
      this.#map.delete(key);
    }
  }
}
