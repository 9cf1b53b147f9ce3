// Target selection: weighted (seeded RNG), least-latency (EWMA), session affinity,
// and hedging with fake timers.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MyelinError } from '../../lib/errors.js';
import {
  fallbackOrder,
  hedge,
  LatencyTracker,
  leastLatencyOrder,
  SessionAffinity,
  weightedOrder,
} from '../../lib/ai/resilience/strategies.js';
import { expectCode, expectRejectCode } from '../helpers.js';

/** mulberry32: a small seeded PRNG so that runs repeat. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('fallbackOrder', () => {
  it('keeps declared order, unhealthy targets last', () => {
    expect(fallbackOrder(['a', 'b', 'c'])).toEqual(['a', 'b', 'c']);
    expect(fallbackOrder(['a', 'b', 'c'], (t) => t !== 'a')).toEqual(['b', 'c', 'a']);
  });
});

describe('weightedOrder', () => {
  const targets = [
    { target: 'openai/gpt-4o', weight: 2 },
    { target: 'claude/claude-sonnet-4', weight: 1 },
  ];

  it('is deterministic for a given RNG sequence', () => {
    expect(weightedOrder(targets, () => 0)).toEqual(['openai/gpt-4o', 'claude/claude-sonnet-4']);
    expect(weightedOrder(targets, () => 0.66)).toEqual(['openai/gpt-4o', 'claude/claude-sonnet-4']);
    expect(weightedOrder(targets, () => 0.67)).toEqual(['claude/claude-sonnet-4', 'openai/gpt-4o']);
    const run = (seed: number) => {
      const rng = seeded(seed);
      return Array.from({ length: 20 }, () => weightedOrder(targets, rng)[0]);
    };
    expect(run(7)).toEqual(run(7));
    expect(new Set(run(7)).size).toBe(2);
  });

  it('first picks follow the weights', () => {
    const rng = seeded(42);
    const counts: Record<string, number> = {};
    for (let i = 0; i < 30_000; i++) {
      const first = weightedOrder(targets, rng)[0];
      counts[first] = (counts[first] ?? 0) + 1;
    }
    expect(counts['openai/gpt-4o'] / 30_000).toBeCloseTo(2 / 3, 1);
  });

  it('puts unhealthy and zero-weight targets last and always returns every target', () => {
    const order = weightedOrder(
      [{ target: 'a', weight: 5 }, { target: 'b', weight: 0 }, { target: 'c' }],
      () => 0,
      (t) => t !== 'a',
    );
    expect(order).toEqual(['c', 'b', 'a']);
  });

  it('rejects negative or NaN weights', () => {
    expectCode(() => weightedOrder([{ target: 'a', weight: -1 }]), 'ERR_INVALID_ARGUMENT', /weight of a/);
    expectCode(() => weightedOrder([{ target: 'a', weight: Number.NaN }]), 'ERR_INVALID_ARGUMENT');
  });
});

describe('LatencyTracker and leastLatencyOrder', () => {
  it('orders by EWMA, unmeasured targets first so they get measured', () => {
    let t = 0;
    const tr = new LatencyTracker({ alpha: 0.5, now: () => t });
    tr.observe('a', 100);
    tr.observe('b', 50);
    expect(leastLatencyOrder(['a', 'b', 'c'], tr)).toEqual(['c', 'b', 'a']);
    tr.observe('b', 250); // 50 + 0.5 * 200 = 150
    expect(tr.estimate('b')).toBe(150);
    tr.observe('c', 120);
    expect(leastLatencyOrder(['a', 'b', 'c'], tr)).toEqual(['a', 'c', 'b']);
    expect(leastLatencyOrder(['a', 'b', 'c'], tr, (x) => x !== 'a')).toEqual(['c', 'b', 'a']);
  });

  it('a stale estimate counts as unmeasured, so a once-slow target is retried', () => {
    let t = 0;
    const tr = new LatencyTracker({ staleMs: 1_000, now: () => t });
    tr.observe('slow', 5_000);
    tr.observe('fast', 10);
    t = 999;
    tr.observe('fast', 10);
    expect(leastLatencyOrder(['fast', 'slow'], tr)[0]).toBe('fast');
    t = 1_000;
    expect(tr.estimate('slow')).toBeUndefined();
    expect(leastLatencyOrder(['fast', 'slow'], tr)[0]).toBe('slow');
    tr.observe('slow', 20); // restarts from the new sample, not from 5 000
    expect(tr.estimate('slow')).toBe(20);
  });

  it('ignores NaN and negative samples', () => {
    const tr = new LatencyTracker();
    tr.observe('a', Number.NaN);
    tr.observe('a', -5);
    expect(tr.estimate('a')).toBeUndefined();
    expectCode(() => new LatencyTracker({ alpha: 0 }), 'ERR_INVALID_ARGUMENT');
  });
});

describe('SessionAffinity', () => {
  it('keeps a session on its target while healthy and re-picks when not', () => {
    const aff = new SessionAffinity();
    const down = new Set<string>();
    const healthy = (t: string) => !down.has(t);
    expect(aff.order('s1', ['a', 'b'], healthy)).toEqual(['a', 'b']);
    // The strategy now prefers b, but the session stays on a.
    expect(aff.order('s1', ['b', 'a'], healthy)).toEqual(['a', 'b']);
    expect(aff.order('s2', ['b', 'a'], healthy)).toEqual(['b', 'a']);
    down.add('a');
    expect(aff.order('s1', ['a', 'b'], healthy)).toEqual(['b', 'a']);
    expect(aff.pinned('s1')).toBe('b');
    down.delete('a');
    expect(aff.order('s1', ['a', 'b'], healthy)[0]).toBe('b'); // re-pinned, stays
  });

  it('record() re-pins to the target that answered; the map is bounded', () => {
    const aff = new SessionAffinity({ maxSessions: 3 });
    aff.order('s1', ['a', 'b']);
    aff.record('s1', 'b');
    expect(aff.order('s1', ['a', 'b'])[0]).toBe('b');
    for (let i = 0; i < 10; i++) aff.order(`x${i}`, ['a']);
    expect(aff.size).toBe(3);
    expect(aff.pinned('s1')).toBeUndefined();
  });
});

describe('hedge', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** An attempt that resolves with `value` after `ms`, or rejects on abort. */
  function attempt(ms: number, value: string, log: string[]) {
    return (signal: AbortSignal) =>
      new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => resolve(value), ms);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          log.push(`abort ${value}`);
          reject(signal.reason);
        });
      });
  }

  it('does not start the second target when the first produces in time', async () => {
    const started: string[] = [];
    const log: string[] = [];
    const p = hedge(
      (target, signal) => {
        started.push(target);
        return attempt(target === 'a' ? 500 : 10, target, log)(signal);
      },
      ['a', 'b'],
      800,
    );
    await vi.advanceTimersByTimeAsync(500);
    await expect(p).resolves.toMatchObject({ value: 'a', target: 'a', index: 0, started: 1 });
    expect(started).toEqual(['a']);
  });

  it('starts the next after hedgeAfterMs; the first to produce wins and the loser is aborted', async () => {
    const started: Array<[string, number]> = [];
    const log: string[] = [];
    const p = hedge(
      (target, signal) => {
        started.push([target, Date.now()]);
        return attempt(target === 'a' ? 5_000 : 300, target, log)(signal);
      },
      ['a', 'b'],
      800,
    );
    const t0 = Date.now();
    await vi.advanceTimersByTimeAsync(799);
    expect(started.map(([t]) => t)).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(1);
    expect(started.map(([t, at]) => [t, at - t0])).toEqual([
      ['a', 0],
      ['b', 800],
    ]);
    await vi.advanceTimersByTimeAsync(300);
    await expect(p).resolves.toMatchObject({ value: 'b', target: 'b', index: 1, started: 2 });
    expect(log).toEqual(['abort a']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('the first target can still win after the hedge started', async () => {
    const log: string[] = [];
    const p = hedge((target, signal) => attempt(target === 'a' ? 1_000 : 1_000, target, log)(signal), ['a', 'b'], 800);
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(p).resolves.toMatchObject({ target: 'a' });
    expect(log).toEqual(['abort b']);
  });

  it('a failure starts the next target at once; all failing rejects with the last error', async () => {
    const started: Array<[string, number]> = [];
    const t0 = Date.now();
    const p = hedge(
      async (target) => {
        started.push([target, Date.now() - t0]);
        throw new MyelinError('ERR_AI_UPSTREAM', `${target} failed`, { status: 503 });
      },
      ['a', 'b', 'c'],
      800,
    );
    const err = await expectRejectCode(p, 'ERR_AI_UPSTREAM');
    expect(err.message).toBe('c failed');
    expect(started).toEqual([
      ['a', 0],
      ['b', 0],
      ['c', 0],
    ]);
  });

  it("the caller's signal aborts every attempt with ERR_ABORTED", async () => {
    const log: string[] = [];
    const ctl = new AbortController();
    const p = hedge((target, signal) => attempt(10_000, target, log)(signal), ['a', 'b'], 100, ctl.signal);
    await vi.advanceTimersByTimeAsync(150);
    ctl.abort();
    await expectRejectCode(p, 'ERR_ABORTED');
    expect(log.sort()).toEqual(['abort a', 'abort b']);
    await expectRejectCode(hedge(async () => 1, ['a'], 10, ctl.signal), 'ERR_ABORTED');
  });

  it('rejects bad arguments', async () => {
    await expectRejectCode(hedge(async () => 1, [], 10), 'ERR_INVALID_ARGUMENT');
    await expectRejectCode(hedge(async () => 1, ['a'], Number.NaN), 'ERR_INVALID_ARGUMENT');
  });
});
