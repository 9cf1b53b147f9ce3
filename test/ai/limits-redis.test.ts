// RedisRateLimiter against a real Redis at 127.0.0.1:6379: the atomic script, settle and
// cancel, EVALSHA -> EVAL fallback, store failures, and one limit shared by three
// processes (and by three connections in this one) staying within rpm + burst.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RATE_LIMIT_LUA, RATE_LIMIT_LUA_SHA1, RedisRateLimiter } from '../../lib/ai/limits/redis-rate-limiter.js';
import { expectCode, expectRejectCode } from '../helpers.js';
import { requireRedis } from './services.js';

const prefix = `myelin-test:rl:${randomUUID()}:`;
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

const bucket = async (key: string) => {
  const [r, t] = await redis.hmget(prefix + key, 'r', 't');
  return { requests: Number(r), tokens: Number(t) };
};

describe('RedisRateLimiter', () => {
  it('admits the burst, then names a wait; keys carry the prefix and a TTL', async () => {
    const rl = new RedisRateLimiter({ redis, key: 'burst', prefix, rpm: 5, tpm: 1_000, pollJitterMs: 0 });
    for (let i = 0; i < 5; i++) await rl.reserve({ tokens: 10 });
    expect(rl.redisKey).toBe(`${prefix}burst`);
    const b = await bucket('burst');
    expect(b.requests).toBeLessThan(1);
    expect(b.tokens).toBeGreaterThan(940);
    const ttl = await redis.pttl(rl.redisKey);
    expect(ttl).toBeGreaterThan(1_000);
    expect(ttl).toBeLessThanOrEqual(61_000);
    // The 6th must wait ~12 s for a refill: with a 300 ms deadline it is refused now.
    await expectRejectCode(rl.reserve({ deadline: Date.now() + 300 }), 'ERR_AI_RATE_LIMITED');
    expect(rl.pending).toBe(0);
  });

  it('settle and cancel give back through the same script', async () => {
    const rl = new RedisRateLimiter({ redis, key: 'settle', prefix, rpm: 10, tpm: 1_000 });
    const a = await rl.reserve({ tokens: 600 });
    const b = await rl.reserve({ tokens: 300 });
    expect((await bucket('settle')).tokens).toBeLessThan(101);
    await a.settle(100); // 500 back
    expect((await bucket('settle')).tokens).toBeGreaterThan(599);
    await b.cancel(); // 300 and the request back
    const after = await bucket('settle');
    expect(after.tokens).toBeGreaterThan(899);
    expect(after.requests).toBeGreaterThan(8.99);
    await b.cancel();
    expect((await bucket('settle')).requests).toBeLessThan(10);
  });

  it('waits by polling and is admitted once the bucket refills', async () => {
    const rl = new RedisRateLimiter({ redis, key: 'poll', prefix, rpm: 600, pollJitterMs: 5 }); // one per 100 ms
    for (let i = 0; i < 600; i++) await rl.reserve();
    const order: number[] = [];
    await Promise.all([0, 1, 2].map((i) => rl.reserve().then(() => order.push(i))));
    expect(order).toEqual([0, 1, 2]);
  });

  it('falls back to EVAL when the server does not know the script (NOSCRIPT)', async () => {
    let evalshaCalls = 0;
    let evalCalls = 0;
    const fake = {
      evalsha: async () => {
        evalshaCalls++;
        throw new Error('NOSCRIPT No matching script. Please use EVAL.');
      },
      eval: (...args: Parameters<Redis['eval']>) => {
        evalCalls++;
        return redis.eval(...args);
      },
    } as unknown as Redis;
    const rl = new RedisRateLimiter({ redis: fake, key: 'noscript', prefix, rpm: 10 });
    await rl.reserve();
    expect([evalshaCalls, evalCalls]).toEqual([1, 1]);
    expect((await bucket('noscript')).requests).toBeCloseTo(9, 1);
    expect(RATE_LIMIT_LUA_SHA1).toBe(await redis.script('LOAD', RATE_LIMIT_LUA));
  });

  it('store failure: open admits, closed rejects with ERR_AI_RATE_LIMITED (cause attached)', async () => {
    const broken = {
      evalsha: async () => {
        throw new Error('connection lost');
      },
      eval: async () => {
        throw new Error('connection lost');
      },
    } as unknown as Redis;
    const errors: unknown[] = [];
    const open = new RedisRateLimiter({ redis: broken, key: 'x', prefix, rpm: 1, onError: (e) => errors.push(e) });
    const r = await open.reserve({ tokens: 5 });
    await r.settle(1); // swallowed, reported
    expect(errors).toHaveLength(2);
    const closed = new RedisRateLimiter({ redis: broken, key: 'x', prefix, rpm: 1, onStoreError: 'closed' });
    const err = await expectRejectCode(closed.reserve(), 'ERR_AI_RATE_LIMITED');
    expect((err.cause as Error).message).toBe('connection lost');
  });

  it('rejects bad options', () => {
    expectCode(() => new RedisRateLimiter({ redis, key: '', rpm: 1 }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new RedisRateLimiter({ redis, key: 'k' }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new RedisRateLimiter({ redis, key: 'k', tpm: -1 }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new RedisRateLimiter({ redis: {} as Redis, key: 'k', rpm: 1 }), 'ERR_INVALID_ARGUMENT');
  });
});

describe('one limit shared across replicas (AI-WIRE failure case 5)', () => {
  const RPM = 60;
  const RUN_MS = 2_000;
  // Burst (the whole minute's amount) plus what refills during the run.
  const MAX = RPM + Math.ceil((RPM * RUN_MS) / 60_000);

  it('three connections in this process: the combined admitted count stays within rpm + burst', async () => {
    const conns = [0, 1, 2].map(() => new Redis({ host: '127.0.0.1', port: 6379 }));
    try {
      const limiters = conns.map((c) => new RedisRateLimiter({ redis: c, key: 'shared-in-proc', prefix, rpm: RPM }));
      const end = Date.now() + RUN_MS;
      let admitted = 0;
      await Promise.all(
        limiters.flatMap((rl) =>
          Array.from({ length: 4 }, async () => {
            while (true) {
              const left = end - Date.now();
              if (left <= 0) return;
              try {
                await rl.reserve({ deadline: Date.now() + left });
                if (Date.now() <= end) admitted++;
              } catch (err) {
                if ((err as { code?: string }).code !== 'ERR_AI_RATE_LIMITED') throw err;
                return;
              }
            }
          }),
        ),
      );
      expect(admitted).toBeGreaterThanOrEqual(RPM);
      expect(admitted).toBeLessThanOrEqual(MAX);
    } finally {
      conns.forEach((c) => c.disconnect());
    }
  });

  it('three processes running the real RedisRateLimiter: the combined admitted count stays within rpm + burst', async () => {
    const fixtures = join(import.meta.dirname, '..', 'fixtures');
    const replicas = [0, 1, 2].map(() => {
      const child = spawn(process.execPath, ['--import', join(fixtures, 'ts-register.mjs'), join(fixtures, 'redis-limiter-proc.mjs'), prefix, 'shared-procs', String(RPM)], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d));
      let ready!: () => void;
      const isReady = new Promise<void>((r) => (ready = r));
      child.stdout.on('data', (d: Buffer) => {
        out += d;
        if (out.startsWith('ready\n')) ready();
      });
      const result = new Promise<{ admitted: number; storeCalls: number }>((resolve, reject) => {
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.slice('ready\n'.length))) : reject(new Error(`replica exited ${code}: ${err}`))));
      });
      return { child, isReady: Promise.race([isReady, result.then(() => undefined)]), result };
    });
    // Every replica has loaded and connected: start them together.
    await Promise.all(replicas.map((r) => r.isReady));
    const startAt = Date.now() + 100;
    for (const r of replicas) r.child.stdin.end(`${startAt} ${startAt + RUN_MS}\n`);
    const runs = replicas.map((r) => r.result);
    const results = await Promise.all(runs);
    const admitted = results.reduce((s, r) => s + r.admitted, 0);
    // Every replica kept asking the store: the limit, not the load, decided the count.
    for (const r of results) {
      expect(r.admitted).toBeGreaterThan(0);
      expect(r.storeCalls).toBeGreaterThan(10);
    }
    expect(admitted).toBeGreaterThanOrEqual(RPM);
    expect(admitted).toBeLessThanOrEqual(MAX);
  });
});
