// Shared rate limits when their Redis store fails, through AIClient against the
// simulator: a real redis-server started here and killed mid-test (never the shared one
// on 6379), and a port nothing listens on. 'open' (the default) lets calls through,
// 'closed' refuses them with ERR_AI_RATE_LIMITED; either way stats().limits and the
// metrics sink count it, and `myelin:ai:limits:store-error` announces each outage once.
import diagnostics from 'node:diagnostics_channel';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { AIClient } from '../../lib/ai/client/index.js';
import type { LimitStoreErrorMessage } from '../../lib/ai/client/limit-store.js';
import { UpstreamSimulator } from '../../lib/ai/simulator/index.js';
import type { MetricLabels, MetricsSink } from '../../lib/internal/metrics-sink.js';
import { KEY, TARGETS, client, hello, rejection } from './client-fixtures.js';
import { freePort, startRedis } from './services.js';

let sim: UpstreamSimulator;
let url: string;
const open: AIClient[] = [];
let messages: LimitStoreErrorMessage[];
const listen = (m: unknown) => messages.push(m as LimitStoreErrorMessage);

beforeAll(async () => {
  sim = new UpstreamSimulator({ apiKey: KEY, tokens: 8 });
  url = (await sim.listen(0)).url;
});
beforeEach(() => {
  messages = [];
  diagnostics.subscribe('myelin:ai:limits:store-error', listen);
});
afterEach(async () => {
  diagnostics.unsubscribe('myelin:ai:limits:store-error', listen);
  await Promise.all(open.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await sim.close();
});

function make(opts: Parameters<typeof client>[1]): AIClient {
  const c = client(url, { retry: { attempts: 1 }, ...opts });
  open.push(c);
  return c;
}

/** A sink that keeps what the client's counters add up to, per name and labels. */
function countingSink(): { sink: MetricsSink; count: (name: string, labels: MetricLabels) => number } {
  const totals = new Map<string, number>();
  const key = (name: string, labels: MetricLabels | undefined) => `${name} ${JSON.stringify(labels ?? {})}`;
  const sink: MetricsSink = {
    counter: (name) => ({ inc: (labels, n = 1) => totals.set(key(name, labels), (totals.get(key(name, labels)) ?? 0) + n) }),
    gauge: () => ({ set: () => undefined }),
    histogram: () => ({ observe: () => undefined }),
  };
  return { sink, count: (name, labels) => totals.get(key(name, labels)) ?? 0 };
}

describe('the limit store fails', () => {
  test("default 'open': calls go through; one announcement per outage; an outage ends at the next good store call", async () => {
    const port = await freePort();
    let redis = await startRedis(port);
    try {
      const prefix = 'myelin-test:store-dies:';
      const ai = make({ limits: { openai: { rpm: 10_000 } }, store: { redis: `redis://127.0.0.1:${port}`, prefix } });
      await ai.chat(hello(TARGETS.openai));
      expect(ai.stats().limits).toEqual({ storeErrors: 0, admittedWithoutStore: 0, refusedWithoutStore: 0, outages: 0 });

      await redis.stop();
      const before = sim.stats().requests;
      await ai.chat(hello(TARGETS.openai));
      await ai.chat(hello(TARGETS.openai));
      expect(sim.stats().requests).toBe(before + 2);
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatchObject({ limit: 'openai', outcome: 'admitted' });
      expect(messages[0].error).toBeInstanceOf(Error);
      const down = ai.stats().limits!;
      expect(down.outages).toBe(1);
      expect(down.admittedWithoutStore).toBe(2);
      expect(down.storeErrors).toBeGreaterThanOrEqual(2);

      // Back: calls until one reaches the new (empty) server and writes the bucket there.
      redis = await startRedis(port);
      const probe = new Redis({ host: '127.0.0.1', port });
      try {
        const bucket = `${prefix}rl:openai`;
        for (let i = 0; (await probe.exists(bucket)) === 0; i++) {
          expect(i, 'the client to reach the restarted Redis').toBeLessThan(200);
          await ai.chat(hello(TARGETS.openai));
        }
      } finally {
        probe.disconnect();
      }
      expect(messages).toHaveLength(1);

      await redis.stop();
      await ai.chat(hello(TARGETS.openai));
      expect(messages).toHaveLength(2);
      expect(ai.stats().limits!.outages).toBe(2);
    } finally {
      await redis.stop();
    }
  });

  test("'closed': ERR_AI_RATE_LIMITED with the store error as cause, nothing sent; counted in stats and the sink", async () => {
    const port = await freePort();
    const { sink, count } = countingSink();
    const ai = make({ limits: { openai: { rpm: 10_000, onStoreError: 'closed' } }, store: { redis: `redis://127.0.0.1:${port}` }, metrics: sink });
    const before = sim.stats().requests;
    for (let i = 0; i < 2; i++) {
      const err = await rejection(ai.chat(hello(TARGETS.openai)));
      expect(err.code).toBe('ERR_AI_RATE_LIMITED');
      expect(err.attempts).toBe(0);
      expect(err.cause).toBeInstanceOf(Error);
    }
    expect(sim.stats().requests).toBe(before);
    expect(ai.stats().limits).toMatchObject({ storeErrors: 2, admittedWithoutStore: 0, refusedWithoutStore: 2, outages: 1 });
    expect(count('ai_limit_store_errors_total', { limit: 'openai', outcome: 'refused' })).toBe(2);
    expect(messages).toEqual([expect.objectContaining({ limit: 'openai', outcome: 'refused' })]);
  });

  test("'closed' on one target's limit falls back to a target without it", async () => {
    const port = await freePort();
    const ai = make({
      models: { fb: { targets: [TARGETS.openai, TARGETS.claude] } },
      limits: { openai: { rpm: 10_000, onStoreError: 'closed' } },
      store: { redis: `redis://127.0.0.1:${port}` },
    });
    const r = await ai.chat(hello('fb'));
    expect(r.target).toBe(TARGETS.claude);
    expect(ai.stats().limits!.refusedWithoutStore).toBe(1);
  });

  test('stats().limits is there only with shared limits', async () => {
    expect(make({ limits: { openai: { rpm: 10 } } }).stats().limits).toBeUndefined();
    expect(make({ store: { redis: 'redis://127.0.0.1:1' } }).stats().limits).toBeUndefined();
  });

  test('onStoreError other than open or closed is ERR_INVALID_ARGUMENT', () => {
    expect(() => make({ limits: { openai: { rpm: 1, onStoreError: 'ignore' as never } } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });
});
