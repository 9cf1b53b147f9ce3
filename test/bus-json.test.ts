// JSON-bytes events: publish(subject, bytes, { contentType: 'application/json' }).
import { describe, expect, it } from 'vitest';
import { Bus, type BusEvent } from '../lib/index.js';
import { addsUp, expectCode } from './helpers.js';

const JSON_CT = { contentType: 'application/json' } as const;
const enc = (v: unknown) => Buffer.from(JSON.stringify(v));
const worker = new URL('./fixtures/json-handler.mjs', import.meta.url);


describe('JSON-bytes events to JS handlers', () => {
  it('ev.data is the parsed JSON, parsed once; ev.bytes the raw bytes', async () => {
    const bus = new Bus();
    const seen: BusEvent[] = [];
    bus.subscribe('j.>', (ev) => void seen.push(ev));
    const bytes = enc({ order: 42, items: ['a', 'b'] });
    expect(bus.publish('j.one', bytes, { ...JSON_CT, key: 'k', headers: { t: '1' } })).toBe(true);
    bus.publish('j.two', new TextEncoder().encode('"héllo"'), { contentType: 'application/json; charset=utf-8' });
    await bus.drain();
    const [a, b] = seen;
    expect(a.bytes).toBe(bytes); // carried, not copied, in-process
    expect(a.contentType).toBe('application/json');
    expect(a.data).toEqual({ order: 42, items: ['a', 'b'] });
    expect(a.data).toBe(a.data); // parsed once
    expect(a).toMatchObject({ subject: 'j.one', key: 'k', priority: 'normal', headers: { t: '1' } });
    expect(JSON.parse(JSON.stringify(a))).toMatchObject({ subject: 'j.one', data: { order: 42 } });
    expect(b.data).toBe('héllo');
    await bus.close();
  });

  it('invalid JSON fails the delivery that reads it, dead-letters it as bytes, and never throws from publish', async () => {
    const bus = new Bus();
    const dead: Array<{ error: { code?: string }; event: { data: Uint8Array; contentType?: string } }> = [];
    bus.subscribe('$DLQ.>', (ev) => void dead.push(ev.data as (typeof dead)[number]));
    let unread = 0;
    bus.subscribe('bad.json', (ev) => void ev.data);
    bus.subscribe('bad.json', () => void unread++); // never reads data: delivered fine
    for (const bytes of [Buffer.from('{"a":'), Buffer.from([0x7b, 0xff, 0x7d]), Buffer.from('')]) {
      expect(bus.publish('bad.json', bytes, JSON_CT)).toBe(true);
    }
    await bus.drain();
    expect(unread).toBe(3);
    expect(bus.stats().failed).toBe(3);
    expect(dead.map((d) => d.error.code)).toEqual(['ERR_INVALID_ARGUMENT', 'ERR_INVALID_ARGUMENT', 'ERR_INVALID_ARGUMENT']);
    expect(dead[0].event.contentType).toBe('application/json');
    expect(Buffer.from(dead[0].event.data).toString()).toBe('{"a":');
    addsUp(bus);
    await bus.close();
  });

  it('rejects contentType without bytes, and content types it does not carry', () => {
    const bus = new Bus();
    expectCode(() => bus.publish('j.x', { a: 1 }, JSON_CT), 'ERR_INVALID_ARGUMENT', /Uint8Array/);
    expectCode(() => bus.publish('j.x', '{"a":1}', JSON_CT), 'ERR_INVALID_ARGUMENT');
    expectCode(() => bus.publish('j.x', enc(1), { contentType: 'text/plain' }), 'ERR_INVALID_ARGUMENT', /application\/json/);
    expectCode(() => bus.publish('j.x', enc(1), { contentType: 5 as never }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => bus.publishBatch([{ subject: 'j.x', data: 5, contentType: 'application/json' }]), 'ERR_INVALID_ARGUMENT');
    expect(bus.stats().published).toBe(0);
    return bus.close();
  });

  it('goes to queue groups, across priorities with per-key order, and answers requests', async () => {
    const bus = new Bus();
    const got: Record<string, number[]> = { a: [], b: [] };
    bus.subscribe('q.j', (ev) => void got.a.push((ev.data as { n: number }).n), { queue: 'g' });
    bus.subscribe('q.j', (ev) => void got.b.push((ev.data as { n: number }).n), { queue: 'g' });
    const order: number[] = [];
    bus.subscribe('p.j', async (ev) => void order.push((ev.data as { n: number }).n));
    for (let n = 0; n < 20; n++) {
      bus.publish('q.j', enc({ n }), { ...JSON_CT, key: `k${n % 2}` });
      bus.publish('p.j', enc({ n }), { ...JSON_CT, key: 'same', priority: n % 3 === 0 ? 'critical' : 'low' });
    }
    await bus.drain();
    expect(got.a.length + got.b.length).toBe(20);
    for (const list of [got.a, got.b]) expect(list).toEqual([...list].sort((x, y) => x - y));
    expect(order).toEqual(Array.from({ length: 20 }, (_, n) => n)); // one key: publish order, whatever the lane
    bus.subscribe('rpc.j', (ev) => (ev.data as { a: number }).a + 1);
    expect(await bus.request('rpc.j', enc({ a: 1 }), JSON_CT)).toBe(2);
    await bus.close();
  });
});

describe('JSON-bytes events to worker pools', () => {
  it('cross as bytes and are parsed in the worker, only when read', async () => {
    const bus = new Bus();
    await bus.workers(worker, { threads: 1, subjects: 'js.>' });
    expect(await bus.request('js.read', enc({ x: 7 }), JSON_CT)).toEqual({ x: 7, contentType: 'application/json', isBytes: true });
    // Invalid JSON that nobody reads is delivered: the main thread did not parse it.
    expect(await bus.request('js.bytes-only', Buffer.from('{not json'), JSON_CT)).toBe(9);
    const dead: Array<{ error: { code?: string } }> = [];
    bus.subscribe('$DLQ.>', (ev) => void dead.push(ev.data as (typeof dead)[number]));
    bus.publish('js.read', Buffer.from('{not json'), JSON_CT);
    await bus.drain();
    expect(dead.map((d) => d.error.code)).toEqual(['ERR_INVALID_ARGUMENT']);
    expect(bus.stats().failed).toBe(1);
    addsUp(bus);
    await bus.close();
  });

  it('a worker publishes JSON bytes back with ctx.publish, checked in the worker', async () => {
    const bus = new Bus();
    await bus.workers(worker, { threads: 2, subjects: 'js.>' });
    const back: unknown[] = [];
    bus.subscribe('js.back', (ev) => void back.push([ev.contentType, ev.data]));
    bus.publish('js.forward', enc({ hop: 1 }), { ...JSON_CT, key: 'a' });
    await bus.drain();
    expect(back).toEqual([['application/json', { hop: 1 }]]);
    expect(await bus.request('js.bad-forward', enc(0), JSON_CT)).toBe('ERR_INVALID_ARGUMENT');
    await bus.close();
  });
});
