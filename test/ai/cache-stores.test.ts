// MemoryCache (LRU + TTL, bounded), RedisCache (PX TTL, JSON), SingleFlight, and
// stream record/replay.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { MemoryCache, RedisCache, SingleFlight, StreamRecorder, replay, type CachePart } from '../../lib/ai/cache/exact-cache.js';
import { MyelinError } from '../../lib/errors.js';
import { expectCode, expectRejectCode } from '../helpers.js';
import { requireRedis } from './services.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('MemoryCache', () => {
  it('evicts the least recently used beyond maxEntries', () => {
    const c = new MemoryCache<number>({ maxEntries: 3 });
    c.set('a', 1);
    c.set('b', 2);
    c.set('c', 3);
    expect(c.get('a')).toBe(1); // a is now the most recent
    c.set('d', 4);
    expect(c.get('b')).toBeUndefined();
    expect([c.get('a'), c.get('c'), c.get('d')]).toEqual([1, 3, 4]);
    c.set('a', 10); // overwrite does not grow
    expect(c.size).toBe(3);
    expect(c.get('a')).toBe(10);
  });

  it('expires entries after ttlMs (per entry override too)', () => {
    vi.useFakeTimers({ now: 0 });
    const c = new MemoryCache<string>({ ttlMs: 1_000 });
    c.set('x', 'v');
    c.set('short', 'v', 100);
    vi.advanceTimersByTime(100);
    expect(c.has('short')).toBe(false);
    expect(c.get('x')).toBe('v');
    vi.advanceTimersByTime(899);
    expect(c.get('x')).toBe('v');
    vi.advanceTimersByTime(1);
    expect(c.get('x')).toBeUndefined();
    expect(c.size).toBe(1); // 'short' is only dropped when touched or evicted
  });

  it('stays within maxEntries after 100 000 inserts', () => {
    const c = new MemoryCache<number>({ maxEntries: 1_000 });
    for (let i = 0; i < 100_000; i++) {
      c.set(`k${i}`, i);
      if (i % 3 === 0) c.get(`k${i >> 1}`);
    }
    expect(c.size).toBe(1_000);
    expect(c.get('k99999')).toBe(99_999);
    expect(c.get('k0')).toBeUndefined();
  });

  it('rejects bad options', () => {
    expectCode(() => new MemoryCache({ maxEntries: 0 }), 'ERR_INVALID_ARGUMENT', /maxEntries/);
    expectCode(() => new MemoryCache({ maxEntries: 1.5 }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new MemoryCache({ ttlMs: -1 }), 'ERR_INVALID_ARGUMENT', /ttlMs/);
    expectCode(() => new MemoryCache().set('k', 1, Number.NaN), 'ERR_INVALID_ARGUMENT');
  });
});

describe('RedisCache', () => {
  const prefix = `myelin-test:cache:${randomUUID()}:`;
  let redis: Redis;
  beforeAll(async () => {
    await requireRedis();
    redis = new Redis({ host: '127.0.0.1', port: 6379 });
  });
  afterAll(async () => {
    if (!redis) return;
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('stores JSON with a PX TTL on the same SET', async () => {
    const c = new RedisCache<{ text: string; n: number[] }>({ redis, prefix, ttlMs: 5_000 });
    await c.set('k1', { text: 'hi', n: [1, 2] });
    expect(await c.get('k1')).toEqual({ text: 'hi', n: [1, 2] });
    const ttl = await redis.pttl(`${prefix}k1`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(5_000);
    await c.set('k2', { text: '', n: [] }, 200);
    expect(await redis.pttl(`${prefix}k2`)).toBeLessThanOrEqual(200);
    expect(await c.get('missing')).toBeUndefined();
    expect(await c.delete('k1')).toBe(true);
    expect(await c.get('k1')).toBeUndefined();
  });

  it('treats an unreadable value as a miss and removes it', async () => {
    const c = new RedisCache({ redis, prefix });
    await redis.set(`${prefix}bad`, '{not json', 'PX', 5_000);
    expect(await c.get('bad')).toBeUndefined();
    expect(await redis.exists(`${prefix}bad`)).toBe(0);
  });

  it('rejects bad options', () => {
    expectCode(() => new RedisCache({ redis: {} as Redis }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new RedisCache({ redis, ttlMs: 0 }), 'ERR_INVALID_ARGUMENT');
  });
});

/** A promise with its resolve/reject. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('SingleFlight', () => {
  it('identical concurrent requests share one upstream call', async () => {
    const sf = new SingleFlight();
    const d = deferred<string>();
    let calls = 0;
    const fn = () => {
      calls++;
      return d.promise;
    };
    const ps = [sf.run('k', fn), sf.run('k', fn), sf.run('k', fn)];
    const other = sf.run('other', async () => 'o');
    expect(calls).toBe(1);
    expect(sf.size).toBe(2);
    d.resolve('answer');
    expect(await Promise.all(ps)).toEqual(['answer', 'answer', 'answer']);
    expect(await other).toBe('o');
    expect(sf.size).toBe(0);
  });

  it('a failure reaches every waiter and is not kept', async () => {
    const sf = new SingleFlight();
    const d = deferred<string>();
    const ps = [sf.run('k', () => d.promise), sf.run('k', () => d.promise)];
    d.reject(new MyelinError('ERR_AI_UPSTREAM', 'boom', { status: 500 }));
    for (const p of ps) await expectRejectCode(p, 'ERR_AI_UPSTREAM');
    expect(sf.has('k')).toBe(false);
    expect(await sf.run('k', async () => 'fresh')).toBe('fresh');
    await expectRejectCode(
      sf.run('sync-throw', () => {
        throw new MyelinError('ERR_INTERNAL', 'sync');
      }),
      'ERR_INTERNAL',
    );
  });

  it('a waiter may leave; the shared call is aborted only when the last one leaves', async () => {
    const sf = new SingleFlight();
    let upstream: AbortSignal | undefined;
    const d = deferred<string>();
    const fn = (signal: AbortSignal) => {
      upstream = signal;
      return d.promise;
    };
    const c1 = new AbortController();
    const c2 = new AbortController();
    const p1 = sf.run('k', fn, { signal: c1.signal });
    const p2 = sf.run('k', fn, { signal: c2.signal });
    c1.abort();
    await expectRejectCode(p1, 'ERR_ABORTED');
    expect(upstream!.aborted).toBe(false);
    c2.abort();
    await expectRejectCode(p2, 'ERR_ABORTED');
    expect(upstream!.aborted).toBe(true);
    expect(sf.has('k')).toBe(false); // the next caller starts a new call
    d.resolve('late');
    await expectRejectCode(sf.run('k', fn, { signal: c1.signal }), 'ERR_ABORTED');
  });
});

describe('stream record and replay', () => {
  it('replays the same part shapes in order, then done with the response', async () => {
    const rec = new StreamRecorder<CachePart>({ now: () => 42 });
    const live: CachePart[] = [
      { type: 'text', text: 'Hel' },
      { type: 'text', text: 'lo' },
      { type: 'tool-call', id: 'call_1', name: 'get_weather', arguments: '{"city":"Oslo"}' },
      { type: 'text', text: '!' },
      { type: 'done', response: { ignored: true } },
    ];
    for (const p of live) rec.push(p);
    const response = { id: 'r1', text: 'Hello!', finishReason: 'tool_calls' };
    const entry = rec.finish(response)!;
    expect(entry.createdAt).toBe(42);
    // Survives a JSON round trip (RedisCache) unchanged.
    const stored = JSON.parse(JSON.stringify(entry)) as typeof entry;
    const parts: unknown[] = [];
    for await (const p of replay(stored)) parts.push(p);
    expect(parts).toEqual([
      { type: 'text', text: 'Hello' },
      { type: 'tool-call', id: 'call_1', name: 'get_weather', arguments: '{"city":"Oslo"}' },
      { type: 'text', text: '!' },
      { type: 'done', response },
    ]);
    // Replaying twice gives the same parts; consumers cannot mutate the entry.
    const again: CachePart[] = [];
    for await (const p of replay(entry)) {
      (p as CachePart).text = 'mutated';
      again.push(p as CachePart);
    }
    expect(entry.parts[0].text).toBe('Hello');
  });

  it('does not merge text parts that differ in other fields', () => {
    const rec = new StreamRecorder();
    rec.push({ type: 'text', text: 'a', index: 0 });
    rec.push({ type: 'text', text: 'b', index: 1 });
    expect(rec.finish({})!.parts).toHaveLength(2);
  });

  it('gives up past maxChars so a huge stream is not cached', () => {
    const rec = new StreamRecorder({ maxChars: 10 });
    rec.push({ type: 'text', text: '12345' });
    rec.push({ type: 'text', text: '678901' });
    expect(rec.overflowed).toBe(true);
    expect(rec.finish({})).toBeUndefined();
  });
});
