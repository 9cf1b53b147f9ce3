// The AIClient's exact cache (memory and Redis), single flight, stream replay, and
// sessions (history, trimming, Redis persistence across clients, target affinity), over
// real HTTP against the simulator, whose request count proves what reached the upstream.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { AIClient, type StreamPart } from '../../lib/ai/client/index.js';
import { UpstreamSimulator } from '../../lib/ai/simulator/index.js';
import { KEY, TARGETS, client, drain, hello, providers, rejection } from './client-fixtures.js';
import { requireRedis } from './services.js';

let sim: UpstreamSimulator;
let url: string;
const open: AIClient[] = [];
const prefix = `myelin-test:${randomUUID()}:`;
const store = { redis: 'redis://127.0.0.1:6379', prefix };

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
const cold = (more = {}) => hello(TARGETS.openai, { temperature: 0, messages: [{ role: 'user', content: `q ${randomUUID()}` }], ...more });
const text = (parts: StreamPart[]) => parts.map((p) => (p.type === 'text' ? p.text : '')).join('');

describe('exact cache', () => {
  test('the same request twice: one upstream call, the second is cached', async () => {
    const ai = make({ cache: { ttlMs: 60_000 } });
    const req = cold();
    const before = requests();
    const a = await ai.chat(req);
    const b = await ai.chat(req);
    expect(requests()).toBe(before + 1);
    expect(a.cached).toBe(false);
    expect(b.cached).toBe(true);
    expect(b.text).toBe(a.text);
    expect(b.usage).toEqual(a.usage);
    expect(b.attempts).toBe(0);
    expect(ai.stats().cache).toMatchObject({ hits: 1, misses: 1 });
  });

  test('5 concurrent identical requests share one upstream call', async () => {
    const ai = make({ cache: {} });
    const req = cold({ headers: { 'x-sim-latency-ms': '50' } });
    const before = requests();
    const out = await Promise.all([0, 1, 2, 3, 4].map(() => ai.chat(req)));
    expect(requests()).toBe(before + 1);
    expect(new Set(out.map((r) => r.text)).size).toBe(1);
    expect(ai.stats().cache?.shared).toBe(4);
  });

  test('a sampled request (temperature 0.7) is not cached unless cache: true', async () => {
    const ai = make({ cache: {} });
    const req = cold({ temperature: 0.7 });
    let before = requests();
    await ai.chat(req);
    expect((await ai.chat(req)).cached).toBe(false);
    expect(requests()).toBe(before + 2);
    before = requests();
    const forced = { ...req, cache: true };
    await ai.chat(forced);
    expect((await ai.chat(forced)).cached).toBe(true);
    expect(requests()).toBe(before + 1);
  });

  test('cache: false skips it; an omitted temperature is the provider default (1 on OpenAI): not cached', async () => {
    const ai = make({ cache: {} });
    const before = requests();
    const req = cold({ cache: false });
    await ai.chat(req);
    await ai.chat(req);
    const { temperature: _t, ...sampled } = cold();
    await ai.chat(sampled);
    await ai.chat(sampled);
    expect(requests()).toBe(before + 4);
  });

  test('the user is a partition; an output-changing parameter is a different entry', async () => {
    const ai = make({ cache: {} });
    const req = cold();
    const before = requests();
    await ai.chat({ ...req, user: 'a' });
    await ai.chat({ ...req, user: 'b' });
    await ai.chat({ ...req, user: 'a', maxTokens: 5 });
    expect((await ai.chat({ ...req, user: 'a' })).cached).toBe(true);
    expect(requests()).toBe(before + 3);
  });

  test('a failure is not cached', async () => {
    const ai = make({ cache: {}, retry: { attempts: 1 } });
    const req = cold();
    sim.failNext(1, '500');
    expect((await rejection(ai.chat(req))).status).toBe(500);
    const before = requests();
    expect((await ai.chat(req)).cached).toBe(false);
    expect(requests()).toBe(before + 1);
  });

  test('a stream is recorded and replays as a stream ending with a cached done', async () => {
    const ai = make({ cache: {} });
    const req = cold();
    const before = requests();
    const first = await drain(ai.stream(req));
    const again = await drain(ai.stream(req));
    expect(requests()).toBe(before + 1);
    expect(again.error).toBeUndefined();
    expect(text(again.parts)).toBe(text(first.parts));
    expect(text(again.parts)).not.toBe('');
    const done = again.parts.at(-1);
    expect(done?.type).toBe('done');
    if (done?.type === 'done') {
      expect(done.response.cached).toBe(true);
      expect(done.response.text).toBe(text(first.parts));
    }
    // The same entry answers a chat, and a chat entry replays as a stream.
    expect((await ai.chat(req)).cached).toBe(true);
    const req2 = cold();
    const c = await ai.chat(req2);
    const s = await drain(ai.stream(req2));
    expect(text(s.parts)).toBe(c.text);
    expect(requests()).toBe(before + 2);
  });

  test('with a Redis store, another client instance hits the entry', async () => {
    const a = make({ cache: {}, store });
    const b = make({ cache: {}, store });
    const req = cold();
    const before = requests();
    const x = await a.chat(req);
    const y = await b.chat(req);
    expect(y.cached).toBe(true);
    expect(y.text).toBe(x.text);
    expect(requests()).toBe(before + 1);
  });

  test('bad per-request cache is ERR_INVALID_ARGUMENT', async () => {
    const ai = make({ cache: {} });
    await expect(ai.chat(cold({ cache: { ttlMs: -1 } }))).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(ai.chat(cold({ cache: 'yes' as never }))).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  test('without a client cache nothing is cached, even with cache: true', async () => {
    const ai = make();
    const req = cold({ cache: true });
    const before = requests();
    await ai.chat(req);
    expect((await ai.chat(req)).cached).toBe(false);
    expect(requests()).toBe(before + 2);
    expect(ai.stats().cache).toBeUndefined();
  });
});

describe('sessions', () => {
  test('history grows by the user turn and the reply; the system prompt comes first', async () => {
    const ai = make();
    const s = ai.session(`s-${randomUUID()}`, { model: TARGETS.openai, system: 'be brief' });
    const r1 = await s.send('hello');
    await s.send({ role: 'user', content: 'and again' }, { maxTokens: 8 });
    const h = s.history;
    expect(h.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant']);
    expect(h[0].content).toBe('be brief');
    expect(h[2].content).toBe(r1.text);
  });

  test('trimming drops the oldest turns and keeps the system prompt', async () => {
    const ai = make();
    const s = ai.session(`s-${randomUUID()}`, { model: TARGETS.openai, system: 'system prompt', maxContextTokens: 120 });
    const long = (i: number) => `turn ${i}: ${'lorem ipsum dolor sit amet '.repeat(6)}`;
    for (let i = 1; i <= 5; i++) await s.send(long(i));
    const h = s.history;
    expect(h[0]).toEqual({ role: 'system', content: 'system prompt' });
    expect(h.some((m) => typeof m.content === 'string' && m.content.startsWith('turn 1:'))).toBe(false);
    expect(h.at(-2)?.content).toBe(long(5));
    expect(h.length).toBeLessThan(11);
  });

  test('one session id, one memory: a second object with the same id continues it', async () => {
    const ai = make();
    const id = `s-${randomUUID()}`;
    await ai.session(id, { model: TARGETS.openai }).send('one');
    const s2 = ai.session(id, { model: TARGETS.openai });
    await s2.send('two');
    expect(s2.history.map((m) => m.content).filter((c) => c === 'one' || c === 'two')).toEqual(['one', 'two']);
  });

  test('a Redis-backed session survives a new AIClient instance', async () => {
    const id = `s-${randomUUID()}`;
    const a = make({ store });
    await a.session(id, { model: TARGETS.claude, system: 'sys' }).send('remember me');
    await a.close();
    const b = make({ store, sessionTtlMs: 60_000 });
    const s = b.session(id, { model: TARGETS.claude, system: 'sys' });
    expect((await s.load()).map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
    await s.send('still there?');
    expect(s.history.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant']);
    expect(s.history[1].content).toBe('remember me');
  });

  test('a session keeps its target while it is healthy (weighted alias)', async () => {
    const ai = new AIClient({
      providers: providers(url),
      models: { w: { strategy: 'weighted', targets: [TARGETS.openai, TARGETS.claude, TARGETS.ollama] } },
    });
    open.push(ai);
    const s = ai.session(`s-${randomUUID()}`, { model: 'w' });
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await s.send(`m${i}`)).target);
    expect(seen.size).toBe(1);
  });

  test('bad arguments are ERR_INVALID_ARGUMENT', async () => {
    const ai = make();
    expect(() => ai.session('', { model: TARGETS.openai })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(() => ai.session('x', { model: TARGETS.openai, maxContextTokens: -1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(() => ai.session('x', {} as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    await expect(ai.session('x', { model: TARGETS.openai }).send('hi', { model: 'other' } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    const kept = ai.session('y', { model: TARGETS.openai });
    await ai.close();
    expect(() => ai.session('x', { model: TARGETS.openai })).toThrow(expect.objectContaining({ code: 'ERR_AI_CLOSED' }));
    await expect(kept.send('hi')).rejects.toMatchObject({ code: 'ERR_AI_CLOSED' });
  });
});
