// The WebSocket event plane (GET /ws) driven by the `ws` package over real loopback
// connections, on both I/O backends: pub into the bus, sub/unsub fan-out, req/reply,
// ping, per-key order from network publishers, the bus's overflow policies applied to
// them, and publish rate limits.
import { afterEach, describe, expect, test } from 'vitest';
import { Bus } from '../../lib/bus/bus.js';
import type { BusEvent } from '../../lib/bus/types.js';
import { BACKENDS, Client, type Io, type Msg, Resources, startGateway, until, usable } from './gateway-helpers.js';

const res = new Resources();
afterEach(() => res.closeAll());

/**
 * Records of one socket reach JS in order, so once a `pub` sent after a `sub` or
 * `unsub` reaches the bus, that sub/unsub has taken effect. `settle(c)` sends such a
 * pub on `_settle.<n>` and waits for it.
 */
function settler(bus: Bus): (c: Client) => Promise<void> {
  const waiting = new Map<string, () => void>();
  let n = 0;
  bus.subscribe('_settle.>', (ev) => {
    waiting.get(ev.subject)?.();
  });
  return (c) =>
    new Promise<void>((resolve) => {
      const subject = `_settle.${++n}`;
      waiting.set(subject, resolve);
      c.send({ op: 'pub', subject, data: null });
    });
}

const isEvent = (m: Msg) => m.op === 'event' && !String(m.subject).startsWith('_settle.');

describe.each(BACKENDS)('event plane over %s', (io: Io) => {
  if (!usable(io)) {
    test.skip('io_uring is not usable on this kernel', () => {});
    return;
  }

  test('pub reaches a bus handler as JSON bytes with its key and priority', async () => {
    const { gw, ws } = await startGateway(res, io);
    const got: BusEvent[] = [];
    gw.bus.subscribe('orders.*', (ev) => {
      got.push(ev);
    });
    const c = await Client.open(ws, undefined, res);
    c.send({ op: 'pub', subject: 'orders.created', data: { id: 7, items: ['a', 'b'], price: 1.5 }, key: 'cust-1', priority: 'high' });
    c.send('{"op":"pub","subject":"orders.note","data":  {"x" : [1, 2]} ,"priority":"low"}');
    await until(() => got.length === 2, 'two events');
    expect(got[0].subject).toBe('orders.created');
    expect(got[0].data).toEqual({ id: 7, items: ['a', 'b'], price: 1.5 });
    expect(Buffer.from(got[0].bytes!).toString()).toBe('{"id":7,"items":["a","b"],"price":1.5}');
    expect(got[0].key).toBe('cust-1');
    expect(got[0].priority).toBe('high');
    // The data's bytes travel as sent, whitespace included: never re-serialized.
    expect(Buffer.from(got[1].bytes!).toString()).toBe('{"x" : [1, 2]}');
    expect(got[1].data).toEqual({ x: [1, 2] });
    expect(got[1].key).toBeUndefined();
    expect(got[1].priority).toBe('low');
    expect(gw.stats().eventsIn).toBe(2);
  });

  test('pub of strings, numbers, booleans, null, nested values and no data', async () => {
    const { gw, ws } = await startGateway(res, io);
    const got: unknown[] = [];
    gw.bus.subscribe('v', (ev) => {
      got.push(ev.data);
    });
    const c = await Client.open(ws, undefined, res);
    const values = ['plain', 'esc "q" \\ \n \u00e9 \u{1f600}', 42, -1.25e-3, 0, true, false, null, [], {}, { a: { b: { c: [1, { d: null }] } } }];
    for (const v of values) c.send({ op: 'pub', subject: 'v', data: v });
    c.send({ op: 'pub', subject: 'v' });
    await until(() => got.length === values.length + 1, 'every value');
    expect(got).toEqual([...values, null]);
  });

  test("sub with '*' and '>' gets event frames carrying the sub id, key and bus id", async () => {
    const { gw, ws } = await startGateway(res, io);
    const settle = settler(gw.bus);
    const c = await Client.open(ws, undefined, res);
    c.send({ op: 'sub', id: 'one', subject: 'metrics.*' });
    c.send({ op: 'sub', id: 2, subject: 'metrics.>' });
    await settle(c);
    gw.bus.publish('metrics.cpu', { v: 0.5 }, { key: 'host-1' });
    gw.bus.publish('metrics.cpu.core0', 'deep');
    gw.bus.publish('other', 1);
    const a = await c.next((m) => m.sub === 'one');
    expect(a).toMatchObject({ op: 'event', subject: 'metrics.cpu', data: { v: 0.5 }, key: 'host-1', sub: 'one' });
    expect(typeof a.id).toBe('string');
    const b1 = await c.next((m) => m.sub === '2' && m.subject === 'metrics.cpu');
    expect(b1.data).toEqual({ v: 0.5 });
    const b2 = await c.next((m) => m.sub === '2' && m.subject === 'metrics.cpu.core0');
    expect(b2.data).toBe('deep');
    expect(b2.key).toBeUndefined();
    await c.roundTrip();
    expect(c.pending.filter(isEvent)).toEqual([]);
  });

  test('many sockets on one pattern each get every event once', async () => {
    const { gw, ws } = await startGateway(res, io);
    const settle = settler(gw.bus);
    const clients = await Promise.all(Array.from({ length: 24 }, () => Client.open(ws, undefined, res)));
    for (const [i, c] of clients.entries()) c.send({ op: 'sub', id: `s${i}`, subject: 'news.>' });
    await Promise.all(clients.map(settle));
    for (let k = 0; k < 5; k++) gw.bus.publish(`news.n${k}`, { k });
    for (const [i, c] of clients.entries()) {
      for (let k = 0; k < 5; k++) {
        const m = await c.next((x) => x.subject === `news.n${k}`);
        expect(m).toMatchObject({ data: { k }, sub: `s${i}` });
      }
    }
    await Promise.all(clients.map((c) => c.roundTrip()));
    for (const c of clients) expect(c.received.filter(isEvent)).toHaveLength(5);
    expect(gw.stats().subscriptions).toBe(24);
    expect(gw.stats().eventsOut).toBe(24 * 5);
  });

  test('unsub stops delivery; unsub of an unknown id and a duplicate sub id are error frames', async () => {
    const { gw, ws } = await startGateway(res, io);
    const settle = settler(gw.bus);
    const c = await Client.open(ws, undefined, res);
    c.send({ op: 'sub', id: 'x', subject: 'a.b' });
    c.send({ op: 'sub', id: 'x', subject: 'c.d' });
    const dup = await c.next((m) => m.op === 'error');
    expect(dup).toMatchObject({ op: 'error', id: 'x', code: 'ERR_INVALID_ARGUMENT' });
    expect(String(dup.message)).toMatch(/in use/);
    c.send({ op: 'unsub', id: 'nope' });
    expect(await c.next((m) => m.op === 'error')).toMatchObject({ id: 'nope', code: 'ERR_INVALID_ARGUMENT' });
    await settle(c);
    gw.bus.publish('a.b', 1);
    await c.next((m) => m.op === 'event' && m.data === 1);
    c.send({ op: 'unsub', id: 'x' });
    await settle(c);
    expect(gw.stats().subscriptions).toBe(0);
    gw.bus.publish('a.b', 2);
    gw.bus.publish('c.d', 3); // the refused duplicate never subscribed
    await gw.bus.drain();
    await c.roundTrip();
    expect(c.received.filter(isEvent).map((m) => m.data)).toEqual([1]);
    // The id is free again.
    c.send({ op: 'sub', id: 'x', subject: 'a.b' });
    await settle(c);
    gw.bus.publish('a.b', 4);
    expect((await c.next((m) => m.op === 'event')).data).toBe(4);
  });

  test('req gets the responder reply with its id; no responder is ERR_NO_RESPONDERS', async () => {
    const { gw, ws } = await startGateway(res, io);
    gw.bus.subscribe('svc.add', (ev) => {
      const d = ev.data as { a: number; b: number };
      return { sum: d.a + d.b, key: ev.key };
    });
    gw.bus.subscribe('svc.fail', () => {
      throw new Error('broken on purpose');
    });
    const c = await Client.open(ws, undefined, res);
    c.send({ op: 'req', id: 'r1', subject: 'svc.add', data: { a: 2, b: 3 }, key: 'k' });
    c.send({ op: 'req', id: 17, subject: 'svc.none', data: null });
    c.send({ op: 'req', id: 'r3', subject: 'svc.fail', data: {} });
    expect(await c.next((m) => m.id === 'r1')).toEqual({ op: 'reply', id: 'r1', data: { sum: 5, key: 'k' } });
    expect(await c.next((m) => m.id === '17')).toMatchObject({ op: 'error', code: 'ERR_NO_RESPONDERS' });
    const failed = await c.next((m) => m.id === 'r3');
    expect(failed.op).toBe('error');
    expect(typeof failed.code).toBe('string');
    // A req without an id cannot be answered: refused at once.
    c.send({ op: 'req', subject: 'svc.add', data: { a: 1, b: 1 } });
    expect(await c.next((m) => m.op === 'error')).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  test('ping gets pong', async () => {
    const { ws } = await startGateway(res, io);
    const c = await Client.open(ws, undefined, res);
    c.send({ op: 'ping' });
    expect(await c.next()).toEqual({ op: 'pong' });
    // A WebSocket-level ping is answered with a pong carrying its payload.
    const pong = new Promise<Buffer>((r) => c.ws.once('pong', r));
    c.ws.ping(Buffer.from('abc'));
    expect((await pong).toString()).toBe('abc');
  });

  test('one socket publishing k1..kN with one key reaches a handler in order', async () => {
    const { gw, ws } = await startGateway(res, io);
    const n = 2000;
    const seen: number[] = [];
    gw.bus.subscribe('seq.>', async (ev) => {
      const { i } = ev.data as { i: number };
      seen.push(i);
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    });
    const c = await Client.open(ws, undefined, res);
    for (let i = 1; i <= n; i++) c.send({ op: 'pub', subject: `seq.s${i % 7}`, key: 'same', data: { i } });
    await until(() => seen.length === n, `${n} events`, 20_000);
    expect(seen).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  });

  test("overflow 'reject': pubs past the bus capacity get ERR_BUS_FULL; accepted + refused = sent", async () => {
    const bus = new Bus({ capacity: 4, overflow: 'reject' });
    res.add(() => bus.close());
    const { gw, ws } = await startGateway(res, io, { bus });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let handled = 0;
    bus.subscribe('full.>', async () => {
      await gate;
      handled++;
    });
    const c = await Client.open(ws, undefined, res);
    const n = 400;
    for (let i = 0; i < n; i++) c.send({ op: 'pub', subject: 'full.x', data: i });
    await until(() => gw.stats().eventsIn === n, 'every pub read');
    await until(() => bus.stats().published + c.received.filter((m) => m.op === 'error').length === n, 'every pub answered');
    const refused = c.received.filter((m) => m.op === 'error');
    expect(refused.length).toBeGreaterThan(0);
    for (const e of refused) expect(e.code).toBe('ERR_BUS_FULL');
    expect(gw.stats().eventsRefused).toBe(refused.length);
    release();
    const accepted = n - refused.length;
    await until(() => handled === accepted, `${accepted} deliveries`);
    await bus.drain();
    expect(handled).toBe(accepted);
    expect(bus.stats().published).toBe(accepted);
    // The connection stayed up through it.
    await c.roundTrip();
  });

  test("overflow 'wait': nothing is lost behind a slow async handler", async () => {
    const bus = new Bus({ capacity: 8, overflow: 'wait' });
    res.add(() => bus.close());
    const { gw, ws } = await startGateway(res, io, { bus });
    const seen: number[] = [];
    bus.subscribe('slow.>', async (ev) => {
      await new Promise((r) => setTimeout(r, 0));
      seen.push(ev.data as number);
    });
    const clients = await Promise.all([0, 1].map(() => Client.open(ws, undefined, res)));
    const n = 300;
    for (let i = 0; i < n; i++) for (const [j, c] of clients.entries()) c.send({ op: 'pub', subject: 'slow.q', key: `c${j}`, data: j * n + i });
    await until(() => seen.length === 2 * n, `${2 * n} events`, 20_000);
    for (const c of clients) expect(c.received.filter((m) => m.op === 'error')).toEqual([]);
    // Everything arrived, and each publisher's (one key's) events in order.
    for (let j = 0; j < 2; j++) {
      expect(seen.filter((v) => Math.floor(v / n) === j)).toEqual(Array.from({ length: n }, (_, i) => j * n + i));
    }
    expect(gw.stats().eventsRefused).toBe(0);
    expect(bus.stats().dropped).toBe(0);
  });

  test('rateLimit.perConnection: pubs past the rate get ERR_RATE_LIMITED; the connection stays up', async () => {
    const { gw, ws } = await startGateway(res, io, { rateLimit: { perConnection: 10 } });
    let got = 0;
    gw.bus.subscribe('rl', () => {
      got++;
    });
    const c = await Client.open(ws, undefined, res);
    const n = 60;
    for (let i = 0; i < n; i++) c.send({ op: 'pub', subject: 'rl', data: i });
    await c.roundTrip();
    const limited = c.received.filter((m) => m.op === 'error');
    for (const e of limited) expect(e.code).toBe('ERR_RATE_LIMITED');
    // The window is one second: a burst that straddles a boundary may pass twice the rate.
    expect(n - limited.length).toBeGreaterThanOrEqual(10);
    expect(n - limited.length).toBeLessThanOrEqual(20);
    expect(gw.stats().rateLimited).toBe(limited.length);
    await until(() => got === n - limited.length, 'the accepted pubs');
    // Another connection has its own budget.
    const d = await Client.open(ws, undefined, res);
    d.send({ op: 'pub', subject: 'rl', data: 'other' });
    await d.roundTrip();
    expect(d.received.filter((m) => m.op === 'error')).toEqual([]);
  });
});
