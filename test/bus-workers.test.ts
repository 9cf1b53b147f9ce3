import { describe, expect, it } from 'vitest';
import { Bus, type MyelinError, type Overflow } from '../lib/index.js';
import { hashKey } from '../lib/bus/route-table.js';
import { addsUp, expectRejectCode } from './helpers.js';

const handler = new URL('./fixtures/pool-handler.mjs', import.meta.url);
const loadHandler = new URL('./fixtures/load-handler.mjs', import.meta.url);


describe('Bus worker pools', () => {
  it('answers requests from worker threads and publishes back through ctx', async () => {
    const bus = new Bus();
    const pool = await bus.workers(handler, { threads: 2, subjects: 'pool.>' });
    const r = (await bus.request('pool.echo', { a: 1 })) as { data: unknown; thread: number };
    expect(r.data).toEqual({ a: 1 });
    expect(r.thread).toBeGreaterThan(0); // not the main thread
    expect(await bus.request('pool.async', 'later')).toBe('later');
    expect(await bus.request('pool.bytes', new Uint8Array(1000))).toBe(1000);
    expect(await bus.request('pool.bytes', new Uint8Array(0))).toBe(0);
    expect(pool.stats().threads).toBe(2);
    await bus.close();
  });

  it('carries byte payloads beside objects in one batch, each with its own type and bytes', async () => {
    const bus = new Bus();
    await bus.workers(handler, { threads: 1, subjects: 'pool.kind' });
    const payloads: unknown[] = [
      new Uint8Array([1, 2, 3, 4]),
      { qty: 2 },
      Buffer.from([9, 8, 7]),
      new Uint8Array(0),
      Buffer.alloc(5000, 1), // larger than the Buffer pool's slab
      new Uint8Array(new ArrayBuffer(16), 4, 8).fill(3), // a view at an offset
    ];
    // Published together, so they cross in one batch record.
    const replies = await Promise.all(payloads.map((p) => bus.request('pool.kind', p)));
    expect(replies).toEqual([
      { buffer: false, length: 4, sum: 10, head: [1, 2, 3] },
      { object: { qty: 2 } },
      { buffer: true, length: 3, sum: 24, head: [9, 8, 7] },
      { buffer: false, length: 0, sum: 0, head: [] },
      { buffer: true, length: 5000, sum: 5000, head: [1, 1, 1] },
      { buffer: false, length: 8, sum: 24, head: [3, 3, 3] },
    ]);
    await bus.close();
  });

  it('keeps per-key order and sends one key to one thread', async () => {
    const bus = new Bus();
    await bus.workers(handler, { threads: 3, subjects: 'pool.order' });
    const seen = new Map<string, { n: number[]; threads: Set<number> }>();
    bus.subscribe('pool.seen', (ev) => {
      const d = ev.data as { key: string; n: number; thread: number };
      const e = seen.get(d.key) ?? seen.set(d.key, { n: [], threads: new Set() }).get(d.key)!;
      e.n.push(d.n);
      e.threads.add(d.thread);
    });
    for (let i = 0; i < 3000; i++) bus.publish('pool.order', i, { key: `k${i % 11}` });
    await bus.drain();
    expect(seen.size).toBe(11);
    for (const [, e] of seen) {
      expect(e.n).toEqual([...e.n].sort((a, b) => a - b));
      expect(e.threads.size).toBe(1);
    }
    expect([...seen.values()].reduce((a, e) => a + e.n.length, 0)).toBe(3000);
    // Latency is recorded once per delivery: by the workers at handler start for the
    // 3,000 pool events, on the main thread for the 3,000 'pool.seen' events.
    expect(bus.stats().latencyUs.count).toBe(6000);
    addsUp(bus);
    await bus.close();
  });

  it('dead-letters handler errors and data that cannot cross threads', async () => {
    const bus = new Bus();
    await bus.workers(handler, { threads: 1, subjects: 'pool.>' });
    const dead: string[] = [];
    bus.subscribe('$DLQ.>', (ev) => void dead.push(`${ev.subject}: ${(ev.data as { error: { message: string } }).error.message}`));
    bus.publish('pool.fail', 5);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    bus.publish('pool.echo', cyclic);
    bus.publish('pool.echo', { f: () => 1 });
    await bus.drain();
    expect(dead.some((d) => d === '$DLQ.pool.fail: failed on 5')).toBe(true);
    expect(dead.filter((d) => d.startsWith('$DLQ.pool.echo: ') && /cannot cross to another thread/.test(d)).length).toBe(2);
    expect(bus.stats().failed).toBe(3);
    addsUp(bus);
    await bus.close();
  });

  it('fails the in-flight events of a worker that exits mid-batch, then restarts it', async () => {
    const bus = new Bus();
    const pool = await bus.workers(handler, { threads: 1, subjects: 'pool.>' });
    const dead: string[] = [];
    bus.subscribe('$DLQ.>', (ev) => void dead.push((ev.data as { error: { message: string; code?: string } }).error.code ?? ''));
    for (let i = 0; i < 50; i++) bus.publish('pool.exit', 'fine');
    bus.publish('pool.exit', 'now');
    for (let i = 0; i < 50; i++) bus.publish('pool.exit', 'fine');
    await bus.drain();
    const s = bus.stats();
    expect(dead.length).toBeGreaterThanOrEqual(1);
    expect(dead.every((c) => c === 'ERR_WORKER_EXITED')).toBe(true);
    expect(s.failed).toBe(dead.length);
    expect(s.delivered + s.failed).toBe(101 + dead.length);
    expect(pool.stats().restarts).toBe(1);
    expect(await bus.request('pool.exit', 'fine')).toBe('ok'); // the replacement works
    addsUp(bus);
    await bus.close();
  });

  it('dead-letters an event too large for the ring and keeps going', async () => {
    const bus = new Bus();
    await bus.workers(handler, { threads: 1, subjects: 'pool.>', ringBytes: 64 * 1024 });
    const dead: string[] = [];
    bus.subscribe('$DLQ.>', (ev) => void dead.push((ev.data as { error: { message: string } }).error.message));
    bus.publish('pool.bytes', new Uint8Array(100 * 1024));
    expect(await bus.request('pool.bytes', new Uint8Array(1000))).toBe(1000);
    await bus.drain();
    expect(dead.length).toBe(1);
    expect(dead[0]).toMatch(/raise ringBytes/);
    addsUp(bus);
    await bus.close();
  });

  it('pins threads to cores when asked', async () => {
    const bus = new Bus();
    const pool = await bus.workers(handler, { threads: 2, subjects: 'pool.pin', pin: true });
    expect(pool.stats().pinned).toEqual(['OK', 'OK']);
    await bus.close();
  });

  it('rejects bad options and a module that fails to load', async () => {
    const bus = new Bus();
    await expectRejectCode(bus.workers(handler, { threads: 0, subjects: 'x' }), 'ERR_INVALID_ARGUMENT');
    await expectRejectCode(bus.workers(handler, { subjects: [] }), 'ERR_INVALID_ARGUMENT');
    await expectRejectCode(bus.workers(handler, { subjects: 'x', ringBytes: 1000 }), 'ERR_INVALID_ARGUMENT');
    await expectRejectCode(bus.workers('', { subjects: 'x' }), 'ERR_INVALID_ARGUMENT');
    const err: MyelinError = await expectRejectCode(
      bus.workers(new URL('./fixtures/throws-at-load.mjs', import.meta.url), { threads: 1, subjects: 'x' }),
      'ERR_INVALID_ARGUMENT',
    );
    expect(err.message).toMatch(/fails to load/);
    await bus.close();
    await expectRejectCode(bus.workers(handler, { subjects: 'x' }), 'ERR_BUS_CLOSED');
  });
});

describe('Bus load: 4 worker threads, 1,000,000 events, every overflow policy', () => {
  const N = 1_000_000;
  const KEYS = 64;
  for (const overflow of ['wait', 'reject', 'drop-oldest', 'drop-newest'] as Overflow[]) {
    it(`${overflow}: nothing lost or duplicated, per-key order, stats add up`, async () => {
      const bus = new Bus({ capacity: 4096, overflow });
      const pool = await bus.workers(loadHandler, { threads: 4, subjects: ['load.item', 'load.flush'] });
      const seen = new Uint8Array(N);
      let dup = 0;
      bus.subscribe('acks.load', (ev) => {
        for (const seq of ev.data as Uint32Array) if (seen[seq]++ !== 0) dup++;
      });
      const counters = new Array<number>(KEYS).fill(0);
      let rejected = 0;
      for (let seq = 0; seq < N; seq++) {
        const k = seq % KEYS;
        const data = { seq, n: counters[k]++ };
        const opts = { key: `key-${k}` };
        if (overflow === 'wait') {
          if (!bus.publish('load.item', data, opts)) await bus.publishAsync('load.item', data, opts);
        } else if (overflow === 'reject') {
          for (;;) {
            try {
              bus.publish('load.item', data, opts);
              break;
            } catch (err) {
              expect((err as MyelinError).code).toBe('ERR_BUS_FULL');
              rejected++;
              await new Promise((r) => setImmediate(r));
            }
          }
        } else {
          bus.publish('load.item', data, opts);
          if ((seq & 4095) === 0) await new Promise((r) => setImmediate(r));
        }
      }
      await bus.drain();
      // Flush each worker's pending acks: pick a key that lands on each thread.
      const flushKeys: string[] = [];
      for (let i = 0; flushKeys.length < 4; i++) {
        const key = `flush-${i}`;
        if (!flushKeys.some((k) => hashKey(k) % 4 === hashKey(key) % 4)) flushKeys.push(key);
      }
      for (const key of flushKeys) await bus.request('load.flush', null, { key, timeoutMs: 30_000 });
      await bus.drain();
      const s = bus.stats();
      const acked = seen.reduce((a, v) => a + (v > 0 ? 1 : 0), 0);
      expect(dup).toBe(0);
      expect(s.failed).toBe(0); // a per-key order violation in a worker would fail an event
      expect(s.queued).toBe(0);
      expect(s.inFlight).toBe(0);
      addsUp(bus);
      expect(s.lanes.critical.dropped).toBe(0); // acks ride the critical lane
      const itemsDropped = s.dropped;
      expect(acked + itemsDropped).toBe(N);
      if (overflow === 'wait' || overflow === 'reject') expect(itemsDropped).toBe(0);
      // The publish loop runs without yielding until the first rejection, so a 4,096-event
      // lane must have refused some.
      if (overflow === 'reject') expect(rejected).toBeGreaterThan(0);
      expect(pool.stats().restarts).toBe(0);
      await bus.close();
    }, 180_000);
  }
});
