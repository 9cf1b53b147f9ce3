// The bus on a cluster transport, the same cases on both engines (the shared NATS at
// 127.0.0.1:4222 with JetStream, the shared Redis at 127.0.0.1:6379): data of every
// kind round trips, a queue group splits events, a failing handler is retried in place
// and then dead-lettered, publish ids dedupe inside the window and publish again after
// it, an unacknowledged event is redelivered after the ack-wait, the registry and the
// configuration store work, and bad input gets ERR_INVALID_ARGUMENT. Each test uses its
// own stream / key prefix and subject prefix, and removes them.
import { afterAll, describe, expect, it } from 'vitest';
import { Bus } from '../../lib/bus/bus.js';
import type { BusEvent } from '../../lib/bus/types.js';
import { MyelinError } from '../../lib/errors.js';
import { Metrics } from '../../lib/metrics/metrics.js';
import { type Kind, NATS, REDIS, removeMade, sleep, uid, until } from './engines.js';

type Ev = BusEvent & { redelivered?: boolean; deliveries?: number };

const streams: string[] = [];
const prefixes: string[] = [];

/** A transport config with names of its own (stream / key prefix), remembered for cleanup. */
function transport(kind: Kind, extra: Record<string, unknown> = {}): { kind: Kind; [k: string]: unknown } {
  if (kind === 'nats') {
    const stream = `T_${uid()}`;
    streams.push(stream);
    return { kind, servers: NATS, stream, ...extra };
  }
  const prefix = `t${uid()}`;
  prefixes.push(prefix);
  return { kind, url: REDIS, prefix, partitions: 4, ...extra };
}

afterAll(() => removeMade({ streams, prefixes }));

describe.each<Kind>(['nats', 'redis'])('cluster bus on %s', (kind) => {
  const buses: Bus[] = [];
  const open = (t: ReturnType<typeof transport>, opts: Record<string, unknown> = {}) => {
    const b = new Bus({ transport: t, ...opts });
    buses.push(b);
    return b;
  };
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close()));
  });

  it('carries objects, bytes, JSON bytes, undefined, keys, priorities and headers', async () => {
    const t = transport(kind);
    const a = open(t);
    const b = open(t);
    const s = `rt${uid()}`;
    const got: Ev[] = [];
    const sub = b.subscribe(`${s}.>`, (ev) => void got.push(ev), { queue: 'g' });
    await sub.ready;
    await a.publishAsync(`${s}.obj`, { a: [1, 'x', null], n: 1.5 }, { key: 'k1', priority: 'high', headers: { 'x-trace': 'abc' } });
    await a.publishAsync(`${s}.bytes`, Buffer.from([0, 1, 2, 255]));
    await a.publishAsync(`${s}.json`, Buffer.from('{"z":[1,2]}'), { contentType: 'application/json' });
    await a.publishAsync(`${s}.none`);
    await until(() => got.length === 4, 'four events');
    const by = Object.fromEntries(got.map((e) => [e.subject.split('.')[1], e]));
    expect(by.obj.data).toEqual({ a: [1, 'x', null], n: 1.5 });
    expect(by.obj.key).toBe('k1');
    expect(by.obj.priority).toBe('high');
    expect(by.obj.headers).toEqual({ 'x-trace': 'abc' });
    expect(Buffer.isBuffer(by.bytes.data)).toBe(true);
    expect([...(by.bytes.data as Buffer)]).toEqual([0, 1, 2, 255]);
    expect(by.json.data).toEqual({ z: [1, 2] });
    expect(Buffer.from(by.json.bytes as Uint8Array).toString()).toBe('{"z":[1,2]}');
    expect(by.none.data).toBeUndefined();
    for (const e of got) {
      expect(e.redelivered).toBe(false);
      expect(e.deliveries).toBe(1);
      expect(e.time).toBeGreaterThan(Date.now() - 60_000);
    }
    const st = a.stats();
    expect(st.transport?.acked).toBe(4);
    expect(st.transport?.kind).toBe(kind);
    expect(st.published).toBe(4);
  });

  it('splits a queue group between members: every event once', async () => {
    const t = transport(kind);
    const p = open(t);
    const m1 = open(t);
    const m2 = open(t);
    const s = `qg${uid()}`;
    const seen: number[] = [];
    const per = [0, 0];
    const s1 = m1.subscribe(`${s}.e`, (ev) => void (seen.push((ev.data as { n: number }).n), per[0]++), { queue: 'w' });
    const s2 = m2.subscribe(`${s}.e`, (ev) => void (seen.push((ev.data as { n: number }).n), per[1]++), { queue: 'w' });
    await Promise.all([s1.ready, s2.ready]);
    const N = 400;
    for (let n = 0; n < N; n++) {
      if (!p.publish(`${s}.e`, { n }, { key: `k${n % 40}` })) await p.publishAsync(`${s}.e`, { n });
    }
    await p.drain();
    await until(() => seen.length >= N, `${N} deliveries`);
    await sleep(200);
    expect(seen.length).toBe(N);
    expect(new Set(seen).size).toBe(N);
    expect(p.stats().transport?.acked).toBe(N);
    // both members got work (NATS: one shared consumer; Redis: partitions split between them)
    expect(per[0]).toBeGreaterThan(0);
    expect(per[1]).toBeGreaterThan(0);
  });

  it('keeps per-key order within a member, and retries a failing handler in place before dead-lettering it', async () => {
    const t = transport(kind);
    const bus = open(t);
    const s = `dl${uid()}`;
    const order: string[] = [];
    const runs: Array<{ n: number; deliveries: number; redelivered: boolean }> = [];
    const sub = bus.subscribe(
      `${s}.e`,
      async (ev: Ev) => {
        const { n } = ev.data as { n: number };
        runs.push({ n, deliveries: ev.deliveries as number, redelivered: ev.redelivered as boolean });
        if (n === 1) throw new Error('always fails');
        if (n === 2 && (ev.deliveries as number) < 2) throw new Error('fails once');
        order.push(`${ev.key}:${n}`);
      },
      { queue: 'w', maxDeliver: 3, concurrency: 8 },
    );
    const letters: Array<{ error: { message: string }; event: { subject: string; data: unknown; deliveries: number } }> = [];
    const dlq = bus.subscribe(`$DLQ.${s}.e`, (ev) => void letters.push(ev.data as (typeof letters)[number]), { queue: 'dlq' });
    await Promise.all([sub.ready, dlq.ready]);
    for (let n = 0; n < 6; n++) await bus.publishAsync(`${s}.e`, { n }, { key: 'same' });
    await until(() => letters.length === 1 && order.length === 5, 'the dead letter and five successes');
    // n=1 ran 3 times (deliveries 1, 2, 3), then went to the DLQ with its error; the key waited
    expect(runs.filter((r) => r.n === 1).map((r) => r.deliveries)).toEqual([1, 2, 3]);
    expect(runs.filter((r) => r.n === 1).map((r) => r.redelivered)).toEqual([false, true, true]);
    expect(letters[0].error.message).toBe('always fails');
    expect(letters[0].event).toMatchObject({ subject: `${s}.e`, data: { n: 1 }, deliveries: 3 });
    expect(order).toEqual(['same:0', 'same:2', 'same:3', 'same:4', 'same:5']);
    await bus.drain();
    const st = bus.stats();
    expect(st.failed).toBe(1);
    expect(st.transport?.deadLettered).toBe(1);
    // nothing comes back later: the failed event was acknowledged with its dead letter
    await sleep(300);
    expect(runs.filter((r) => r.n === 1).length).toBe(3);
  });

  it('dedupes a publish id inside the window and publishes it again after the window', async () => {
    const t = transport(kind, { dedupeWindowMs: 1500 });
    const bus = open(t);
    const s = `dd${uid()}`;
    const got: unknown[] = [];
    const sub = bus.subscribe(`${s}.e`, (ev) => void got.push(ev.data), { queue: 'w' });
    await sub.ready;
    await bus.publishAsync(`${s}.e`, 'first', { id: 'order-1' });
    await bus.publishAsync(`${s}.e`, 'again', { id: 'order-1' });
    await bus.publishAsync(`${s}.e`, 'other', { id: 'order-2' });
    await until(() => got.length >= 2, 'two events');
    await sleep(300);
    expect(got).toEqual(['first', 'other']);
    expect(bus.stats().transport?.duplicates).toBe(1);
    await sleep(1800);
    await bus.publishAsync(`${s}.e`, 'after the window', { id: 'order-1' });
    await until(() => got.length === 3, 'the id published again');
    expect(got[2]).toBe('after the window');
  });

  it('redelivers an event whose handler never settles after ackWaitMs, marked redelivered', async () => {
    const t = transport(kind);
    const stuck = open(t);
    const healthy = open(t);
    const s = `aw${uid()}`;
    const seen: Array<{ who: string; deliveries: number; redelivered: boolean }> = [];
    let release: () => void = () => {};
    const never = new Promise<void>((r) => (release = r));
    const a = stuck.subscribe(`${s}.e`, (ev: Ev) => {
      seen.push({ who: 'stuck', deliveries: ev.deliveries as number, redelivered: ev.redelivered as boolean });
      return never;
    }, { queue: 'w', ackWaitMs: 1000 });
    await a.ready;
    await stuck.publishAsync(`${s}.e`, { n: 1 });
    await until(() => seen.length === 1, 'the first delivery');
    const b = healthy.subscribe(`${s}.e`, (ev: Ev) => {
      seen.push({ who: 'healthy', deliveries: ev.deliveries as number, redelivered: ev.redelivered as boolean });
    }, { queue: 'w', ackWaitMs: 1000 });
    await b.ready;
    // the stuck member leaves the group (its handler still holds the event): the
    // engine redelivers after the ack-wait to the member that is left
    a.unsubscribe();
    await until(() => seen.some((x) => x.who === 'healthy'), 'the redelivery', 15_000);
    const again = seen.find((x) => x.who === 'healthy');
    expect(again?.deliveries).toBeGreaterThanOrEqual(2);
    expect(again?.redelivered).toBe(true);
    expect(healthy.stats().transport?.redelivered).toBeGreaterThanOrEqual(1);
    release(); // the late acknowledgement of the stuck member changes nothing
  });

  it('lists the live nodes, and syncs a configuration with versions', async () => {
    const t = transport(kind, { heartbeatMs: 200 });
    const a = open(t);
    const b = open(t);
    await Promise.all([a.ready, b.ready]);
    await until(() => true, '');
    let nodes = await a.cluster!.nodes();
    for (let i = 0; i < 50 && nodes.length < 2; i++) {
      await sleep(100);
      nodes = await a.cluster!.nodes();
    }
    const ids = nodes.map((n) => n.id);
    expect(ids).toContain(a.cluster!.id);
    expect(ids).toContain(b.cluster!.id);
    const me = nodes.find((n) => n.id === a.cluster!.id)!;
    expect(me.capabilities).toContain(kind);
    expect(typeof me.version).toBe('string');
    expect(me.load).toMatchObject({ queued: expect.any(Number), inFlight: expect.any(Number) });

    const name = `routes_${uid()}`;
    const seen: Array<[unknown, number]> = [];
    const stop = b.cluster!.watchConfig(name, (v, version) => void seen.push([v, version]));
    await sleep(300);
    const v1 = await a.cluster!.putConfig(name, { fast: ['local/llama'] });
    const v2 = await a.cluster!.putConfig(name, { fast: ['openai/gpt-4o-mini'] });
    expect(v2).toBeGreaterThan(v1);
    // every version seen is newer than the one before (an engine may fold quick puts into one)
    await until(() => seen.length >= 1 && seen[seen.length - 1][1] === v2, 'the latest version');
    for (let i = 1; i < seen.length; i++) expect(seen[i][1]).toBeGreaterThan(seen[i - 1][1]);
    expect(seen[seen.length - 1][0]).toEqual({ fast: ['openai/gpt-4o-mini'] });
    expect((await a.cluster!.getConfig(name))?.version).toBe(v2);
    // b reports the version it runs in its registry entry
    await until(() => true, '');
    let reported: number | undefined;
    for (let i = 0; i < 50 && reported !== v2; i++) {
      await sleep(100);
      reported = (await a.cluster!.nodes()).find((n) => n.id === b.cluster!.id)?.config[name];
    }
    expect(reported).toBe(v2);
    stop();

    // a version the node declines (the callback returns false) is not reported as run
    const declined: number[] = [];
    const stop2 = b.cluster!.watchConfig(name, (_v, version) => {
      if (version > v2) {
        declined.push(version);
        return false;
      }
      return true;
    });
    const v3 = await a.cluster!.putConfig(name, { broken: true });
    await until(() => declined.includes(v3), 'the declined version');
    await sleep(600); // a few heartbeats
    expect((await a.cluster!.nodes()).find((n) => n.id === b.cluster!.id)?.config[name]).toBe(v2);
    stop2();

    await b.close();
    const after = (await a.cluster!.nodes()).map((n) => n.id);
    expect(after).not.toContain(b.cluster!.id);
  });

  it('reports the engine durability in stats()', async () => {
    const bus = open(transport(kind));
    const sub = bus.subscribe(`du${uid()}.e`, () => {}, { queue: 'w' });
    await sub.ready;
    const d = await bus.cluster!.durability();
    expect(d.replicas).toBeGreaterThanOrEqual(1);
    expect(d.notes.length).toBeGreaterThan(0);
    expect(typeof d.storage).toBe('string');
    await until(() => bus.stats().transport?.durability !== undefined, 'durability in stats');
    expect(bus.stats().transport?.durabilityWarnings).toEqual([]);
  });

  it('warns when the caller asks for more durability than the engine is set up to give', async () => {
    const warned: string[] = [];
    const onWarning = (w: Error & { code?: string }) => void (w.code === 'MYELIN_DURABILITY' && warned.push(w.message));
    process.on('warning', onWarning);
    try {
      const bus = open(transport(kind, { durability: { replicas: 3, persistent: true, fsync: true } }));
      await bus.ready;
      await until(() => (bus.stats().transport?.durabilityWarnings.length ?? 0) > 0, 'the warnings');
      const w = bus.stats().transport!.durabilityWarnings;
      expect(w.some((x) => /3 replicas were asked for/.test(x))).toBe(true);
      expect(w.some((x) => /fsync per event/.test(x))).toBe(true);
      // the shared Redis keeps nothing on disk; the shared NATS stores files
      expect(w.some((x) => /persistence was asked for/.test(x))).toBe(kind === 'redis');
      await until(() => warned.length === w.length, 'the process warnings');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('records the bus series and the cluster series (lag per group) through a Metrics sink', async () => {
    const metrics = new Metrics({});
    const t = transport(kind);
    const bus = new Bus({ transport: t, metrics });
    const s = `mx${uid()}`;
    const sub = bus.subscribe(`${s}.e`, () => {}, { queue: 'billing' });
    await sub.ready;
    for (let i = 0; i < 20; i++) await bus.publishAsync(`${s}.e`, i);
    await bus.drain();
    await until(() => bus.stats().delivered === 20, 'the deliveries');
    await bus.close(); // the last flush
    await sleep(50);
    const text = (await metrics.expose()).body.toString();
    metrics.close();
    expect(text).toMatch(/myelin_bus_events_published_total\{priority="normal"\} 20/);
    expect(text).toMatch(/myelin_bus_events_delivered_total 20/);
    expect(text).toMatch(/myelin_bus_cluster_acked_total 20/);
    expect(text).toMatch(/myelin_bus_cluster_consumer_lag\{group="billing"\} 0/);
  });

  it('rejects bad input with ERR_INVALID_ARGUMENT and keeps working', async () => {
    const bus = open(transport(kind));
    const bad = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        expect(err).toBeInstanceOf(MyelinError);
        return (err as MyelinError).code;
      }
      return 'no error';
    };
    expect(bad(() => bus.publish('a..b', 1))).toBe('ERR_INVALID_ARGUMENT');
    expect(bad(() => bus.publish('a.*', 1))).toBe('ERR_INVALID_ARGUMENT');
    expect(bad(() => bus.publish('a.b', 1n))).toBe('ERR_INVALID_ARGUMENT');
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    expect(bad(() => bus.publish('a.b', cyc))).toBe('ERR_INVALID_ARGUMENT');
    expect(bad(() => bus.publish('a.b', () => 1))).toBe('ERR_INVALID_ARGUMENT');
    expect(bad(() => bus.publish('a.b', 1, { id: '' }))).toBe('ERR_INVALID_ARGUMENT');
    expect(bad(() => bus.publish('a.b', 1, { id: 7 as unknown as string }))).toBe('ERR_INVALID_ARGUMENT');
    expect(bad(() => bus.publish('a.b', 1, { headers: { 'Nats-Msg-Id': 'x' } }))).toBe('ERR_INVALID_ARGUMENT');
    expect(bad(() => bus.publish('a.b', 1, { headers: { 'bad name': 'x' } }))).toBe('ERR_INVALID_ARGUMENT');
    expect(bad(() => bus.publish('a.b', 1, { priorty: 'high' } as never))).toBe('ERR_INVALID_ARGUMENT');
    expect(bad(() => bus.publish('a.b', 'x', { contentType: 'application/json' }))).toBe('ERR_INVALID_ARGUMENT');
    expect(bad(() => bus.subscribe('a.>', () => {}, { ackWaitMs: -1 } as never))).toBe('ERR_INVALID_ARGUMENT');
    expect(bad(() => bus.subscribe('a.>', () => {}, { maxDeliver: 0 } as never))).toBe('ERR_INVALID_ARGUMENT');
    expect(bad(() => bus.subscribe('a.>', () => {}, { queue: '' }))).toBe('ERR_INVALID_ARGUMENT');
    expect(bad(() => bus.subscribe('a..>', () => {}))).toBe('ERR_INVALID_ARGUMENT');
    expect(bad(() => bus.shed('low', true))).toBe('ERR_INVALID_ARGUMENT');
    expect(bad(() => bus.cluster!.watchConfig('bad name', () => {}))).toBe('ERR_INVALID_ARGUMENT');
    await expect(bus.workers(new URL('file:///x.mjs'), { threads: 1, subjects: ['a'] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    if (kind === 'redis') await expect(bus.request('a.b', 1)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    // the bus still works
    const s = `ok${uid()}`;
    const got: unknown[] = [];
    const sub = bus.subscribe(`${s}.e`, (ev) => void got.push(ev.data), { queue: 'w' });
    await sub.ready;
    await bus.publishAsync(`${s}.e`, 'fine');
    await until(() => got.length === 1, 'the event');
  });
});

describe('cluster bus options', () => {
  it('rejects bad transport options with messages that name them', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ kind: 'kafka' }, /transport.kind/],
      [null, /transport must be an object/],
      [{ kind: 'nats' }, /transport.servers/],
      [{ kind: 'nats', servers: [] }, /transport.servers/],
      [{ kind: 'nats', servers: NATS, stream: 'a.b' }, /transport.stream/],
      [{ kind: 'nats', servers: NATS, replicas: 0 }, /transport.replicas/],
      [{ kind: 'nats', servers: NATS, storage: 'disk' }, /transport.storage/],
      [{ kind: 'nats', servers: NATS, url: REDIS }, /unknown option 'url'/],
      [{ kind: 'redis' }, /transport.url/],
      [{ kind: 'redis', url: 'http://x' }, /transport.url/],
      [{ kind: 'redis', url: REDIS, partitions: 0 }, /transport.partitions/],
      [{ kind: 'redis', url: REDIS, maxLen: -1 }, /transport.maxLen/],
      [{ kind: 'redis', url: REDIS, dedupeWindowMs: 0 }, /transport.dedupeWindowMs/],
      [{ kind: 'redis', url: REDIS, servers: NATS }, /unknown option 'servers'/],
    ];
    for (const [t, msg] of cases) {
      let err: unknown;
      try {
        new Bus({ transport: t as never });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(t)).toBeInstanceOf(MyelinError);
      expect((err as MyelinError).code).toBe('ERR_INVALID_ARGUMENT');
      expect((err as MyelinError).message).toMatch(msg);
    }
  });

  it('an in-memory bus rejects the cluster-only options', () => {
    const bus = new Bus();
    expect(() => bus.subscribe('a', () => {}, { ackWaitMs: 100 } as never)).toThrow(/unknown option 'ackWaitMs'/);
    expect(() => bus.publish('a', 1, { id: 'x' } as never)).toThrow(/unknown option 'id'/);
    expect(bus.cluster).toBeUndefined();
    return bus.close();
  });

  it.each<Kind>(['nats', 'redis'])('%s: an engine that cannot be reached rejects ready with ERR_TRANSPORT_UNAVAILABLE, and publishing then fails clearly', async (kind) => {
    const t = kind === 'nats' ? { kind, servers: 'nats://127.0.0.1:1', connectTimeoutMs: 500 } : { kind, url: 'redis://127.0.0.1:1', connectTimeoutMs: 500 };
    const bus = new Bus({ transport: t });
    const accepted = bus.publish('a.b', 1); // before the outcome is known: it waits in the outbox
    expect(accepted).toBe(true);
    await expect(bus.ready).rejects.toMatchObject({ code: 'ERR_TRANSPORT_UNAVAILABLE' });
    expect(() => bus.publish('a.b', 1)).toThrow(expect.objectContaining({ code: 'ERR_TRANSPORT_UNAVAILABLE' }));
    await expect(bus.publishAsync('a.b', 1)).rejects.toMatchObject({ code: 'ERR_TRANSPORT_UNAVAILABLE' });
    // the event accepted before the failure was never sent: counted dropped, not lost silently
    expect(bus.stats().dropped).toBe(1);
    expect(bus.stats().transport?.unknown).toBe(0);
    await bus.close();
  });
});
