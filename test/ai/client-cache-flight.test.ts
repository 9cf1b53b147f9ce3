// Single flight for streams (identical concurrent cacheable streams read one upstream
// stream, late joiners replay what arrived and follow live) and the cache in front of
// embed(), over real HTTP against the simulator, whose request count proves what
// reached the upstream.
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { AIClient, StreamPart } from '../../lib/ai/client/index.js';
import { UpstreamSimulator } from '../../lib/ai/simulator/index.js';
import { KEY, TARGETS, client, drain, hello, until } from './client-fixtures.js';

let sim: UpstreamSimulator;
let url: string;
const open: AIClient[] = [];

beforeAll(async () => {
  sim = new UpstreamSimulator({ apiKey: KEY, tokens: 12 });
  url = (await sim.listen(0)).url;
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await sim.close();
});

function make(opts: Parameters<typeof client>[1] = {}): AIClient {
  const c = client(url, opts);
  open.push(c);
  return c;
}

const requests = () => sim.stats().requests;
/** A cacheable request, paced so that concurrent readers overlap (12 tokens at 100/s). */
const paced = (more = {}) =>
  hello(TARGETS.openai, { temperature: 0, messages: [{ role: 'user', content: `q ${randomUUID()}` }], headers: { 'x-sim-tokens-per-s': '100' }, ...more });
const text = (parts: StreamPart[]) => parts.map((p) => (p.type === 'text' ? p.text : '')).join('');

describe('single flight for streams', () => {
  test('3 concurrent identical cacheable streams: one upstream request, the same text', async () => {
    const ai = make({ cache: {} });
    const req = paced();
    const before = requests();
    const out = await Promise.all([0, 1, 2].map(() => drain(ai.stream(req))));
    expect(requests()).toBe(before + 1);
    for (const o of out) {
      expect(o.error).toBeUndefined();
      expect(o.parts.at(-1)?.type).toBe('done');
    }
    expect(text(out[0].parts).length).toBeGreaterThan(0);
    expect(new Set(out.map((o) => text(o.parts))).size).toBe(1);
    expect(ai.stats().cache?.shared).toBe(2);
    // The one upstream answer was stored: a fourth call is a hit.
    const again = await drain(ai.stream(req));
    expect(requests()).toBe(before + 1);
    const done = again.parts.at(-1);
    expect(done?.type === 'done' && done.response.cached).toBe(true);
  });

  test('a late joiner replays what has arrived, then follows live', async () => {
    const ai = make({ cache: {} });
    const req = paced();
    const before = requests();
    const leader = ai.stream(req)[Symbol.asyncIterator]();
    const first = await leader.next();
    expect(first.value?.type).toBe('text');
    const late = drain(ai.stream(req));
    const rest: StreamPart[] = [first.value as StreamPart];
    for (let r = await leader.next(); !r.done; r = await leader.next()) rest.push(r.value);
    const joined = await late;
    expect(requests()).toBe(before + 1);
    expect(joined.error).toBeUndefined();
    expect(text(joined.parts)).toBe(text(rest));
    expect(text(joined.parts).length).toBeGreaterThan(0);
  });

  test('the first reader leaving does not stop the others', async () => {
    const ai = make({ cache: {} });
    const req = paced();
    const before = requests();
    const first = ai.stream(req)[Symbol.asyncIterator]();
    expect((await first.next()).value?.type).toBe('text');
    const follower = drain(ai.stream(req));
    await until(() => ai.stats().cache?.shared === 1, 'the second reader to join');
    await first.return?.();
    const f = await follower;
    expect(f.error).toBeUndefined();
    expect(f.parts.at(-1)?.type).toBe('done');
    expect(requests()).toBe(before + 1);
    // Compare with the answer on its own (the simulator's content is deterministic).
    const alone = await drain(ai.stream({ ...req, cache: false }));
    expect(text(f.parts)).toBe(text(alone.parts));
  });

  test('a reader\'s own signal ends only that reader (ERR_ABORTED)', async () => {
    const ai = make({ cache: {} });
    const req = paced();
    const before = requests();
    const ac = new AbortController();
    const aborted = drain(ai.stream({ ...req, signal: ac.signal }));
    const other = drain(ai.stream(req));
    await until(() => requests() > before, 'the upstream request');
    ac.abort();
    const [a, o] = await Promise.all([aborted, other]);
    expect(a.error?.code).toBe('ERR_ABORTED');
    expect(o.error).toBeUndefined();
    expect(o.parts.at(-1)?.type).toBe('done');
    expect(requests()).toBe(before + 1);
  });

  test('when every reader leaves, the upstream stream is stopped and nothing is cached', async () => {
    const ai = make({ cache: {} });
    const req = paced({ headers: { 'x-sim-tokens-per-s': '20' } });
    for await (const p of ai.stream(req)) if (p.type === 'text') break;
    await until(() => ai.stats().pools[url]?.running === 0, 'the aborted request to end');
    const before = requests();
    const again = await drain(ai.stream(req));
    expect(again.error).toBeUndefined();
    expect(requests()).toBe(before + 1);
  });

  test('a failure reaches every reader and is not remembered', async () => {
    const ai = make({ cache: {}, retry: { attempts: 1 } });
    const req = paced({ headers: { 'x-sim-fault': '500', 'x-sim-latency-ms': '30' } });
    const out = await Promise.all([0, 1].map(() => drain(ai.stream(req))));
    expect(out.map((o) => o.error?.code)).toEqual(['ERR_AI_UPSTREAM', 'ERR_AI_UPSTREAM']);
    const before = requests();
    expect((await drain(ai.stream(req))).error?.code).toBe('ERR_AI_UPSTREAM');
    expect(requests()).toBe(before + 1);
  });
});

describe('embeddings cache', () => {
  const model = 'openai/text-embedding-3-small';
  const input = () => [`a ${randomUUID()}`, 'b'];

  test('the same embed twice: one upstream call, the second is cached with equal vectors', async () => {
    const ai = make({ cache: {} });
    const req = { model, input: input() };
    const before = requests();
    const a = await ai.embed(req);
    const b = await ai.embed(req);
    expect(requests()).toBe(before + 1);
    expect(a.cached).toBe(false);
    expect(b.cached).toBe(true);
    expect(b.attempts).toBe(0);
    expect(b.vectors).toEqual(a.vectors);
    expect(b.usage).toEqual(a.usage);
    // A caller changing its vectors does not change the entry.
    b.vectors[0][0] = 42;
    expect((await ai.embed(req)).vectors).toEqual(a.vectors);
  });

  test('dimensions, model and input are in the key; a string equals a one-element array', async () => {
    const ai = make({ cache: {} });
    const one = `x ${randomUUID()}`;
    const before = requests();
    await ai.embed({ model, input: one });
    expect((await ai.embed({ model, input: [one] })).cached).toBe(true);
    expect((await ai.embed({ model, input: [one], dimensions: 8 })).cached).toBe(false);
    expect((await ai.embed({ model, input: [one], dimensions: 8 })).cached).toBe(true);
    expect((await ai.embed({ model: TARGETS.ollama, input: [one] })).cached).toBe(false);
    expect((await ai.embed({ model, input: [one, one] })).cached).toBe(false);
    expect(requests()).toBe(before + 4);
  });

  test('cache: false skips it; without a client cache nothing is cached', async () => {
    const withCache = make({ cache: {} });
    const req = { model, input: input() };
    await withCache.embed(req);
    expect((await withCache.embed({ ...req, cache: false })).cached).toBe(false);
    const plain = make();
    await plain.embed(req);
    expect((await plain.embed(req)).cached).toBe(false);
    expect(plain.stats().cache).toBeUndefined();
  });

  test('concurrent identical embeds share one upstream call', async () => {
    const ai = make({ cache: {} });
    const req = { model, input: input(), headers: { 'x-sim-latency-ms': '30' } };
    const before = requests();
    const out = await Promise.all([0, 1, 2].map(() => ai.embed(req)));
    expect(requests()).toBe(before + 1);
    expect(out[1].vectors).toEqual(out[0].vectors);
    expect(out[2].vectors).not.toBe(out[0].vectors);
    expect(ai.stats().cache?.shared).toBe(2);
  });

  test('bad cache option is ERR_INVALID_ARGUMENT', async () => {
    const ai = make({ cache: {} });
    await expect(ai.embed({ model, input: 'x', cache: { ttlMs: -1 } })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(ai.embed({ model, input: 'x', cache: 'yes' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});
