// hedge(), the racer behind aliases with hedgeAfterMs, under fake timers: when the next
// target starts, who wins, what is aborted. AIClient's use of it over real HTTP is in
// client-resilience.test.ts ("hedging").
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MyelinError } from '../../lib/errors.js';
import { hedge } from '../../lib/ai/resilience/hedge.js';
import { expectRejectCode } from '../helpers.js';

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
