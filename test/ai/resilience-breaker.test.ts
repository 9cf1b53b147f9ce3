// CircuitBreaker: every transition, exactly one half-open probe under concurrency,
// the sliding window and generation attribution, through acquire() and its permits as
// the AIClient's guard uses them. Which errors count is the client's classifier
// (client/failure.ts), tested through AIClient in client-resilience.test.ts.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CircuitBreaker, type BreakerStateChange } from '../../lib/ai/resilience/circuit-breaker.js';
import { expectCode } from '../helpers.js';

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

const opts = { failureRate: 0.5, minRequests: 4, windowMs: 10_000, openMs: 5_000, buckets: 10 };

function permit(b: CircuitBreaker) {
  const p = b.acquire();
  expect(p, 'the breaker refused a call').toBeDefined();
  return p!;
}
function fail(b: CircuitBreaker, n: number): void {
  for (let i = 0; i < n; i++) permit(b).failure();
}
function succeed(b: CircuitBreaker, n: number): void {
  for (let i = 0; i < n; i++) permit(b).success();
}
const admits = (b: CircuitBreaker): boolean => b.acquire() !== undefined;

describe('CircuitBreaker transitions', () => {
  it('stays closed below minRequests even at 100% failures', () => {
    const b = new CircuitBreaker(opts);
    fail(b, 3);
    expect(b.state).toBe('closed');
    expect(b.stats()).toMatchObject({ requests: 3, failures: 3, failureRate: 1 });
  });

  it('opens when the failure rate reaches failureRate with minRequests calls', () => {
    const changes: BreakerStateChange[] = [];
    const b = new CircuitBreaker({ ...opts, target: 'openai/gpt-4o', onStateChange: (c) => changes.push(c) });
    succeed(b, 2);
    fail(b, 1);
    expect(b.state).toBe('closed'); // 1/3, and under minRequests
    fail(b, 1); // 2/4 = 0.5
    expect(b.state).toBe('open');
    expect(admits(b)).toBe(false);
    expect(changes).toEqual([{ target: 'openai/gpt-4o', from: 'closed', to: 'open', at: 1_000_000 }]);
    expect(b.stats().retryAt).toBe(1_005_000);
  });

  it('does not open below the rate', () => {
    const b = new CircuitBreaker(opts);
    succeed(b, 7);
    fail(b, 3); // 0.3
    expect(b.state).toBe('closed');
  });

  it('goes half-open after openMs, and a successful probe closes it with a fresh window', () => {
    const events: string[] = [];
    const b = new CircuitBreaker({ ...opts, onStateChange: (c) => events.push(`${c.from}->${c.to}`) });
    fail(b, 4);
    vi.advanceTimersByTime(4_999);
    expect(b.state).toBe('open');
    expect(admits(b)).toBe(false);
    vi.advanceTimersByTime(1);
    expect(b.state).toBe('half-open');
    const probe = permit(b);
    expect(probe.probe).toBe(true);
    probe.success();
    expect(b.state).toBe('closed');
    expect(b.stats().requests).toBe(0);
    expect(events).toEqual(['closed->open', 'open->half-open', 'half-open->closed']);
    // The old failures are gone: three more failures do not reopen it.
    fail(b, 3);
    expect(b.state).toBe('closed');
  });

  it('a failed probe re-opens for another openMs', () => {
    const b = new CircuitBreaker(opts);
    fail(b, 4);
    vi.advanceTimersByTime(5_000);
    permit(b).failure();
    expect(b.state).toBe('open');
    vi.advanceTimersByTime(4_999);
    expect(admits(b)).toBe(false);
    vi.advanceTimersByTime(1);
    expect(admits(b)).toBe(true);
  });

  it('lets exactly one probe through while it is out, however many callers', async () => {
    const b = new CircuitBreaker(opts);
    fail(b, 4);
    vi.advanceTimersByTime(5_000);
    const admitted = await Promise.all(Array.from({ length: 50 }, async () => b.acquire()));
    const probes = admitted.filter((p) => p !== undefined);
    expect(probes).toHaveLength(1);
    expect(probes[0]!.probe).toBe(true);
    expect(admits(b)).toBe(false);
    probes[0]!.success();
    expect(b.state).toBe('closed');
    expect(admits(b)).toBe(true);
  });

  it('a released probe (no verdict) lets the next probe through', () => {
    const b = new CircuitBreaker(opts);
    fail(b, 4);
    vi.advanceTimersByTime(5_000);
    const p = b.acquire()!;
    expect(b.acquire()).toBeUndefined();
    p.release();
    expect(b.state).toBe('half-open');
    expect(b.acquire()?.probe).toBe(true);
  });

  it('a probe that never reports is taken as failed after probeTimeoutMs', () => {
    const b = new CircuitBreaker({ ...opts, probeTimeoutMs: 2_000 });
    fail(b, 4);
    vi.advanceTimersByTime(5_000);
    expect(permit(b).probe).toBe(true);
    vi.advanceTimersByTime(2_000);
    expect(b.state).toBe('open');
  });

  it('a straggler from the closed generation cannot close a half-open breaker', () => {
    const b = new CircuitBreaker(opts);
    const slow = b.acquire()!;
    fail(b, 4);
    expect(b.state).toBe('open');
    vi.advanceTimersByTime(5_000);
    const probe = b.acquire()!;
    slow.success();
    expect(b.state).toBe('half-open');
    probe.failure();
    expect(b.state).toBe('open');
  });

  it('reports after the first are ignored; a release is no verdict', () => {
    const b = new CircuitBreaker({ ...opts, minRequests: 2 });
    const a = b.acquire()!;
    a.success();
    a.failure();
    b.acquire()!.release();
    expect(b.stats()).toMatchObject({ requests: 1, failures: 0 });
    b.acquire()!.failure();
    expect(b.state).toBe('open'); // 1 of 2 failed = 0.5
  });
});

describe('CircuitBreaker sliding window', () => {
  it('forgets outcomes older than windowMs', () => {
    const b = new CircuitBreaker(opts);
    fail(b, 3);
    vi.advanceTimersByTime(10_000);
    expect(b.stats().requests).toBe(0);
    fail(b, 1);
    expect(b.state).toBe('closed'); // the three old failures no longer count
  });

  it('slides bucket by bucket: outcomes leave in the order they came', () => {
    const b = new CircuitBreaker({ ...opts, minRequests: 100 });
    fail(b, 2); // t = 0
    vi.advanceTimersByTime(5_000);
    succeed(b, 3); // t = 5000
    vi.advanceTimersByTime(4_999);
    expect(b.stats()).toMatchObject({ requests: 5, failures: 2 });
    vi.advanceTimersByTime(1); // t = 10 000: the first bucket leaves
    expect(b.stats()).toMatchObject({ requests: 3, failures: 0 });
    vi.advanceTimersByTime(5_000);
    expect(b.stats().requests).toBe(0);
  });

  it('opens on failures that fall inside one window, not on ones spread over two', () => {
    const spread = new CircuitBreaker(opts);
    // Two successes and a failure every 6 s: never more than 2 of 6 in a window.
    for (let i = 0; i < 4; i++) {
      succeed(spread, 2);
      fail(spread, 1);
      vi.advanceTimersByTime(6_000);
    }
    expect(spread.stats()).toMatchObject({ requests: 3, failures: 1 });
    expect(spread.state).toBe('closed');
    vi.advanceTimersByTime(1_000);
    fail(spread, 1);
    expect(spread.state).toBe('open'); // 2 of 4 within the window
  });
});

describe('CircuitBreaker options', () => {
  it.each([
    [{ failureRate: 0 }],
    [{ failureRate: 1.5 }],
    [{ failureRate: Number.NaN }],
    [{ minRequests: 0 }],
    [{ minRequests: 2.5 }],
    [{ windowMs: -1 }],
    [{ openMs: Number.NaN }],
    [{ buckets: 0 }],
  ])('rejects %o', (o) => {
    expectCode(() => new CircuitBreaker(o), 'ERR_INVALID_ARGUMENT', /breaker\./);
  });

  it('uses the injected clock', () => {
    let t = 0;
    const b = new CircuitBreaker({ ...opts, now: () => t });
    fail(b, 4);
    t = 4_999;
    expect(b.state).toBe('open');
    t = 5_000;
    expect(b.state).toBe('half-open');
  });
});
