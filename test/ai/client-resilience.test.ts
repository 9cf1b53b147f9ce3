// The AIClient's resilience wiring over real HTTP against the simulator: circuit
// breakers per target (fail fast, skip to a healthy target, one half-open probe), rate
// limits (local and shared through Redis, priority order, deadline) and hedging across
// two simulators. The simulator's request count proves what reached the upstream.
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { AIClient, type StreamPart } from '../../lib/ai/client/index.js';
import { MyelinError } from '../../lib/errors.js';
import { UpstreamSimulator } from '../../lib/ai/simulator/index.js';
import { KEY, TARGETS, client, drain, hello, providers, rejection, until } from './client-fixtures.js';
import { requireRedis } from './services.js';

let sim: UpstreamSimulator;
let url: string;
const open: AIClient[] = [];
const prefix = `myelin-test:${randomUUID()}:`;

let redisUp = false;

beforeAll(async () => {
  await requireRedis();
  redisUp = true;
  sim = new UpstreamSimulator({ apiKey: KEY, tokens: 12 });
  url = (await sim.listen(0)).url;
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await sim?.close();
  if (!redisUp) return;
  const redis = new Redis({ host: '127.0.0.1', port: 6379 });
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

function make(opts: Parameters<typeof client>[1] = {}): AIClient {
  const c = client(url, opts);
  open.push(c);
  return c;
}

const requests = () => sim.stats().requests;

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function drainOrThrow(it: AsyncIterable<StreamPart>): Promise<void> {
  for await (const _ of it);
}
const fault500 = { headers: { 'x-sim-fault': '500' } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('circuit breaker per target', () => {
  const breaker = { minRequests: 2, failureRate: 0.5, windowMs: 60_000 };

  test('opens after 5xx; the next call fails fast with ERR_AI_CIRCUIT_OPEN without reaching the upstream', async () => {
    const ai = make({ breaker: { ...breaker, openMs: 60_000 }, retry: { attempts: 1 } });
    for (let i = 0; i < 2; i++) expect((await rejection(ai.chat(hello(TARGETS.openai, fault500)))).status).toBe(500);
    expect(ai.stats().targets[TARGETS.openai].breaker).toBe('open');
    const before = requests();
    const err = await rejection(ai.chat(hello(TARGETS.openai)));
    expect(err.code).toBe('ERR_AI_CIRCUIT_OPEN');
    expect(err.attempts).toBe(0);
    expect(requests()).toBe(before);
    // Streams are guarded the same way.
    const s = await drain(ai.stream(hello(TARGETS.openai)));
    expect(s.error?.code).toBe('ERR_AI_CIRCUIT_OPEN');
    expect(requests()).toBe(before);
    // Another target has its own breaker.
    expect((await ai.chat(hello(TARGETS.claude))).text).not.toBe('');
    expect(ai.stats().targets[TARGETS.claude].breaker).toBe('closed');
  });

  test('a target whose breaker is open is skipped: fallback goes straight to the healthy one', async () => {
    const ai = new AIClient({
      providers: providers(url, { openai: { 'x-sim-fault': '500' } }),
      models: { fb: { targets: [TARGETS.openai, TARGETS.claude] } },
      breaker: { ...breaker, openMs: 60_000 },
      retry: { attempts: 1, minDelayMs: 1, maxDelayMs: 5 },
    });
    open.push(ai);
    for (let i = 0; i < 2; i++) {
      const r = await ai.chat(hello('fb'));
      expect(r.target).toBe(TARGETS.claude);
      expect(r.attempts).toBe(2);
    }
    const before = requests();
    const r = await ai.chat(hello('fb'));
    expect(r.target).toBe(TARGETS.claude);
    expect(r.attempts).toBe(1);
    expect(requests()).toBe(before + 1);
    const st = ai.stats().targets;
    expect(st[TARGETS.openai].breaker).toBe('open');
    // Open targets go last, so the healthy one answered before the open one was reached.
    expect(st[TARGETS.openai].requests).toBe(2);
    expect(st[TARGETS.claude].breaker).toBe('closed');
  });

  test('every target open: ERR_AI_CIRCUIT_OPEN', async () => {
    const ai = new AIClient({
      providers: providers(url, { openai: { 'x-sim-fault': '500' }, claude: { 'x-sim-fault': '529' } }),
      models: { fb: { targets: [TARGETS.openai, TARGETS.claude] } },
      breaker: { ...breaker, openMs: 60_000 },
      retry: { attempts: 1, minDelayMs: 1, maxDelayMs: 5 },
    });
    open.push(ai);
    for (let i = 0; i < 2; i++) expect((await rejection(ai.chat(hello('fb')))).code).toBe('ERR_AI_UPSTREAM');
    const before = requests();
    const err = await rejection(ai.chat(hello('fb')));
    expect(err.code).toBe('ERR_AI_CIRCUIT_OPEN');
    expect(requests()).toBe(before);
  });

  test('after openMs exactly one probe goes through; its success closes the breaker', async () => {
    const ai = make({ breaker: { ...breaker, openMs: 200 }, retry: { attempts: 1 } });
    for (let i = 0; i < 2; i++) await rejection(ai.chat(hello(TARGETS.openai, fault500)));
    expect(ai.stats().targets[TARGETS.openai].breaker).toBe('open');
    await until(() => ai.stats().targets[TARGETS.openai].breaker === 'half-open', 'openMs to pass');
    const before = requests();
    const out = await Promise.allSettled([0, 1, 2].map(() => ai.chat(hello(TARGETS.openai))));
    expect(out.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const refused = out.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(refused.map((o) => o.reason.code)).toEqual(['ERR_AI_CIRCUIT_OPEN', 'ERR_AI_CIRCUIT_OPEN']);
    expect(requests()).toBe(before + 1);
    expect(ai.stats().targets[TARGETS.openai].breaker).toBe('closed');
  });

  test('a failed probe opens it again', async () => {
    const ai = make({ breaker: { ...breaker, openMs: 200 }, retry: { attempts: 1 } });
    for (let i = 0; i < 2; i++) await rejection(ai.chat(hello(TARGETS.openai, fault500)));
    await until(() => ai.stats().targets[TARGETS.openai].breaker === 'half-open', 'openMs to pass');
    expect((await rejection(ai.chat(hello(TARGETS.openai, fault500)))).status).toBe(500);
    expect(ai.stats().targets[TARGETS.openai].breaker).toBe('open');
  });

  test('4xx, 429 and quota do not count', async () => {
    const ai = make({ breaker: { ...breaker, openMs: 60_000 }, retry: { attempts: 1 } });
    for (const f of ['401', '429', 'quota', '401']) await rejection(ai.chat(hello(TARGETS.openai, { headers: { 'x-sim-fault': f, 'x-sim-retry-after': 'none' } })));
    expect(ai.stats().targets[TARGETS.openai].breaker).toBe('closed');
  });

  // What the breaker counts is failure.ts countsAsBreakerFailure() over the failure
  // kind each path sets: one failure opens a breaker with minRequests 1, failureRate 1.
  const fault = (f: string, more: Record<string, string> = {}) => ({ headers: { 'x-sim-fault': f, 'x-sim-retry-after': 'none', ...more } });
  const stalled = { headers: { 'x-sim-latency-ms': '5000' } };
  test.each<{ name: string; call: (ai: AIClient, refused: string) => Promise<unknown>; extra: Parameters<typeof client>[1]; counts: boolean; failure: string | undefined }>([
    { name: '500', call: (ai) => ai.chat(hello(TARGETS.openai, fault('500'))), extra: {}, counts: true, failure: 'server' },
    { name: '502', call: (ai) => ai.chat(hello(TARGETS.openai, fault('502'))), extra: {}, counts: true, failure: 'server' },
    { name: '503', call: (ai) => ai.chat(hello(TARGETS.openai, fault('503'))), extra: {}, counts: true, failure: 'server' },
    { name: '529 overloaded (Anthropic)', call: (ai) => ai.chat(hello(TARGETS.claude, fault('529'))), extra: {}, counts: true, failure: 'server' },
    { name: 'requestMs timeout', call: (ai) => ai.chat(hello(TARGETS.openai, stalled)), extra: { timeouts: { requestMs: 100 } }, counts: true, failure: 'timeout' },
    { name: 'firstTokenMs timeout on a stream', call: (ai) => drainOrThrow(ai.stream(hello(TARGETS.openai, fault('stall')))), extra: { timeouts: { firstTokenMs: 100 } }, counts: true, failure: 'timeout' },
    { name: 'stream truncated before content', call: (ai) => drainOrThrow(ai.stream(hello(TARGETS.ollama, fault('truncate', { 'x-sim-fault-after': '0' })))), extra: {}, counts: true, failure: 'truncated' },
    { name: 'connection refused', call: (ai, refused) => ai.chat(hello(`dead/${refused}`)), extra: {}, counts: true, failure: 'connection' },
    { name: '400 (a bad request)', call: (ai) => ai.chat(hello(TARGETS.openai, { headers: { 'x-sim-tokens': 'many' } })), extra: {}, counts: false, failure: 'client' },
    { name: '401', call: (ai) => ai.chat(hello(TARGETS.openai, fault('401'))), extra: {}, counts: false, failure: 'auth' },
    { name: '429 rate limit', call: (ai) => ai.chat(hello(TARGETS.openai, fault('429'))), extra: {}, counts: false, failure: 'rate-limit' },
    { name: 'quota', call: (ai) => ai.chat(hello(TARGETS.openai, fault('quota'))), extra: {}, counts: false, failure: 'quota' },
    { name: 'billing (Anthropic 402)', call: (ai) => ai.chat(hello(TARGETS.claude, fault('billing'))), extra: {}, counts: false, failure: 'quota' },
    { name: "the caller's abort", call: (ai) => ai.chat(hello(TARGETS.openai, { ...stalled, signal: AbortSignal.timeout(100) })), extra: {}, counts: false, failure: undefined },
    { name: "the call's deadline", call: (ai) => ai.chat(hello(TARGETS.openai, stalled)), extra: { retry: { attempts: 1, deadlineMs: 100 } }, counts: false, failure: 'deadline' },
  ])('$name: the breaker counts it: $counts', async ({ call, extra, counts, failure }) => {
    const dead = await closedPort();
    const ai = new AIClient({
      providers: [...providers(url), { name: 'dead', kind: 'openai', baseURL: `http://127.0.0.1:${dead}/v1` }],
      breaker: { minRequests: 1, failureRate: 1, openMs: 60_000 },
      retry: { attempts: 1 },
      ...extra,
    });
    open.push(ai);
    const err = await call(ai, 'm').then(
      () => expect.unreachable('the call should fail'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MyelinError);
    expect((err as { failure?: string }).failure).toBe(failure);
    const states = Object.values(ai.stats().targets).map((t) => t.breaker);
    expect(states).toEqual([counts ? 'open' : 'closed']);
  });

  test('no breaker option: no breaker field in stats', async () => {
    const ai = make();
    await ai.chat(hello(TARGETS.openai));
    expect(ai.stats().targets[TARGETS.openai].breaker).toBeUndefined();
  });
});

describe('rate limits', () => {
  test('rpm 2: the third concurrent call cannot be admitted before its deadline -> ERR_AI_RATE_LIMITED, not sent', async () => {
    const ai = make({ limits: { openai: { rpm: 2 } }, retry: { attempts: 1, deadlineMs: 500 } });
    const before = requests();
    const out = await Promise.allSettled([0, 1, 2].map(() => ai.chat(hello(TARGETS.openai))));
    expect(out.filter((o) => o.status === 'fulfilled')).toHaveLength(2);
    const err = out.find((o): o is PromiseRejectedResult => o.status === 'rejected')!.reason;
    expect(err.code).toBe('ERR_AI_RATE_LIMITED');
    expect(err.attempts).toBe(0);
    expect(requests()).toBe(before + 2);
    // Limits are per provider: another provider is not limited.
    expect((await ai.chat(hello(TARGETS.claude))).text).not.toBe('');
  });

  test('a per-target limit applies to that target only; a limited target falls back', async () => {
    const ai = new AIClient({
      providers: providers(url),
      models: { fb: { targets: [TARGETS.openai, TARGETS.claude] } },
      limits: { [TARGETS.openai]: { rpm: 1 } },
      retry: { attempts: 1, deadlineMs: 500 },
    });
    open.push(ai);
    expect((await ai.chat(hello('fb'))).target).toBe(TARGETS.openai);
    const r = await ai.chat(hello('fb'));
    expect(r.target).toBe(TARGETS.claude);
    expect(r.attempts).toBe(1);
    expect((await ai.chat(hello('openai/gpt-4o'))).target).toBe('openai/gpt-4o');
  });

  test('tpm: waiters are admitted as settled usage refunds the estimate, in priority order', async () => {
    // Each call reserves its prompt + maxTokens 600 of 1000 tpm; settling with the real
    // usage (~20 tokens) gives most of it back, which admits the next waiter.
    const ai = make({ limits: { openai: { tpm: 1000 } } });
    const req = (priority: 'low' | 'high', more = {}) => ai.chat(hello(TARGETS.openai, { maxTokens: 600, priority, ...more }));
    const order: string[] = [];
    const first = req('low', { headers: { 'x-sim-latency-ms': '200' } }).then(() => order.push('first'));
    await until(() => sim.stats().active > 0, 'the first call to be upstream');
    const low = req('low').then(() => order.push('low'));
    const high = req('high').then(() => order.push('high'));
    await Promise.all([first, low, high]);
    expect(order).toEqual(['first', 'high', 'low']);
  });

  test('the wait ends with the call: ERR_ABORTED on the caller signal', async () => {
    const ai = make({ limits: { openai: { rpm: 1 } } });
    await ai.chat(hello(TARGETS.openai));
    const ac = new AbortController();
    const p = rejection(ai.chat(hello(TARGETS.openai, { signal: ac.signal })));
    await sleep(20);
    ac.abort();
    expect((await p).code).toBe('ERR_ABORTED');
  });

  test('with a Redis store, replicas share one limit', async () => {
    const opts = { limits: { openai: { rpm: 2 } }, store: { redis: 'redis://127.0.0.1:6379', prefix: `${prefix}rl1:` }, retry: { attempts: 1, deadlineMs: 500 } };
    const a = make(opts);
    const b = make(opts);
    await a.chat(hello(TARGETS.openai));
    await b.chat(hello(TARGETS.openai));
    const before = requests();
    expect((await rejection(a.chat(hello(TARGETS.openai)))).code).toBe('ERR_AI_RATE_LIMITED');
    expect((await rejection(b.chat(hello(TARGETS.openai)))).code).toBe('ERR_AI_RATE_LIMITED');
    expect(requests()).toBe(before);
  });

  test('a limit naming no configured provider is ERR_INVALID_ARGUMENT naming it', () => {
    for (const key of ['opneai', 'nobody/gpt-4o', 'openai/']) {
      let err: unknown;
      try {
        make({ limits: { openai: { rpm: 1 }, [key]: { rpm: 1 } } });
      } catch (e) {
        err = e;
      }
      expect(err, key).toBeInstanceOf(MyelinError);
      expect((err as MyelinError).code).toBe('ERR_INVALID_ARGUMENT');
      expect((err as MyelinError).message).toContain(key);
    }
  });

  test('bad priority is ERR_INVALID_ARGUMENT', async () => {
    const ai = make();
    await expect(ai.chat(hello(TARGETS.openai, { priority: 'urgent' as never }))).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});

describe('hedging', () => {
  let slow: UpstreamSimulator;
  let fast: UpstreamSimulator;
  let slowUrl: string;
  let fastUrl: string;
  beforeAll(async () => {
    slow = new UpstreamSimulator({ apiKey: KEY, tokens: 8, latencyMs: 3000 });
    fast = new UpstreamSimulator({ apiKey: KEY, tokens: 8 });
    slowUrl = (await slow.listen(0)).url;
    fastUrl = (await fast.listen(0)).url;
  });
  afterAll(async () => {
    await Promise.all([slow.close(), fast.close()]);
  });

  function hedged(hedgeAfterMs: number, first: 'slow' | 'fast' = 'slow'): AIClient {
    const order = first === 'slow' ? ['slow/gpt-4o-mini', 'fast/gpt-4o-mini'] : ['fast/gpt-4o-mini', 'slow/gpt-4o-mini'];
    const ai = new AIClient({
      providers: [
        { name: 'slow', kind: 'openai', baseURL: `${slowUrl}/v1`, apiKey: KEY },
        { name: 'fast', kind: 'openai', baseURL: `${fastUrl}/v1`, apiKey: KEY },
      ],
      models: { h: { targets: order, hedgeAfterMs } },
    });
    open.push(ai);
    return ai;
  }

  test('the first target is silent past hedgeAfterMs: the next starts, wins, and the loser is aborted', async () => {
    const ai = hedged(50);
    const s0 = slow.stats().requests;
    const f0 = fast.stats().requests;
    const r = await ai.chat(hello('h'));
    expect(r.target).toBe('fast/gpt-4o-mini');
    expect(slow.stats().requests).toBe(s0 + 1);
    expect(fast.stats().requests).toBe(f0 + 1);
    await until(() => slow.stats().active === 0, 'the losing request to be aborted');
  });

  test('a stream is hedged up to its first content', async () => {
    const ai = hedged(50);
    const { parts, error } = await drain(ai.stream(hello('h')));
    expect(error).toBeUndefined();
    const done = parts.at(-1);
    expect(done?.type === 'done' && done.response.target).toBe('fast/gpt-4o-mini');
    await until(() => slow.stats().active === 0, 'the losing stream to be aborted');
  });

  test('a first target that answers in time is the only one asked', async () => {
    const ai = hedged(2000, 'fast');
    const s0 = slow.stats().requests;
    expect((await ai.chat(hello('h'))).target).toBe('fast/gpt-4o-mini');
    expect(slow.stats().requests).toBe(s0);
  });

  test('a failure no other target can fix ends the race at once', async () => {
    const ai = hedged(2000, 'fast');
    const s0 = slow.stats().requests;
    const err = await rejection(ai.chat(hello('h', { headers: { 'x-sim-fault': '401' } })));
    expect(err.code).toBe('ERR_AI_UPSTREAM');
    expect(err.status).toBe(401);
    expect(slow.stats().requests).toBe(s0);
  });

  test('hedgeAfterMs must be a number >= 0', () => {
    expect(() => new AIClient({ providers: providers(url), models: { h: { targets: [TARGETS.openai], hedgeAfterMs: Number.NaN } } })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });
});
