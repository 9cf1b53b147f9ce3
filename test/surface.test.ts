// One table of wrong arguments across the bus's public surface (Bus, Subscription,
// WorkerPool via bus.workers): wrong types, null, NaN, negative and huge numbers and
// unknown option names. Every row must fail with ERR_INVALID_ARGUMENT, thrown or
// rejected, never a plain TypeError, and must leave the bus working. The AIClient's
// table is test/ai/options-surface.test.ts.
import { afterAll, describe, expect, it } from 'vitest';
import { Bus, MyelinError } from '../lib/index.js';

const handler = new URL('./fixtures/pool-handler.mjs', import.meta.url);
const bus = new Bus();
const sub = bus.subscribe('surface.ok', () => {});
afterAll(() => bus.close());

type Row = [string, () => unknown];
const noop = () => {};

const rows: Row[] = [
  // new Bus(options)
  ['Bus(null)', () => new Bus(null as never)],
  ['Bus(42)', () => new Bus(42 as never)],
  ['Bus([])', () => new Bus([] as never)],
  ['Bus({ capacity: NaN })', () => new Bus({ capacity: NaN })],
  ['Bus({ capacity: -1 })', () => new Bus({ capacity: -1 })],
  ['Bus({ capacity: 0 })', () => new Bus({ capacity: 0 })],
  ['Bus({ capacity: 1.5 })', () => new Bus({ capacity: 1.5 })],
  ['Bus({ capacity: 2 ** 40 })', () => new Bus({ capacity: 2 ** 40 })],
  ['Bus({ capacity: "10" })', () => new Bus({ capacity: '10' as never })],
  ['Bus({ overflow: "block" })', () => new Bus({ overflow: 'block' as never })],
  ['Bus({ overflow: null })', () => new Bus({ overflow: null as never })],
  ['Bus({ capacty: 10 }) (typo)', () => new Bus({ capacty: 10 } as never)],
  ['Bus({ metrics: {} })', () => new Bus({ metrics: {} as never })],
  ['Bus({ metrics: null })', () => new Bus({ metrics: null as never })],
  ['Bus({ transport: { kind: "kafka" } })', () => new Bus({ transport: { kind: 'kafka' } as never })],
  // publish
  ['publish(s, d, null)', () => bus.publish('surface.ok', 1, null as never)],
  ['publish(s, d, 5)', () => bus.publish('surface.ok', 1, 5 as never)],
  ['publish(s, d, { priority: "urgent" })', () => bus.publish('surface.ok', 1, { priority: 'urgent' as never })],
  ['publish(s, d, { priority: null })', () => bus.publish('surface.ok', 1, { priority: null as never })],
  ['publish(s, d, { priority: "toString" })', () => bus.publish('surface.ok', 1, { priority: 'toString' as never })],
  ['publish(s, d, { key: 5 })', () => bus.publish('surface.ok', 1, { key: 5 as never })],
  ['publish(s, d, { key: null })', () => bus.publish('surface.ok', 1, { key: null as never })],
  ['publish(s, d, { headers: null })', () => bus.publish('surface.ok', 1, { headers: null as never })],
  ['publish(s, d, { headers: [] })', () => bus.publish('surface.ok', 1, { headers: [] as never })],
  ['publish(s, d, { headers: { a: 1 } })', () => bus.publish('surface.ok', 1, { headers: { a: 1 } as never })],
  ['publish(s, d, { prioirty: "low" }) (typo)', () => bus.publish('surface.ok', 1, { prioirty: 'low' } as never)],
  ['publish(null)', () => bus.publish(null as never, 1)],
  ['publish(42)', () => bus.publish(42 as never, 1)],
  ['publish("a..b")', () => bus.publish('a..b', 1)],
  ['publish("a.*") (a wildcard)', () => bus.publish('a.*', 1)],
  // publishAsync
  ['publishAsync(s, d, null)', () => bus.publishAsync('surface.ok', 1, null as never)],
  ['publishAsync(null)', () => bus.publishAsync(null as never, 1)],
  ['publishAsync(s, d, { key: {} })', () => bus.publishAsync('surface.ok', 1, { key: {} as never })],
  // publishBatch
  ['publishBatch(null)', () => bus.publishBatch(null as never)],
  ['publishBatch({})', () => bus.publishBatch({} as never)],
  ['publishBatch([null])', () => bus.publishBatch([null as never])],
  ['publishBatch([{ subject: 5 }])', () => bus.publishBatch([{ subject: 5 as never, data: 1 }])],
  ['publishBatch([{ ..., priority: 1 }])', () => bus.publishBatch([{ subject: 'surface.ok', data: 1, priority: 1 as never }])],
  ['publishBatch([{ ..., extra: 1 }]) (unknown)', () => bus.publishBatch([{ subject: 'surface.ok', data: 1, extra: 1 } as never])],
  // subscribe
  ['subscribe(null)', () => bus.subscribe(null as never, noop)],
  ['subscribe("a..b")', () => bus.subscribe('a..b', noop)],
  ['subscribe(p, "handler")', () => bus.subscribe('surface.x', 'handler' as never)],
  ['subscribe(p, null)', () => bus.subscribe('surface.x', null as never)],
  ['subscribe(p, h, null)', () => bus.subscribe('surface.x', noop, null as never)],
  ['subscribe(p, h, { concurrency: 0 })', () => bus.subscribe('surface.x', noop, { concurrency: 0 })],
  ['subscribe(p, h, { concurrency: -1 })', () => bus.subscribe('surface.x', noop, { concurrency: -1 })],
  ['subscribe(p, h, { concurrency: NaN })', () => bus.subscribe('surface.x', noop, { concurrency: NaN })],
  ['subscribe(p, h, { concurrency: 2 ** 40 })', () => bus.subscribe('surface.x', noop, { concurrency: 2 ** 40 })],
  ['subscribe(p, h, { concurrency: Infinity })', () => bus.subscribe('surface.x', noop, { concurrency: Infinity })],
  ['subscribe(p, h, { queue: "" })', () => bus.subscribe('surface.x', noop, { queue: '' })],
  ['subscribe(p, h, { queue: 5 })', () => bus.subscribe('surface.x', noop, { queue: 5 as never })],
  ['subscribe(p, h, { signal: {} })', () => bus.subscribe('surface.x', noop, { signal: {} as never })],
  ['subscribe(p, h, { concurency: 2 }) (typo)', () => bus.subscribe('surface.x', noop, { concurency: 2 } as never)],
  // Subscription
  ['iterating a subscription with a handler', () => sub[Symbol.asyncIterator]()],
  // request
  ['request(s, d, null)', () => bus.request('surface.ok', 1, null as never)],
  ['request(s, d, 5)', () => bus.request('surface.ok', 1, 5 as never)],
  ['request(null)', () => bus.request(null as never, 1)],
  ['request(s, d, { timeoutMs: NaN })', () => bus.request('surface.ok', 1, { timeoutMs: NaN })],
  ['request(s, d, { timeoutMs: -1 })', () => bus.request('surface.ok', 1, { timeoutMs: -1 })],
  ['request(s, d, { timeoutMs: 0 })', () => bus.request('surface.ok', 1, { timeoutMs: 0 })],
  ['request(s, d, { timeoutMs: Infinity })', () => bus.request('surface.ok', 1, { timeoutMs: Infinity })],
  ['request(s, d, { timeoutMs: 2 ** 40 })', () => bus.request('surface.ok', 1, { timeoutMs: 2 ** 40 })],
  ['request(s, d, { timeoutMs: "5" })', () => bus.request('surface.ok', 1, { timeoutMs: '5' as never })],
  ['request(s, d, { signal: 1 })', () => bus.request('surface.ok', 1, { signal: 1 as never })],
  ['request(s, d, { priority: "x" })', () => bus.request('surface.ok', 1, { priority: 'x' as never })],
  ['request(s, d, { timeout: 5 }) (typo)', () => bus.request('surface.ok', 1, { timeout: 5 } as never)],
  // workers (WorkerPool's options): none of these starts a thread
  ['workers(url, null)', () => bus.workers(handler, null as never)],
  ['workers(url, {})', () => bus.workers(handler, {} as never)],
  ['workers(null, opts)', () => bus.workers(null as never, { subjects: 'x' })],
  ['workers("", opts)', () => bus.workers('', { subjects: 'x' })],
  ['workers(url, { subjects: [] })', () => bus.workers(handler, { subjects: [] })],
  ['workers(url, { subjects: null })', () => bus.workers(handler, { subjects: null as never })],
  ['workers(url, { subjects: [5] })', () => bus.workers(handler, { subjects: [5 as never] })],
  ['workers(url, { subjects: "a..b" })', () => bus.workers(handler, { subjects: 'a..b' })],
  ['workers(url, { threads: 0 })', () => bus.workers(handler, { subjects: 'x', threads: 0 })],
  ['workers(url, { threads: -1 })', () => bus.workers(handler, { subjects: 'x', threads: -1 })],
  ['workers(url, { threads: NaN })', () => bus.workers(handler, { subjects: 'x', threads: NaN })],
  ['workers(url, { threads: 1e6 })', () => bus.workers(handler, { subjects: 'x', threads: 1e6 })],
  ['workers(url, { ringBytes: 1000 })', () => bus.workers(handler, { subjects: 'x', ringBytes: 1000 })],
  ['workers(url, { ringBytes: 2 ** 40 })', () => bus.workers(handler, { subjects: 'x', ringBytes: 2 ** 40 })],
  ['workers(url, { pin: 1 })', () => bus.workers(handler, { subjects: 'x', pin: 1 as never })],
  ['workers(url, { queue: null })', () => bus.workers(handler, { subjects: 'x', queue: null as never })],
  ['workers(url, { threads: null })', () => bus.workers(handler, { subjects: 'x', threads: null as never })],
  ['workers(url, { ringBytes: null })', () => bus.workers(handler, { subjects: 'x', ringBytes: null as never })],
  ['Bus({ capacity: null })', () => new Bus({ capacity: null as never })],
  ['request(s, d, { timeoutMs: null })', () => bus.request('surface.ok', 1, { timeoutMs: null as never })],
  ['workers(url, { thread: 2 }) (typo)', () => bus.workers(handler, { subjects: 'x', thread: 2 } as never)],
];

describe('the bus answers every wrong argument with ERR_INVALID_ARGUMENT', () => {
  it.each(rows)('%s', async (_name, call) => {
    let err: unknown;
    try {
      await call();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MyelinError);
    expect((err as MyelinError).code).toBe('ERR_INVALID_ARGUMENT');
  });

  it('still works after all of them, with nothing published by the bad calls', async () => {
    const s = bus.stats();
    expect(s.published, JSON.stringify(s)).toBe(0);
    let n = 0;
    bus.subscribe('surface.after', () => void n++);
    expect(bus.publish('surface.after', 1)).toBe(true);
    await bus.drain();
    expect(n).toBe(1);
  });
});
