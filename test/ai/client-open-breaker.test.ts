// AIClient.openBreaker: an operator or an automated response (a metrics alert's
// 'open-breaker' action) forces a target's breaker open for a while, with and without
// the `breaker` option, against the simulator over real HTTP; the simulator's request
// count proves the refused calls never reached the upstream.
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { AIClient } from '../../lib/ai/client/index.js';
import { CircuitBreaker } from '../../lib/ai/resilience/circuit-breaker.js';
import { UpstreamSimulator } from '../../lib/ai/simulator/index.js';
import { expectCode } from '../helpers.js';
import { KEY, TARGETS, client, hello, rejection } from './client-fixtures.js';

let sim: UpstreamSimulator;
let url: string;
const open: AIClient[] = [];

beforeAll(async () => {
  sim = new UpstreamSimulator({ apiKey: KEY, tokens: 4 });
  url = (await sim.listen(0)).url;
});
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(open.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await sim?.close();
});

function make(opts: Parameters<typeof client>[1] = {}): AIClient {
  const c = client(url, opts);
  open.push(c);
  return c;
}
const requests = () => sim.stats().requests;

describe('AIClient.openBreaker', () => {
  test.each([
    ['with a breaker option', { breaker: { minRequests: 100, openMs: 60_000 } }],
    ['without one', {}],
  ])('refuses the target %s until forMs has passed, without reaching the upstream', async (_, opts) => {
    const ai = make(opts);
    expect((await ai.chat(hello(TARGETS.openai))).text).not.toBe('');
    ai.openBreaker(TARGETS.openai, { forMs: 150 });
    const before = requests();
    const err = await rejection(ai.chat(hello(TARGETS.openai)));
    expect(err.code).toBe('ERR_AI_CIRCUIT_OPEN');
    expect(requests()).toBe(before);
    // Other targets are untouched.
    expect((await ai.chat(hello(TARGETS.claude))).text).not.toBe('');
    if ('breaker' in opts) expect(ai.stats().targets[TARGETS.openai].breaker).toBe('open');
    await new Promise((r) => setTimeout(r, 200));
    // Half-open (with a breaker) admits the probe; without one the target is simply admitted.
    expect((await ai.chat(hello(TARGETS.openai))).text).not.toBe('');
    if ('breaker' in opts) expect(ai.stats().targets[TARGETS.openai].breaker).toBe('closed');
  });

  test('a route falls through to its next target while the first is forced open', async () => {
    const ai = make({ models: { smart: { strategy: 'fallback', targets: [TARGETS.openai, TARGETS.claude] } } });
    ai.openBreaker(TARGETS.openai, { forMs: 60_000 });
    const res = await ai.chat(hello('smart'));
    expect(res.provider).toBe('claude');
  });

  test('bad input gets ERR_INVALID_ARGUMENT; after close, ERR_AI_CLOSED', async () => {
    const ai = make();
    for (const t of [undefined, 42, '', 'openai', 'openai/', '/gpt', 'nope/gpt-4o'] as unknown[]) {
      expectCode(() => ai.openBreaker(t as string, { forMs: 10 }), 'ERR_INVALID_ARGUMENT');
    }
    for (const o of [undefined, null, {}, { forMs: 0 }, { forMs: -1 }, { forMs: Number.NaN }, { forMs: Infinity }, { forMs: '10' }, { forMs: 10, extra: 1 }] as unknown[]) {
      expectCode(() => ai.openBreaker(TARGETS.openai, o as { forMs: number }), 'ERR_INVALID_ARGUMENT');
    }
    await ai.close();
    expectCode(() => ai.openBreaker(TARGETS.openai, { forMs: 10 }), 'ERR_AI_CLOSED');
  });
});

describe('CircuitBreaker.open', () => {
  test('opens for forMs, then half-open with one probe; bad forMs throws', () => {
    vi.useFakeTimers({ now: 1_000 });
    const b = new CircuitBreaker({ openMs: 5_000 });
    b.open(200);
    expect(b.state).toBe('open');
    expect(b.stats().retryAt).toBe(1_200);
    expect(b.acquire()).toBeUndefined();
    vi.advanceTimersByTime(200);
    expect(b.state).toBe('half-open');
    const probe = b.acquire()!;
    expect(probe.probe).toBe(true);
    probe.failure();
    // A failed probe re-opens for the configured openMs, not the forced period.
    expect(b.stats().retryAt).toBe(1_200 + 5_000);
    for (const v of [0, -1, Number.NaN, Infinity]) expectCode(() => b.open(v), 'ERR_INVALID_ARGUMENT');
  });
});
