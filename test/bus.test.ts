import diagnostics from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { Bus, type BusEvent, MyelinError, type Overflow } from '../lib/index.js';
import { addsUp, expectCode, expectRejectCode } from './helpers.js';


describe('Bus subjects', () => {
  const table: Array<[string, string, boolean]> = [
    ['orders.created', 'orders.created', true],
    ['orders.created', 'orders.updated', false],
    ['orders.*', 'orders.created', true],
    ['orders.*', 'orders', false],
    ['orders.*', 'orders.eu.created', false],
    ['orders.>', 'orders.eu.created', true],
    ['orders.>', 'orders', false],
    ['*.created', 'orders.created', true],
    ['>', 'anything.at.all', true],
    ['a.*.c', 'a.b.c', true],
    ['a.*.c', 'a.b.d', false],
    ['tenant.*.audit.>', 'tenant.7.audit.login.ok', true],
  ];
  it.each(table)('%s receives %s: %s', async (pattern, subject, match) => {
    const bus = new Bus();
    const got: string[] = [];
    bus.subscribe(pattern, (ev) => void got.push(ev.subject));
    bus.publish(subject, 1);
    await bus.drain();
    expect(got).toEqual(match ? [subject] : []);
    addsUp(bus);
    await bus.close();
  });

  it('rejects bad subjects and patterns with ERR_INVALID_ARGUMENT', async () => {
    const bus = new Bus();
    for (const bad of ['', 'a..b', '.a', 'a.', 'a b', 'a.>.b', 'x'.repeat(1025), 'a\0b']) {
      expectCode(() => bus.subscribe(bad, () => {}), 'ERR_INVALID_ARGUMENT');
      expectCode(() => bus.publish(bad, 1), 'ERR_INVALID_ARGUMENT');
    }
    for (const wildcard of ['a.*', 'a.>', '*', '>']) expectCode(() => bus.publish(wildcard, 1), 'ERR_INVALID_ARGUMENT');
    expectCode(() => bus.publish(42 as never, 1), 'ERR_INVALID_ARGUMENT');
    // A lone surrogate is not a crash: it routes as the replacement character's bytes.
    expect(bus.publish('lone.\ud800', 1)).toBe(true);
    expectCode(() => bus.publish('a', 1, { priority: 'urgent' as never }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => bus.publish('a', 1, { key: 5 as never }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => bus.subscribe('a', 'nope' as never), 'ERR_INVALID_ARGUMENT');
    expectCode(() => bus.subscribe('a', () => {}, { concurrency: 0 }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => bus.subscribe('a', () => {}, { concurrency: NaN }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => bus.subscribe('a', () => {}, { queue: '' }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new Bus({ capacity: 0 }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new Bus({ capacity: -1 }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new Bus({ capacity: 1.5 }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new Bus({ overflow: 'explode' as never }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new Bus({ transport: { kind: 'nats' } }), 'ERR_INVALID_ARGUMENT', /transport.servers/);
    await bus.close();
  });

  it('delivers the documented event shape', async () => {
    const bus = new Bus();
    const seen: BusEvent[] = [];
    bus.subscribe('shape.>', (ev) => void seen.push(ev));
    const before = Date.now();
    bus.publish('shape.a', { x: 1 }, { key: 'k1', priority: 'high', headers: { trace: 't' } });
    bus.publish('shape.b', new Uint8Array([1, 2, 3]));
    await bus.drain();
    expect(seen[0]).toMatchObject({ subject: 'shape.a', data: { x: 1 }, key: 'k1', priority: 'high', headers: { trace: 't' } });
    expect(seen[1].priority).toBe('normal');
    expect(seen[1].data).toBeInstanceOf(Uint8Array);
    expect(seen[0].id).not.toBe(seen[1].id);
    expect(seen[0].time).toBeGreaterThanOrEqual(before - 1);
    expect(seen[0].time).toBeLessThanOrEqual(Date.now() + 1);
    await bus.close();
  });
});

describe('Bus priorities', () => {
  it('serves higher lanes first and never starves lower ones', async () => {
    const bus = new Bus();
    const order: string[] = [];
    bus.subscribe('p', (ev) => void order.push(ev.priority));
    for (let i = 0; i < 2000; i++) {
      bus.publish('p', i, { priority: 'low' });
      bus.publish('p', i, { priority: 'normal' });
      bus.publish('p', i, { priority: 'high' });
      bus.publish('p', i, { priority: 'critical' });
    }
    await bus.drain();
    expect(order[0]).toBe('critical');
    // The first round serves 8:4:2:1 x 64, critical first.
    expect(order.slice(0, 512).every((p) => p === 'critical')).toBe(true);
    const firstLow = order.indexOf('low');
    expect(firstLow).toBeGreaterThan(0);
    expect(firstLow).toBeLessThan(order.lastIndexOf('critical')); // low was served while critical was still busy
    const share = order.slice(0, 960).filter((p) => p === 'low').length;
    expect(share).toBe(64);
    addsUp(bus);
    await bus.close();
  });
});

describe('Bus per-key order across priorities', () => {
  it('never lets a higher-priority event overtake an earlier one of its key', async () => {
    const bus = new Bus();
    const got: string[] = [];
    bus.subscribe('ord', (ev) => void got.push(`${ev.key ?? '-'}:${ev.data}:${ev.priority}`));
    bus.publish('ord', 1, { key: 'a', priority: 'low' });
    bus.publish('ord', 2, { key: 'a', priority: 'critical' }); // joins 'low' behind 1
    bus.publish('ord', 3, { key: 'b', priority: 'critical' }); // another key keeps its lane
    bus.publish('ord', 4, { priority: 'high' });
    await bus.drain();
    expect(got).toEqual(['b:3:critical', '-:4:high', 'a:1:low', 'a:2:low']);
    // Once the key has nothing queued, its events get their own priority again.
    bus.publish('ord', 5, { key: 'a', priority: 'critical' });
    await bus.drain();
    expect(got.at(-1)).toBe('a:5:critical');
    addsUp(bus);
    await bus.close();
  });
});

describe('Bus overflow', () => {
  async function fill(overflow: Overflow) {
    const bus = new Bus({ capacity: 4, overflow });
    const got: number[] = [];
    bus.subscribe('o', (ev) => void got.push(ev.data as number));
    const results: boolean[] = [];
    for (let i = 0; i < 6; i++) {
      try {
        results.push(bus.publish('o', i));
      } catch (err) {
        expect((err as MyelinError).code).toBe('ERR_BUS_FULL');
        results.push(false);
      }
    }
    await bus.drain();
    addsUp(bus);
    return { bus, got, results };
  }

  it("'wait' returns false when full and publishAsync waits for room", async () => {
    const { bus, got, results } = await fill('wait');
    expect(results).toEqual([true, true, true, true, false, false]);
    expect(got).toEqual([0, 1, 2, 3]);
    expect(bus.stats().published).toBe(4);
    for (let i = 0; i < 20; i++) await bus.publishAsync('o', 100 + i);
    await bus.drain();
    expect(got.length).toBe(24);
    addsUp(bus);
    await bus.close();
  });

  it("'reject' throws ERR_BUS_FULL", async () => {
    const { bus, got, results } = await fill('reject');
    expect(results).toEqual([true, true, true, true, false, false]);
    expect(got).toEqual([0, 1, 2, 3]);
    await bus.close();
  });

  it("'drop-oldest' drops and counts the oldest", async () => {
    const { bus, got, results } = await fill('drop-oldest');
    expect(results).toEqual([true, true, true, true, true, true]);
    expect(got).toEqual([2, 3, 4, 5]);
    expect(bus.stats()).toMatchObject({ published: 6, dropped: 2, delivered: 4 });
    expect(bus.stats().lanes.normal.dropped).toBe(2);
    await bus.close();
  });

  it("'drop-newest' drops and counts the newest", async () => {
    const { bus, got, results } = await fill('drop-newest');
    expect(results).toEqual([true, true, true, true, false, false]);
    expect(got).toEqual([0, 1, 2, 3]);
    expect(bus.stats()).toMatchObject({ published: 6, dropped: 2, delivered: 4 });
    await bus.close();
  });

  it('counts events nobody subscribed to as dropped (unrouted)', async () => {
    const bus = new Bus();
    bus.publish('nobody.home', 1);
    await bus.drain();
    expect(bus.stats()).toMatchObject({ published: 1, dropped: 1, unrouted: 1 });
    addsUp(bus);
    await bus.close();
  });
});

describe('Bus handlers, order, groups', () => {
  it('keeps per-key order for async handlers with concurrency > 1', async () => {
    const bus = new Bus();
    const seen = new Map<string, number[]>();
    let inflight = 0;
    let maxInflight = 0;
    const keysInFlight = new Set<string>();
    bus.subscribe(
      'k',
      async (ev) => {
        const key = ev.key as string;
        expect(keysInFlight.has(key)).toBe(false);
        keysInFlight.add(key);
        inflight++;
        maxInflight = Math.max(maxInflight, inflight);
        await new Promise((r) => setTimeout(r, (ev.data as number) % 3));
        (seen.get(key) ?? seen.set(key, []).get(key)!).push(ev.data as number);
        keysInFlight.delete(key);
        inflight--;
      },
      { concurrency: 8 },
    );
    for (let i = 0; i < 600; i++) bus.publish('k', i, { key: `key-${i % 10}` });
    await bus.drain();
    expect(maxInflight).toBeGreaterThan(1);
    expect(maxInflight).toBeLessThanOrEqual(8);
    for (const [key, list] of seen) {
      expect(list.length, key).toBe(60);
      expect(list).toEqual([...list].sort((a, b) => a - b));
    }
    expect(bus.stats()).toMatchObject({ delivered: 600, inFlight: 0, queued: 0 });
    await bus.close();
  });

  it('splits events across a queue group, same key to the same member, and fans out to plain subscribers', async () => {
    const bus = new Bus();
    const members = [new Map<string, number>(), new Map<string, number>(), new Map<string, number>()];
    members.forEach((m, i) => bus.subscribe('work.>', (ev) => void m.set(`${ev.key}`, (m.get(`${ev.key}`) ?? 0) + 1 + i * 0), { queue: 'workers' }));
    let all = 0;
    bus.subscribe('work.>', () => void all++);
    for (let i = 0; i < 300; i++) bus.publish('work.item', i, { key: `k${i % 7}` });
    let keyless = 0;
    bus.subscribe('free', () => void keyless++, { queue: 'g' });
    bus.subscribe('free', () => void keyless++, { queue: 'g' });
    for (let i = 0; i < 10; i++) bus.publish('free', i);
    await bus.drain();
    expect(all).toBe(300);
    expect(members.reduce((a, m) => a + [...m.values()].reduce((x, y) => x + y, 0), 0)).toBe(300);
    for (let k = 0; k < 7; k++) expect(members.filter((m) => m.has(`k${k}`)).length).toBe(1);
    expect(keyless).toBe(10);
    await bus.close();
  });

  it('sends throws and rejections to $DLQ.<subject> with the error, and goes on', async () => {
    const bus = new Bus();
    const dead: Array<{ subject: string; message: string; original: unknown }> = [];
    bus.subscribe('$DLQ.>', (ev) => {
      const d = ev.data as { error: { message: string }; event: { data: unknown } };
      dead.push({ subject: ev.subject, message: d.error.message, original: d.event.data });
    });
    bus.subscribe('jobs.sync', (ev) => {
      if (ev.data === 2) throw new Error('sync boom');
    });
    bus.subscribe('jobs.async', async (ev) => {
      if (ev.data === 3) throw new Error('async boom');
    });
    bus.subscribe('jobs.thenable', () => ({ then: (_: unknown, reject: (e: unknown) => void) => reject(new Error('thenable boom')) }));
    for (let i = 0; i < 5; i++) {
      bus.publish('jobs.sync', i);
      bus.publish('jobs.async', i);
    }
    bus.publish('jobs.thenable', 9);
    await bus.drain();
    expect(dead).toEqual(
      expect.arrayContaining([
        { subject: '$DLQ.jobs.sync', message: 'sync boom', original: 2 },
        { subject: '$DLQ.jobs.async', message: 'async boom', original: 3 },
        { subject: '$DLQ.jobs.thenable', message: 'thenable boom', original: 9 },
      ]),
    );
    const s = bus.stats();
    expect(s.failed).toBe(3);
    expect(s.delivered).toBe(8 + 3); // 8 good jobs + 3 dead letters delivered
    addsUp(bus);
    await bus.close();
  });

  it('survives re-entrant publishes 1,000 deep and unsubscribe inside a handler', async () => {
    const bus = new Bus();
    let depth = 0;
    bus.subscribe('deep', (ev) => {
      depth = ev.data as number;
      if (depth < 1000) bus.publish('deep', depth + 1);
    });
    let count = 0;
    const sub = bus.subscribe('once', () => {
      count++;
      sub.unsubscribe();
    });
    for (let i = 0; i < 5; i++) bus.publish('once', i);
    bus.publish('deep', 0);
    await bus.drain();
    expect(depth).toBe(1000);
    expect(count).toBe(1);
    addsUp(bus);
    await bus.close();
  });

  it('delivers to 10,000 subscribers', async () => {
    const bus = new Bus();
    let n = 0;
    for (let i = 0; i < 10_000; i++) bus.subscribe(i % 2 ? 'fan.*' : 'fan.out', () => void n++);
    bus.publish('fan.out', 1);
    await bus.drain();
    expect(n).toBe(10_000);
    expect(bus.stats()).toMatchObject({ delivered: 1, subscriptions: 10_000 });
    await bus.close();
  });

  it('shows a handler that never settles as in flight', async () => {
    const bus = new Bus();
    bus.subscribe('stuck', () => new Promise(() => {}));
    bus.publish('stuck', 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(bus.stats()).toMatchObject({ inFlight: 1, delivered: 0 });
    addsUp(bus);
  });
});

describe('Bus request/reply', () => {
  it('answers with the handler return value, sync or async', async () => {
    const bus = new Bus();
    bus.subscribe('math.add', (ev) => (ev.data as number[])[0] + (ev.data as number[])[1]);
    bus.subscribe('math.slow', async (ev) => {
      await new Promise((r) => setTimeout(r, 5));
      return `slow:${ev.data}`;
    });
    expect(await bus.request('math.add', [2, 3])).toBe(5);
    expect(await bus.request('math.slow', 'x')).toBe('slow:x');
    await bus.close();
  });

  it('fails with ERR_NO_RESPONDERS, ERR_REQUEST_TIMEOUT, ERR_HANDLER_FAILED and ERR_ABORTED', async () => {
    const bus = new Bus();
    await expectRejectCode(bus.request('nobody', 1), 'ERR_NO_RESPONDERS');
    bus.subscribe('silent', () => new Promise(() => {}));
    await expectRejectCode(bus.request('silent', 1, { timeoutMs: 30 }), 'ERR_REQUEST_TIMEOUT');
    bus.subscribe('broken', () => {
      throw new Error('nope');
    });
    const err = await expectRejectCode(bus.request('broken', 1), 'ERR_HANDLER_FAILED');
    expect((err.cause as Error).message).toBe('nope');
    const ac = new AbortController();
    const p = bus.request('silent', 1, { signal: ac.signal });
    ac.abort();
    await expectRejectCode(p, 'ERR_ABORTED');
    await expectRejectCode(bus.request('silent', 1, { timeoutMs: -1 }), 'ERR_INVALID_ARGUMENT');
    await expectRejectCode(bus.request('a.*', 1), 'ERR_INVALID_ARGUMENT');
  });
});

describe('Bus subscription forms and lifecycle', () => {
  it('iterates with for await; break unsubscribes', async () => {
    const bus = new Bus();
    const sub = bus.subscribe('it.>');
    const got: unknown[] = [];
    const loop = (async () => {
      for await (const ev of sub) {
        got.push(ev.data);
        if (got.length === 3) break;
      }
    })();
    for (let i = 0; i < 10; i++) bus.publish('it.x', i);
    await loop;
    await bus.drain();
    expect(got).toEqual([0, 1, 2]);
    expect(bus.stats().subscriptions).toBe(0);
    addsUp(bus);
    await bus.close();
  });

  it('unsubscribes on AbortSignal', async () => {
    const bus = new Bus();
    const ac = new AbortController();
    let n = 0;
    bus.subscribe('sig', () => void n++, { signal: ac.signal });
    bus.publish('sig', 1);
    await bus.drain();
    ac.abort();
    bus.publish('sig', 2);
    await bus.drain();
    expect(n).toBe(1);
    const pre = new AbortController();
    pre.abort();
    bus.subscribe('sig', () => void n++, { signal: pre.signal });
    bus.publish('sig', 3);
    await bus.drain();
    expect(n).toBe(1);
    await bus.close();
  });

  it('sub.drain waits for its in-flight deliveries', async () => {
    const bus = new Bus();
    let done = 0;
    const sub = bus.subscribe('d', async () => {
      await new Promise((r) => setTimeout(r, 10));
      done++;
    }, { concurrency: 4 });
    for (let i = 0; i < 8; i++) bus.publish('d', i);
    await new Promise((r) => setImmediate(r));
    await sub.drain();
    expect(done).toBe(8);
    await bus.close();
  });

  it('close delivers what is queued, then refuses with ERR_BUS_CLOSED; double close is fine', async () => {
    const bus = new Bus();
    let n = 0;
    bus.subscribe('c', () => void n++);
    for (let i = 0; i < 100; i++) bus.publish('c', i);
    const closing = bus.close();
    expectCode(() => bus.publish('c', 1), 'ERR_BUS_CLOSED');
    expectCode(() => bus.publishBatch([{ subject: 'c', data: 1 }]), 'ERR_BUS_CLOSED');
    expectCode(() => bus.subscribe('c', () => {}), 'ERR_BUS_CLOSED');
    await expectRejectCode(bus.request('c', 1), 'ERR_BUS_CLOSED');
    await closing;
    await bus.close();
    expect(n).toBe(100);
  });

  it('publishBatch validates every subject first, then enqueues in order', async () => {
    const bus = new Bus();
    const got: unknown[] = [];
    bus.subscribe('b.*', (ev) => void got.push(ev.data));
    expect(bus.publishBatch([{ subject: 'b.1', data: 1 }, { subject: 'b.2', data: 2, priority: 'low' }])).toBe(2);
    expectCode(() => bus.publishBatch([{ subject: 'b.3', data: 3 }, { subject: 'bad..', data: 4 }]), 'ERR_INVALID_ARGUMENT');
    expectCode(() => bus.publishBatch('x' as never), 'ERR_INVALID_ARGUMENT');
    await bus.drain();
    expect(got).toEqual([1, 2]);
    await bus.close();
  });

  it('reports publish, deliver and fail on diagnostics_channel', async () => {
    const bus = new Bus();
    const seen: string[] = [];
    const on = (name: string) => (msg: unknown) => seen.push(`${name}:${(msg as { subject?: string; event?: { subject: string } }).subject ?? (msg as { event: { subject: string } }).event.subject}`);
    const handlers = ['publish', 'deliver', 'fail'].map((n) => [n, on(n)] as const);
    for (const [n, h] of handlers) diagnostics.subscribe(`myelin:bus:${n}`, h);
    bus.subscribe('diag', () => {
      throw new Error('x');
    });
    bus.publish('diag', 1);
    await bus.drain();
    for (const [n, h] of handlers) diagnostics.unsubscribe(`myelin:bus:${n}`, h);
    expect(seen).toEqual(expect.arrayContaining(['publish:diag', 'deliver:diag', 'fail:diag', 'publish:$DLQ.diag']));
    await bus.close();
  });

  it('measures publish-to-handler latency in the native histogram', async () => {
    const bus = new Bus();
    bus.subscribe('lat', () => {});
    for (let i = 0; i < 1000; i++) bus.publish('lat', i);
    await bus.drain();
    expect(bus.stats().latencyUs.count).toBe(1000);
    // An event held back 20 ms before its delivery round must measure at least that:
    // the histogram measures publish -> handler, not something else.
    bus.publish('lat', 'held');
    const until = performance.now() + 20;
    while (performance.now() < until);
    await bus.drain();
    const { latencyUs } = bus.stats();
    expect(latencyUs.count).toBe(1001);
    expect(latencyUs.max).toBeGreaterThanOrEqual(20_000 * 0.99); // HDR: 3 significant digits
    await bus.close();
  });
});
