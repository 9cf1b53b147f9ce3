// TokenBucket and the in-process RateLimiter: burst, continuous refill, priority then
// FIFO, deadlines, settle/cancel, abort and close. Fake timers throughout.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TokenBucket } from '../../lib/ai/limits/token-bucket.js';
import { RateLimiter, type Reservation } from '../../lib/ai/limits/rate-limiter.js';
import { expectCode, expectRejectCode } from '../helpers.js';

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('TokenBucket', () => {
  it('starts full at the per-minute amount and refills continuously', () => {
    const b = new TokenBucket({ perMinute: 600 });
    expect(b.available).toBe(600);
    expect(b.tryTake(600)).toBe(true);
    expect(b.tryTake(1)).toBe(false);
    expect(b.waitMs(1)).toBe(100);
    vi.advanceTimersByTime(50);
    expect(b.available).toBeCloseTo(0.5, 9);
    vi.advanceTimersByTime(950);
    expect(b.tryTake(11)).toBe(false);
    expect(b.tryTake(10)).toBe(true);
    vi.advanceTimersByTime(600_000);
    expect(b.available).toBe(600); // never above the burst
  });

  it('an oversized take waits for a full bucket, then leaves a debt', () => {
    const b = new TokenBucket({ perMinute: 60 });
    b.tryTake(30);
    expect(b.waitMs(100)).toBe(30_000);
    vi.advanceTimersByTime(30_000);
    expect(b.tryTake(100)).toBe(true);
    expect(b.available).toBeCloseTo(-40, 9);
    expect(b.waitMs(1)).toBe(41_000);
  });

  it('adjust refunds up to the capacity and may go into debt', () => {
    const b = new TokenBucket({ perMinute: 100 });
    b.adjust(50);
    expect(b.available).toBe(100);
    b.adjust(-150);
    expect(b.available).toBe(-50);
  });

  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY])('rejects perMinute %s', (v) => {
    expectCode(() => new TokenBucket({ perMinute: v }), 'ERR_INVALID_ARGUMENT', /perMinute/);
  });
});

/** Tracks which reservations have resolved, in order. */
function track(limiter: RateLimiter, name: string, order: string[], opts = {}) {
  return limiter.reserve(opts).then((r) => {
    order.push(name);
    return r;
  });
}

describe('RateLimiter', () => {
  it('admits up to the burst at once, then one request per refill interval', async () => {
    const rl = new RateLimiter({ rpm: 60 });
    for (let i = 0; i < 60; i++) await rl.reserve();
    const order: string[] = [];
    const p = track(rl, 'late', order);
    await vi.advanceTimersByTimeAsync(999);
    expect(order).toEqual([]);
    expect(rl.pending).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(order).toEqual(['late']);
    await p;
  });

  it('serves waiters by priority, then in arrival order', async () => {
    const rl = new RateLimiter({ rpm: 60 });
    for (let i = 0; i < 60; i++) await rl.reserve();
    const order: string[] = [];
    const all = [
      track(rl, 'low', order, { priority: 'low' }),
      track(rl, 'normal-1', order),
      track(rl, 'critical', order, { priority: 'critical' }),
      track(rl, 'normal-2', order, { priority: 'normal' }),
      track(rl, 'high', order, { priority: 'high' }),
      track(rl, 'seven', order, { priority: 7 }),
    ];
    for (let s = 1; s <= 6; s++) {
      await vi.advanceTimersByTimeAsync(1_000);
      expect(order).toHaveLength(s);
    }
    expect(order).toEqual(['seven', 'critical', 'high', 'normal-1', 'normal-2', 'low']);
    await Promise.all(all);
  });

  it('a big head blocks smaller requests behind it (no starvation)', async () => {
    const rl = new RateLimiter({ tpm: 6_000 }); // 100 tokens per second
    await rl.reserve({ tokens: 6_000 });
    const order: string[] = [];
    const big = track(rl, 'big', order, { tokens: 1_000 });
    const small = track(rl, 'small', order, { tokens: 10 });
    await vi.advanceTimersByTimeAsync(9_999);
    expect(order).toEqual([]);
    await vi.advanceTimersByTimeAsync(101);
    expect(order).toEqual(['big', 'small']);
    await Promise.all([big, small]);
  });

  it('rejects with ERR_AI_RATE_LIMITED at the deadline, and the queue moves on', async () => {
    const rl = new RateLimiter({ rpm: 60, tpm: 600 });
    await rl.reserve({ tokens: 600 });
    const order: string[] = [];
    // The head needs 10 s of token refill; its deadline is 5 s: rejected at once.
    const doomed = rl.reserve({ tokens: 100, deadline: Date.now() + 5_000 });
    await expectRejectCode(doomed, 'ERR_AI_RATE_LIMITED');
    // Behind a head that may make it, a waiter is rejected when its own deadline passes.
    const head = track(rl, 'head', order, { tokens: 300 });
    const behind = rl.reserve({ tokens: 1, deadline: Date.now() + 2_000 });
    const behindErr = expectRejectCode(behind, 'ERR_AI_RATE_LIMITED');
    await vi.advanceTimersByTimeAsync(1_999);
    expect(rl.pending).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    await behindErr;
    expect(rl.pending).toBe(1);
    await vi.advanceTimersByTimeAsync(28_000);
    expect(order).toEqual(['head']);
    await head;
    await expectRejectCode(rl.reserve({ deadline: Date.now() - 1 }), 'ERR_AI_RATE_LIMITED');
  });

  it('settle returns the unused estimate and lets a waiter in', async () => {
    const rl = new RateLimiter({ tpm: 1_000 });
    const r = await rl.reserve({ tokens: 1_000 });
    expect(rl.available().tokens).toBe(0);
    const order: string[] = [];
    const next = track(rl, 'next', order, { tokens: 700 });
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual([]);
    await r.settle(250); // 750 come back
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual(['next']);
    await next;
    expect(rl.available().tokens).toBeCloseTo(50, 9);
    await r.settle(0); // a second settle is ignored
    expect(rl.available().tokens).toBeCloseTo(50, 9);
  });

  it('settle above the estimate takes the overrun (debt)', async () => {
    const rl = new RateLimiter({ tpm: 1_000 });
    const r = await rl.reserve({ tokens: 100 });
    await r.settle(400);
    expect(rl.available().tokens).toBe(600);
  });

  it('settle validates its argument', async () => {
    const rl = new RateLimiter({ tpm: 1_000 });
    const r = await rl.reserve({ tokens: 100 });
    await expectRejectCode(r.settle(-1), 'ERR_INVALID_ARGUMENT');
    await expectRejectCode(r.settle(Number.NaN), 'ERR_INVALID_ARGUMENT');
  });

  it('cancel returns the request and its tokens', async () => {
    const rl = new RateLimiter({ rpm: 2, tpm: 100 });
    const a = await rl.reserve({ tokens: 60 });
    await rl.reserve({ tokens: 40 });
    expect(rl.available()).toEqual({ requests: 0, tokens: 0 });
    const order: string[] = [];
    const c = track(rl, 'c', order, { tokens: 50 });
    await a.cancel();
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual(['c']);
    await c;
    await a.cancel();
    expect(rl.available().requests).toBe(0);
  });

  it('an aborted waiter leaves with ERR_ABORTED and the next one is served', async () => {
    const rl = new RateLimiter({ rpm: 60 });
    for (let i = 0; i < 60; i++) await rl.reserve();
    const ctl = new AbortController();
    const order: string[] = [];
    const first = rl.reserve({ signal: ctl.signal, priority: 'high' });
    const second = track(rl, 'second', order);
    ctl.abort();
    await expectRejectCode(first, 'ERR_ABORTED');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(order).toEqual(['second']);
    await second;
    await expectRejectCode(rl.reserve({ signal: ctl.signal }), 'ERR_ABORTED');
  });

  it('close() rejects waiters and later reserves with ERR_ABORTED', async () => {
    const rl = new RateLimiter({ rpm: 1 });
    await rl.reserve();
    const waiting = rl.reserve();
    rl.close();
    await expectRejectCode(waiting, 'ERR_ABORTED');
    await expectRejectCode(rl.reserve(), 'ERR_ABORTED');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('concurrent reservations never overshoot the limits', async () => {
    const rl = new RateLimiter({ rpm: 100, tpm: 10_000 });
    const got: Reservation[] = [];
    const all = Array.from({ length: 500 }, (_, i) => rl.reserve({ tokens: 50 + (i % 7) * 10 }).then((r) => got.push(r)));
    await vi.advanceTimersByTimeAsync(0);
    const tokensNow = () => got.reduce((s, r) => s + r.tokens, 0);
    expect(got.length).toBeLessThanOrEqual(100);
    expect(tokensNow()).toBeLessThanOrEqual(10_000);
    // Over 60 s, at most burst + one minute of refill.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(got.length).toBeLessThanOrEqual(200);
    expect(tokensNow()).toBeLessThanOrEqual(20_000);
    rl.close();
    await Promise.allSettled(all);
  });

  it('rejects bad options', async () => {
    expectCode(() => new RateLimiter({}), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new RateLimiter({ rpm: -5 }), 'ERR_INVALID_ARGUMENT');
    const rl = new RateLimiter({ rpm: 10 });
    await expectRejectCode(rl.reserve({ tokens: -1 }), 'ERR_INVALID_ARGUMENT');
    await expectRejectCode(rl.reserve({ tokens: Number.NaN }), 'ERR_INVALID_ARGUMENT');
    await expectRejectCode(rl.reserve({ priority: 'urgent' as 'high' }), 'ERR_INVALID_ARGUMENT');
    await expectRejectCode(rl.reserve({ deadline: Number.NaN }), 'ERR_INVALID_ARGUMENT');
  });
});
