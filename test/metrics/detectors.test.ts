// The detectors of lib/metrics/detectors.ts: pure functions of their samples, so each
// property is checked on exact sequences (a seeded generator for noise).
import { describe, expect, it } from 'vitest';
import { EwmaDetector, HoltForecaster, MAX_WARMUP, linearTrend, predictLinear } from '../../lib/metrics/detectors.js';
import { expectCode } from '../helpers.js';

/** Deterministic noise in [-1, 1): a 32-bit LCG. */
function noise(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

describe('EwmaDetector', () => {
  it('never fires on a constant series (sigma = 0), whatever its level', () => {
    for (const level of [0, 1, 1e-9, 12345.678, -40]) {
      const d = new EwmaDetector({ z: 3 });
      for (let i = 0; i < 500; i++) {
        const r = d.update(level);
        expect(r.firing).toBe(false);
        expect(Number.isFinite(r.z)).toBe(true);
        expect(r.sigma).toBe(0);
      }
    }
  });

  it('never fires on stationary noise within the relative guard', () => {
    const d = new EwmaDetector({ z: 4, relative: 0.05 });
    const rnd = noise(7);
    for (let i = 0; i < 2000; i++) expect(d.update(100 + 4 * rnd()).firing).toBe(false);
  });

  it('a step change fires within k samples of the step, after warm-up', () => {
    const k = 3;
    const rnd = noise(42);
    const d = new EwmaDetector({ z: 4 });
    for (let i = 0; i < 50; i++) expect(d.update(100 + rnd()).firing).toBe(false);
    let firedAt = -1;
    for (let i = 0; i < 20; i++) {
      if (d.update(200 + rnd()).firing) {
        firedAt = i;
        break;
      }
    }
    expect(firedAt).toBeGreaterThanOrEqual(0);
    expect(firedAt).toBeLessThan(k);
  });

  it('a step on a perfectly flat series fires at once (z = ±Infinity, no division by zero)', () => {
    const d = new EwmaDetector();
    for (let i = 0; i < 20; i++) d.update(5);
    const r = d.update(50);
    expect(r.firing).toBe(true);
    expect(r.z).toBe(Infinity);
    const down = new EwmaDetector();
    for (let i = 0; i < 20; i++) down.update(5);
    expect(down.update(0).z).toBe(-Infinity);
  });

  it(`decides nothing during warm-up (at most ${MAX_WARMUP} samples)`, () => {
    const d = new EwmaDetector({ warmup: MAX_WARMUP });
    d.update(1);
    for (let i = 2; i <= MAX_WARMUP; i++) expect(d.update(i % 2 ? 1 : 1000).firing).toBe(false);
    // The first decision comes with sample warmup + 1.
    const e = new EwmaDetector({ warmup: 3 });
    e.update(1);
    e.update(1);
    expect(e.update(1000).firing).toBe(false);
    expect(e.update(1e6).firing).toBe(true);
  });

  it('ignores NaN and ±Infinity: state and decision unchanged', () => {
    const a = new EwmaDetector();
    const b = new EwmaDetector();
    const rnd = noise(3);
    for (let i = 0; i < 40; i++) {
      const x = 10 + rnd();
      a.update(x);
      b.update(x);
      if (i % 5 === 0) {
        const r = b.update(Number.NaN);
        expect(r.changed).toBe(false);
        b.update(Infinity);
        b.update(-Infinity);
      }
    }
    expect(b.update(11)).toEqual(a.update(11));
  });

  it('hysteresis: fires above z, stays firing until |z| drops below clearZ', () => {
    const d = new EwmaDetector({ z: 4, clearZ: 1, alpha: 0.5, warmup: 2, relative: 0 });
    const rnd = noise(11);
    for (let i = 0; i < 30; i++) d.update(10 + rnd() * 0.1);
    const fired = d.update(20);
    expect(fired.firing && fired.changed).toBe(true);
    // Samples between clearZ and z keep it firing; they do not re-announce.
    const states: boolean[] = [];
    for (let i = 0; i < 60; i++) {
      const r = d.update(10 + rnd() * 0.1);
      states.push(r.firing);
      if (!r.firing) {
        expect(r.changed).toBe(true);
        expect(Math.abs(r.z)).toBeLessThan(1);
        break;
      }
      if (i > 0) expect(r.changed).toBe(false);
    }
    expect(states.at(-1)).toBe(false);
  });

  it('minRate: an idle series never fires, however wild in relative terms', () => {
    const d = new EwmaDetector({ minRate: 5, warmup: 2 });
    const seq = [0, 0, 0, 1, 0, 0, 3, 0, 2, 0, 4, 0];
    for (const x of seq) expect(d.update(x).firing).toBe(false);
    const e = new EwmaDetector({ minRate: 0, warmup: 2, relative: 0 });
    expect(seq.map((x) => e.update(x).firing)).toContain(true);
  });

  it('a replay of the same samples gives the same decisions, bit for bit', () => {
    const rnd = noise(99);
    const xs = Array.from({ length: 500 }, (_, i) => (i % 97 === 0 ? 500 : 100) + 10 * rnd());
    const run = () => {
      const d = new EwmaDetector({ z: 3 });
      return xs.map((x) => d.update(x));
    };
    const a = run();
    expect(run()).toEqual(a);
    expect(a.some((r) => r.firing)).toBe(true);
  });

  it('bad options get ERR_INVALID_ARGUMENT', () => {
    for (const o of [{ alpha: 0 }, { alpha: 1.5 }, { z: 0 }, { z: Number.NaN }, { clearZ: 5, z: 4 }, { clearZ: -1 }, { warmup: 1 }, { warmup: 11 }, { warmup: 2.5 }, { minRate: -1 }, { relative: 2 }, { extra: 1 }, null]) {
      expectCode(() => new EwmaDetector(o as never), 'ERR_INVALID_ARGUMENT');
    }
  });
});

describe('HoltForecaster', () => {
  it('forecasts a linear series exactly (up to floating point)', () => {
    const h = new HoltForecaster({ alpha: 0.3, beta: 0.2 });
    for (let i = 0; i < 50; i++) h.update(3 + 2.5 * i);
    expect(h.forecast(1)).toBeCloseTo(3 + 2.5 * 50, 9);
    expect(h.forecast(10)).toBeCloseTo(3 + 2.5 * 59, 9);
    expect(h.trend).toBeCloseTo(2.5, 12);
  });

  it('follows a change of slope; ignores NaN; NaN before any sample', () => {
    const h = new HoltForecaster();
    expect(Number.isNaN(h.forecast())).toBe(true);
    for (let i = 0; i < 30; i++) h.update(i);
    h.update(Number.NaN);
    for (let i = 30; i < 100; i++) h.update(30 + 5 * (i - 30));
    expect(h.forecast(1)).toBeCloseTo(30 + 5 * 70, 3);
    expect(h.samples).toBe(100);
  });

  it('bad input gets ERR_INVALID_ARGUMENT', () => {
    expectCode(() => new HoltForecaster({ alpha: 0 }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new HoltForecaster({ beta: 2 }), 'ERR_INVALID_ARGUMENT');
    const h = new HoltForecaster();
    h.update(1);
    for (const x of [-1, Number.NaN, Infinity]) expectCode(() => h.forecast(x), 'ERR_INVALID_ARGUMENT');
  });
});

describe('linearTrend / predictLinear', () => {
  it('fits a line through epoch-ms times without losing precision', () => {
    const t0 = 1_800_000_000_000;
    const ts = Array.from({ length: 60 }, (_, i) => t0 + i * 1000);
    const vs = ts.map((t) => 7 + 0.002 * (t - t0));
    const f = linearTrend(ts, vs)!;
    expect(f.slope).toBeCloseTo(0.002, 12);
    expect(predictLinear(ts, vs, t0 + 120_000)).toBeCloseTo(7 + 240, 6);
  });

  it('skips non-finite points; undefined with fewer than two or one distinct time', () => {
    expect(linearTrend([1, 2, 3], [1, Number.NaN, 3])).toMatchObject({ slope: 1, points: 2 });
    expect(linearTrend([1], [1])).toBeUndefined();
    expect(linearTrend([5, 5, 5], [1, 2, 3])).toBeUndefined();
    expect(predictLinear([], [], 0)).toBeUndefined();
  });
});
