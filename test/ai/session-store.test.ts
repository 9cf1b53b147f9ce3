// SessionStore: in memory (snapshot, TTL, bound) and in Redis (ai:session:<id>, JSON, TTL).
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { MemorySessionStore, RedisSessionStore, type SessionData } from '../../lib/ai/session/index.js';
import { expectCode, expectRejectCode } from '../helpers.js';
import { requireRedis } from './services.js';

const data = (): SessionData => ({
  model: 'fast',
  system: 'Be brief.',
  messages: [
    { role: 'user', content: 'hi' },
    { role: 'assistant', content: null, toolCalls: [{ id: 'c1', name: 'f', arguments: '{}' }] },
    { role: 'tool', toolCallId: 'c1', content: '42' },
  ],
});

afterEach(() => {
  vi.useRealTimers();
});

describe('MemorySessionStore', () => {
  it('stores a snapshot and returns the same objects on every get', async () => {
    const s = new MemorySessionStore();
    const d = data();
    await s.set('u1', d);
    d.messages.push({ role: 'user', content: 'later' });
    const a = await s.get('u1');
    expect(a!.messages).toHaveLength(3);
    expect(typeof a!.updatedAt).toBe('number');
    expect((await s.get('u1'))!.messages[0]).toBe(a!.messages[0]);
    await s.delete('u1');
    expect(await s.get('u1')).toBeUndefined();
  });

  it('expires sessions after ttlMs and stays within maxSessions', async () => {
    vi.useFakeTimers({ now: 0 });
    const s = new MemorySessionStore({ ttlMs: 1_000, maxSessions: 2 });
    await s.set('a', data());
    vi.advanceTimersByTime(999);
    expect(await s.get('a')).toBeDefined();
    vi.advanceTimersByTime(1);
    expect(await s.get('a')).toBeUndefined();
    await s.set('b', data());
    await s.set('c', data());
    await s.set('d', data());
    expect(s.size).toBe(2);
    expect(await s.get('b')).toBeUndefined();
  });

  it('rejects bad ids and data', async () => {
    const s = new MemorySessionStore();
    await expectRejectCode(s.get(''), 'ERR_INVALID_ARGUMENT');
    await expectRejectCode(s.set('x', { messages: 'no' } as unknown as SessionData), 'ERR_INVALID_ARGUMENT');
  });
});

describe('RedisSessionStore', () => {
  const ids: string[] = [];
  let redis: Redis;
  beforeAll(async () => {
    await requireRedis();
    redis = new Redis({ host: '127.0.0.1', port: 6379 });
  });
  afterAll(async () => {
    if (!redis) return;
    if (ids.length > 0) await redis.del(...ids.map((id) => `ai:session:${id}`));
    redis.disconnect();
  });
  const newId = () => {
    const id = `myelin-test-${randomUUID()}`;
    ids.push(id);
    return id;
  };

  it('writes ai:session:<id> as JSON with a TTL', async () => {
    const s = new RedisSessionStore({ redis, ttlMs: 60_000, now: () => 1234 });
    const id = newId();
    await s.set(id, data());
    const raw = await redis.get(`ai:session:${id}`);
    expect(JSON.parse(raw!)).toEqual({ ...data(), updatedAt: 1234 });
    const ttl = await redis.pttl(`ai:session:${id}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(await s.get(id)).toEqual({ ...data(), updatedAt: 1234 });
  });

  it('a write refreshes the TTL; delete removes; unreadable values are misses', async () => {
    const s = new RedisSessionStore({ redis, ttlMs: 1_000 });
    const id = newId();
    await s.set(id, data());
    await new RedisSessionStore({ redis, ttlMs: 90_000 }).set(id, data());
    expect(await redis.pttl(`ai:session:${id}`)).toBeGreaterThan(1_000);
    await s.delete(id);
    expect(await s.get(id)).toBeUndefined();
    const bad = newId();
    await redis.set(`ai:session:${bad}`, 'nope', 'PX', 5_000);
    expect(await s.get(bad)).toBeUndefined();
  });

  it('rejects bad options', () => {
    expectCode(() => new RedisSessionStore({ redis: {} as Redis }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new RedisSessionStore({ redis, ttlMs: -1 }), 'ERR_INVALID_ARGUMENT');
  });
});
