// The publish-time path to a worker pool (lib/bus/bus.ts #publishDirect, worker-pool.ts
// #accept): a route whose only target is one pool takes an event straight into the
// pool's next batch while the lanes are empty. These tests check that it keeps the
// lanes' rules: priorities, per-key order (also across a worker crash), overflow and
// its accounting, JSON bytes, and that stats() adds up.
import { describe, expect, it } from 'vitest';
import { Bus, type MyelinError, type Overflow } from '../lib/index.js';
import { addsUp } from './helpers.js';

const handler = new URL('./fixtures/pool-path-handler.mjs', import.meta.url);
const loadHandler = new URL('./fixtures/load-handler.mjs', import.meta.url);

interface Seen {
  key: string | null;
  n: number;
  priority: string;
  thread: number;
}

/** What every thread of a one-subject pool recorded, in the order each handled it. */
async function dump(bus: Bus, threads: number): Promise<Seen[]> {
  const out: Seen[] = [];
  // a keyless request goes to the least-loaded thread: ask until each one answered
  const answered = new Set<number>();
  for (let k = 0; answered.size < threads && k < 64; k++) {
    for (const s of (await bus.request('path.dump', null, { key: `dump-${k}`, timeoutMs: 30_000 })) as Seen[]) {
      out.push(s);
      answered.add(s.thread);
    }
    if (threads === 1) break;
  }
  return out;
}

/** Asserts that each key's events arrived in increasing n. */
function inKeyOrder(seen: Seen[]): void {
  const last = new Map<string | null, number>();
  for (const s of seen) {
    const prev = last.get(s.key);
    if (prev !== undefined) expect(s.n, `key ${s.key}: ${s.n} after ${prev}`).toBeGreaterThan(prev);
    last.set(s.key, s.n);
  }
}

describe('Bus: the publish-time path to a worker pool', () => {
  it('takes an event into the pool at publish time only while every lane is empty', async () => {
    const bus = new Bus();
    await bus.workers(handler, { threads: 1, subjects: ['path.ev', 'path.dump'] });
    let js = 0;
    bus.subscribe('js.x', () => {
      js++;
    });
    expect(bus.publish('path.ev', { n: 0 })).toBe(true);
    // no lane holds it: it is in flight from the moment it is published
    expect(bus.stats()).toMatchObject({ published: 1, queued: 0, inFlight: 1 });
    addsUp(bus);
    bus.publish('js.x', 1); // now a lane holds an event...
    bus.publish('path.ev', { n: 1 }); // ...so this one queues behind it
    expect(bus.stats()).toMatchObject({ published: 3, queued: 2, inFlight: 1 });
    addsUp(bus);
    await bus.drain();
    expect(js).toBe(1);
    expect((await dump(bus, 1)).map((s) => s.n)).toEqual([0, 1]);
    expect(bus.stats()).toMatchObject({ delivered: 4, failed: 0, queued: 0, inFlight: 0 });
    await bus.close();
  });

  it('writes a burst highest priority first, but never an event before an earlier one of its key', async () => {
    const bus = new Bus();
    await bus.workers(handler, { threads: 1, subjects: ['path.ev', 'path.dump'] });
    bus.publish('path.ev', { n: 0 }, { priority: 'low', key: 'a' });
    bus.publish('path.ev', { n: 1 }, { priority: 'low', key: 'b' });
    bus.publish('path.ev', { n: 2 }, { priority: 'critical', key: 'a' }); // may not pass n 0
    bus.publish('path.ev', { n: 3 }, { priority: 'critical', key: 'c' });
    bus.publish('path.ev', { n: 4 }, { priority: 'high' });
    expect(bus.stats().queued).toBe(0); // all five took the publish-time path
    await bus.drain();
    const seen = await dump(bus, 1);
    expect(seen.map((s) => s.n)).toEqual([3, 4, 0, 1, 2]);
    expect(seen.map((s) => s.priority)).toEqual(['critical', 'high', 'low', 'low', 'critical']);
    addsUp(bus);
    await bus.close();
  });

  it('keeps per-key order when events switch between the publish-time path and the lanes', async () => {
    const bus = new Bus({ capacity: 512 });
    const threads = 2;
    await bus.workers(handler, { threads, subjects: ['path.ev', 'path.dump'] });
    bus.subscribe('js.x', () => undefined);
    const priorities = ['critical', 'high', 'normal', 'low'] as const;
    const N = 20_000;
    let refused = 0;
    for (let i = 0; i < N; i++) {
      const opts = { key: `k${i % 13}`, priority: priorities[(i * 7) % 4] };
      // a JS event now and then fills a lane, so the pool events after it queue
      if (i % 37 === 0) bus.publish('js.x', i);
      while (!bus.publish('path.ev', { n: i }, opts)) {
        refused++;
        await bus.publishAsync('path.ev', { n: i }, opts);
        break;
      }
      if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
    }
    addsUp(bus);
    await bus.drain();
    const seen = await dump(bus, threads);
    expect(seen.length).toBe(N);
    inKeyOrder(seen);
    const s = bus.stats();
    expect(s.failed).toBe(0);
    expect(s.dropped).toBe(0);
    addsUp(bus);
    await bus.close();
  });

  it('fails each event in flight on a worker that exits mid-batch with ERR_WORKER_EXITED, dead-letters it, and keeps key order after the restart', async () => {
    const bus = new Bus();
    const pool = await bus.workers(handler, { threads: 1, subjects: ['path.ev', 'path.dump'] });
    const letters: Array<{ code: string | undefined; n: number; key: string | undefined }> = [];
    bus.subscribe('$DLQ.path.ev', (ev) => {
      const d = ev.data as { error: { code?: string }; event: { data: { n: number }; key?: string } };
      letters.push({ code: d.error.code, n: d.event.data.n, key: d.event.key });
    });
    // One burst, one batch: the worker exits halfway through it.
    const N = 1000;
    for (let i = 0; i < N; i++) {
      bus.publish('path.ev', i === 500 ? { n: i, exit: true } : { n: i }, { key: `k${i % 5}` });
    }
    expect(bus.stats().queued).toBe(0); // the whole burst took the publish-time path
    await bus.drain();
    expect(pool.stats().restarts).toBe(1);
    const failed = bus.stats().failed;
    // Each event the dead worker had not counted off by DONE failed, once, with its
    // own dead letter; the one that crashed it is among them.
    expect(failed).toBeGreaterThan(0);
    expect(letters).toHaveLength(failed);
    expect(letters.every((l) => l.code === 'ERR_WORKER_EXITED')).toBe(true);
    expect(letters.some((l) => l.n === 500)).toBe(true);
    expect(new Set(letters.map((l) => l.n)).size).toBe(failed);
    expect(bus.stats().delivered).toBe(N); // the N - failed events handled, and the failed dead letters
    addsUp(bus);
    // The restarted worker takes the same keys, in order.
    for (let i = N; i < 2 * N; i++) bus.publish('path.ev', { n: i }, { key: `k${i % 5}` });
    await bus.drain();
    const seen = await dump(bus, 1);
    expect(seen.map((x) => x.n)).toEqual(Array.from({ length: N }, (_, i) => N + i));
    expect(bus.stats().failed).toBe(failed);
    addsUp(bus);
    await bus.close();
  });

  it('carries JSON bytes on the publish-time path and dead-letters invalid JSON as its bytes', async () => {
    const bus = new Bus();
    await bus.workers(handler, { threads: 1, subjects: ['path.json', 'path.dump'] });
    const letters: Array<{ code: string | undefined; data: unknown; contentType: unknown }> = [];
    bus.subscribe('$DLQ.path.json', (ev) => {
      const d = ev.data as { error: { code?: string }; event: { data: unknown; contentType?: string } };
      letters.push({ code: d.error.code, data: d.event.data, contentType: d.event.contentType });
    });
    const json = { contentType: 'application/json' } as const;
    bus.publish('path.json', Buffer.from('{"n":1}'), { ...json, key: 'j' });
    bus.publish('path.json', new TextEncoder().encode('{"n":'), json);
    bus.publish('path.json', new TextEncoder().encode('{"n":2}'), { ...json, key: 'j', priority: 'low' });
    expect(bus.stats()).toMatchObject({ queued: 0, inFlight: 3 });
    await bus.drain();
    const seen = await dump(bus, 1);
    expect(seen.map((s) => s.n)).toEqual([1, 2]);
    expect(letters).toHaveLength(1);
    expect(letters[0].code).toBe('ERR_INVALID_ARGUMENT');
    expect(letters[0].contentType).toBe('application/json');
    expect(Buffer.from(letters[0].data as Uint8Array).toString()).toBe('{"n":');
    expect(bus.stats().failed).toBe(1);
    addsUp(bus);
    await bus.close();
  });
});

describe('Bus lanes: per-key order across priorities', () => {
  it('a later event of a key, of any priority, never overtakes an earlier one (JS handler)', async () => {
    const bus = new Bus();
    const seen: Seen[] = [];
    bus.subscribe('lane.ev', (ev) => {
      seen.push({ key: ev.key ?? null, n: (ev.data as { n: number }).n, priority: ev.priority, thread: 0 });
    });
    // One burst, delivered over several weighted cycles (512 critical, then 64 low
    // per cycle): key a's low event would be served in the first cycle, before key
    // a's critical event deep in its lane, unless it joins that lane.
    const N = 2002;
    for (let i = 0; i < N - 2; i++) bus.publish('lane.ev', { n: i }, { priority: 'critical' });
    bus.publish('lane.ev', { n: N - 2 }, { key: 'a', priority: 'critical' });
    bus.publish('lane.ev', { n: N - 1 }, { key: 'a', priority: 'low' });
    await bus.drain();
    expect(seen).toHaveLength(N);
    const a = seen.filter((s) => s.key === 'a');
    expect(a.map((s) => s.n)).toEqual([N - 2, N - 1]);
    addsUp(bus);
    await bus.close();
  });
});

describe('Bus: the publish-time pool path under each overflow policy', () => {
  const N = 60_000;
  const KEYS = 16;
  for (const overflow of ['wait', 'reject', 'drop-oldest', 'drop-newest'] as Overflow[]) {
    it(`${overflow}: a burst past the pool's bound falls back to the lanes; nothing lost, stats add up`, async () => {
      const bus = new Bus({ capacity: 1024, overflow });
      // one thread: its bound is 16,384 events waiting for the ring, then the lanes take over
      await bus.workers(loadHandler, { threads: 1, subjects: ['load.item', 'load.flush'], ringBytes: 1 << 16 });
      const seen = new Uint8Array(N);
      let dup = 0;
      bus.subscribe('acks.load', (ev) => {
        for (const seq of ev.data as Uint32Array) if (seen[seq]++ !== 0) dup++;
      });
      const counters = new Array<number>(KEYS).fill(0);
      let refused = 0;
      let direct = 0;
      for (let seq = 0; seq < N; seq++) {
        const k = seq % KEYS;
        const data = { seq, n: counters[k]++ };
        const opts = { key: `key-${k}` };
        const before = bus.stats().queued;
        let ok: boolean;
        try {
          ok = bus.publish('load.item', data, opts);
        } catch (err) {
          expect((err as MyelinError).code).toBe('ERR_BUS_FULL');
          ok = false;
        }
        if (seq < 20_000 && ok && bus.stats().queued === before) direct++;
        if (!ok) {
          refused++;
          if (overflow === 'wait') await bus.publishAsync('load.item', data, opts);
          // under 'reject', let the lanes drain and publish it again
          else if (overflow === 'reject') {
            for (;;) {
              await new Promise((r) => setImmediate(r));
              try {
                bus.publish('load.item', data, opts);
                break;
              } catch (err) {
                expect((err as MyelinError).code).toBe('ERR_BUS_FULL');
              }
            }
          }
        }
        if (seq % 997 === 0) addsUp(bus);
        if ((seq & 32767) === 32767) await new Promise((r) => setImmediate(r));
      }
      expect(direct).toBeGreaterThan(1000); // the publish-time path was taken...
      expect(refused + bus.stats().dropped).toBeGreaterThan(0); // ...and the burst outgrew it and the lane
      await bus.drain();
      await bus.request('load.flush', null, { timeoutMs: 30_000 });
      await bus.drain();
      const s = bus.stats();
      const acked = seen.reduce((a, v) => a + (v > 0 ? 1 : 0), 0);
      expect(dup).toBe(0);
      expect(s.failed).toBe(0); // a per-key order violation in the worker fails an event
      expect(s.queued + s.inFlight).toBe(0);
      addsUp(bus);
      if (overflow === 'wait' || overflow === 'reject') {
        expect(s.dropped).toBe(0);
        expect(acked).toBe(N);
      } else {
        expect(s.dropped).toBeGreaterThan(0);
        expect(acked + s.dropped).toBe(N);
        expect(s.lanes.normal.dropped).toBe(s.dropped);
      }
      await bus.close();
    }, 120_000);
  }
});
