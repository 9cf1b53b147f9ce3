// ModelRouter, the one routing mechanism of AIClient: the orders that 'fallback',
// 'weighted' and 'least-latency' give, with the random source and the p50 lookup
// injected so that runs repeat. AIClient routing over real HTTP is in
// client-providers.test.ts; open breakers going last is guards.ts, in
// client-resilience.test.ts.
import { describe, expect, it } from 'vitest';
import { ModelRouter } from '../../lib/ai/client/model-router.js';
import { resolveOptions } from '../../lib/ai/client/options.js';
import { mulberry32 } from '../../lib/ai/simulator/text.js';
import { expectCode } from '../helpers.js';

/** A seeded PRNG (the simulator's) so that runs repeat. */
const seeded = mulberry32;

const options = resolveOptions({
  providers: [
    { name: 'a', kind: 'openai', baseURL: 'http://127.0.0.1:1/v1' },
    { name: 'b', kind: 'anthropic', baseURL: 'http://127.0.0.1:1' },
    { name: 'c', kind: 'ollama', baseURL: 'http://127.0.0.1:1' },
  ],
  models: {
    fb: { targets: ['a/m', 'b/m', 'c/m'] },
    w: { strategy: 'weighted', targets: [{ target: 'a/m', weight: 2 }, { target: 'b/m', weight: 1 }] },
    ll: { strategy: 'least-latency', targets: ['a/m', 'b/m', 'c/m'], hedgeAfterMs: 50 },
  },
});

const keys = (r: ModelRouter, model: string) => r.resolve(model).map((t) => t.key);

describe('ModelRouter', () => {
  it("'fallback' keeps the declared order; a plain target is itself", () => {
    const r = new ModelRouter(options, () => undefined);
    expect(keys(r, 'fb')).toEqual(['a/m', 'b/m', 'c/m']);
    expect(keys(r, 'c/some/model')).toEqual(['c/some/model']);
    expect(r.resolve('b/x')[0]).toMatchObject({ model: 'x', provider: { name: 'b', kind: 'anthropic' } });
    expect(r.hedgeAfterMs('ll')).toBe(50);
    expect(r.hedgeAfterMs('fb')).toBeUndefined();
  });

  it("'weighted' is deterministic for a given random sequence and returns every target", () => {
    // Keys u^(1/w): a/m (w 2) wins unless u_b^1 > u_a^(1/2).
    expect(keys(new ModelRouter(options, () => undefined, () => 0.5), 'w')).toEqual(['a/m', 'b/m']);
    const draws = [0.25, 0.6]; // 0.25^(1/2) = 0.5 < 0.6
    expect(keys(new ModelRouter(options, () => undefined, () => draws.shift()!), 'w')).toEqual(['b/m', 'a/m']);
    const run = (seed: number) => {
      const r = new ModelRouter(options, () => undefined, seeded(seed));
      return Array.from({ length: 20 }, () => keys(r, 'w')[0]);
    };
    expect(run(7)).toEqual(run(7));
    expect(new Set(run(7))).toEqual(new Set(['a/m', 'b/m']));
  });

  it("'weighted' first picks follow the weights", () => {
    const r = new ModelRouter(options, () => undefined, seeded(42));
    let first = 0;
    for (let i = 0; i < 30_000; i++) if (keys(r, 'w')[0] === 'a/m') first++;
    expect(first / 30_000).toBeCloseTo(2 / 3, 1);
  });

  it("'least-latency': unmeasured targets first in declared order, then the lowest p50", () => {
    const p50 = new Map<string, number>();
    const r = new ModelRouter(options, (k) => p50.get(k));
    expect(keys(r, 'll')).toEqual(['a/m', 'b/m', 'c/m']);
    p50.set('a/m', 100);
    expect(keys(r, 'll')).toEqual(['b/m', 'c/m', 'a/m']);
    p50.set('b/m', 300);
    p50.set('c/m', 50);
    expect(keys(r, 'll')).toEqual(['c/m', 'a/m', 'b/m']);
    p50.set('c/m', 100); // a tie keeps the declared order
    expect(keys(r, 'll')).toEqual(['a/m', 'c/m', 'b/m']);
  });

  it('an unknown model or provider is ERR_INVALID_ARGUMENT', () => {
    const r = new ModelRouter(options, () => undefined);
    expectCode(() => r.resolve('nope'), 'ERR_INVALID_ARGUMENT', /nope/);
    expectCode(() => r.resolve('z/m'), 'ERR_INVALID_ARGUMENT', /z\/m/);
  });
});
