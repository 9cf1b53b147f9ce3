// The Redis transport against a real Redis (127.0.0.1:6379, a unique key prefix per
// test): payload round trips, plain (XREAD) subscriptions, dedupe, the registry,
// configuration, durability, and sends across a server that dies and comes back.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Encoding } from '../../lib/cluster/transport.js';
import { RedisTransport } from '../../lib/cluster/redis-transport.js';
import { partitionOf, subjectMatcher } from '../../lib/cluster/redis-scripts.js';
import { expectRejectCode } from '../helpers.js';
import { freePort, requireRedis, startRedis } from '../ai/services.js';
import { out, RecordingSink, Scope, sleep, waitFor } from './redis-helpers.js';

let scope: Scope | undefined;
beforeAll(requireRedis);
afterEach(async () => {
  await scope?.cleanup();
  scope = undefined;
});

const spec = (pattern: string, queue?: string) => ({ pattern, queue, ackWaitMs: 5000, maxDeliver: 5 });

describe('Redis transport: helpers', () => {
  it('matches NATS-style patterns', () => {
    const m = subjectMatcher('a.*.c');
    expect([m('a.b.c'), m('a.b'), m('a.b.c.d'), m('x.b.c')]).toEqual([true, false, false, false]);
    const t = subjectMatcher('a.>');
    expect([t('a'), t('a.b'), t('a.b.c'), t('b.c')]).toEqual([false, true, true, false]);
    expect(subjectMatcher('>')('x')).toBe(true);
    expect(subjectMatcher('a.b')('a.b')).toBe(true);
  });

  it('partitions a key the same way every time, and spreads keys', () => {
    expect(partitionOf('cust-7', 8)).toBe(partitionOf('cust-7', 8));
    expect(partitionOf('ünïcode', 8)).toBe(partitionOf('ünïcode', 8));
    const used = new Set(Array.from({ length: 200 }, (_, i) => partitionOf(`k${i}`, 8)));
    expect(used.size).toBe(8);
  });
});

describe('Redis transport: sending and plain subscriptions', () => {
  it('round-trips every encoding, binary payloads and all metadata', async () => {
    scope = new Scope();
    const t = await scope.transport();
    const sink = new RecordingSink();
    const sub = t.subscribe(spec('rt.>'), sink);
    await sub.ready;
    const bytes = Buffer.from([0, 255, 1, 254, 0, 10, 13, 0]);
    const msgs = [
      out('rt.none', '', { payload: new Uint8Array(0), enc: Encoding.None }),
      out('rt.json', '', { payload: Buffer.from('{"a":[1,"ü"]}'), enc: Encoding.Json, key: 'k1', lane: 0 }),
      out('rt.jsonbytes', '', { payload: new TextEncoder().encode('{"raw":true}'), enc: Encoding.JsonBytes, headers: { h: 'v', 'x-y': 'ü' }, lane: 3 }),
      out('rt.bytes.deep', '', { payload: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), enc: Encoding.Bytes, key: 'ключ', id: 'mine-1', userId: true }),
    ];
    for (const m of msgs) expect(await t.send(m, 5000)).toEqual({ duplicate: false, stored: true });
    await waitFor(() => sink.got.length === 4, 'four deliveries');
    const bySubject = new Map(sink.got.map((d) => [d.subject, d]));
    for (const m of msgs) {
      const d = bySubject.get(m.subject)!;
      expect(d, m.subject).toBeDefined();
      expect(Buffer.from(d.payload).equals(Buffer.from(m.payload))).toBe(true);
      expect(d.deliveries).toBe(1);
      // the id travels only when the caller gave it (Redis dedupes only those; codec.ts packMeta)
      expect(d.meta).toEqual({ enc: m.enc, lane: m.lane, key: m.key, headers: m.headers, id: m.userId ? m.id : '', userId: m.userId, time: m.time });
    }
    expect(sink.errors).toEqual([]);
    await sub.close();
  });

  it('a plain subscription gets only events sent after it, filtered by the full pattern, in order per key', async () => {
    scope = new Scope();
    const t = await scope.transport();
    await t.send(out('ord.a', 'before'), 5000);
    const sink = new RecordingSink();
    const sub = t.subscribe(spec('ord.*'), sink);
    await sub.ready;
    for (let i = 0; i < 50; i++) await t.send(out(i % 5 === 0 ? 'ord.a.deep' : 'ord.a', `v${i}`, { key: 'same' }), 5000);
    await waitFor(() => sink.got.length === 40, '40 matching deliveries');
    await sleep(300);
    expect(sink.got.length).toBe(40);
    expect(sink.texts()).toEqual(Array.from({ length: 50 }, (_, i) => i).filter((i) => i % 5 !== 0).map((i) => JSON.stringify(`v${i}`)));
    await sub.close();
  });

  it('a wildcard first token finds a token first sent after the subscription', async () => {
    scope = new Scope();
    const t = await scope.transport();
    const sink = new RecordingSink();
    const sub = t.subscribe(spec('*.created'), sink);
    await sub.ready;
    await t.send(out('orders.created', 'o1'), 5000);
    await t.send(out('orders.deleted', 'no'), 5000);
    await t.send(out('users.created', 'u1'), 5000);
    await waitFor(() => sink.got.length === 2, 'two deliveries from two new tokens');
    expect(sink.got.map((d) => d.subject).sort()).toEqual(['orders.created', 'users.created']);
    await sub.close();
  });

  it('sends in a burst resolve, each stored', async () => {
    scope = new Scope();
    const t = await scope.transport({ partitions: 2 });
    const res = await Promise.all(Array.from({ length: 500 }, (_, i) => t.send(out('burst.x', `b${i}`), 10_000)));
    expect(res.every((r) => r.stored && !r.duplicate)).toBe(true);
    const lens = await Promise.all([0, 1].map((p) => scope!.admin.xlen(`${scope!.prefix}:s:burst:${p}`)));
    expect(lens[0] + lens[1]).toBe(500);
    expect(lens[0]).toBe(250); // no key: round robin
  });
});

describe('Redis transport: dedupe', () => {
  it('a caller id is stored once inside the window and again after it', async () => {
    scope = new Scope();
    const t = await scope.transport({ partitions: 1, dedupeWindowMs: 300 });
    const stream = `${scope.prefix}:s:dd:0`;
    expect(await t.send(out('dd.x', 'a', { id: 'p1-1', userId: true }), 5000)).toEqual({ duplicate: false, stored: true });
    expect(await t.send(out('dd.x', 'a', { id: 'p1-1', userId: true }), 5000)).toEqual({ duplicate: true, stored: true });
    expect(await scope.admin.xlen(stream)).toBe(1);
    // A generated id (userId false) is never deduped.
    await t.send(out('dd.x', 'b', { id: 'gen-1' }), 5000);
    await t.send(out('dd.x', 'b', { id: 'gen-1' }), 5000);
    expect(await scope.admin.xlen(stream)).toBe(3);
    await waitFor(async () => (await scope!.admin.exists(`${scope!.prefix}:d:p1-1`)) === 0, 'the dedupe window to pass');
    expect(await t.send(out('dd.x', 'a', { id: 'p1-1', userId: true }), 5000)).toEqual({ duplicate: false, stored: true });
    expect(await scope.admin.xlen(stream)).toBe(4);
  });

  it('trims with MAXLEN ~ and never with maxLen 0', async () => {
    scope = new Scope();
    const trimmed = await scope.transport({ partitions: 1, maxLen: 10 });
    const untrimmed = await scope.transport({ partitions: 1, maxLen: 0 });
    for (let i = 0; i < 300; i++) await Promise.all([trimmed.send(out('tr.x', 'x'), 5000), untrimmed.send(out('un.x', 'x', { id: `u${i}`, userId: true }), 5000)]);
    expect(await scope.admin.xlen(`${scope.prefix}:s:tr:0`)).toBeLessThan(300);
    expect(await scope.admin.xlen(`${scope.prefix}:s:un:0`)).toBe(300);
  });
});

describe('Redis transport: registry and configuration', () => {
  const info = (id: string) => ({ id, address: 'h:1', version: '1', capabilities: ['x'], load: { queued: 0, inFlight: 0, elu: 0, rate: 0 }, config: {}, startedAt: 1, seenAt: Date.now() });

  it('announce, nodes, expiry and withdraw', async () => {
    scope = new Scope();
    const t = await scope.transport();
    await t.announce(info('a'), 60_000);
    await t.announce(info('b'), 200);
    expect((await t.nodes()).map((n) => n.id)).toEqual(['a', 'b']);
    expect((await t.nodes())[0]).toEqual(info('a') && expect.objectContaining({ id: 'a', capabilities: ['x'] }));
    expect((await t.nodes())[0]).not.toHaveProperty('expiresAt');
    await waitFor(async () => (await t.nodes()).length === 1, 'b to expire');
    expect(await scope.admin.hexists(`${scope.prefix}:nodes`, 'b')).toBe(0); // expired entries are removed
    await t.withdraw('a');
    expect(await t.nodes()).toEqual([]);
  });

  it('put, get and watch: versions go up and the watcher sees them in order', async () => {
    scope = new Scope();
    const t = await scope.transport();
    const other = await scope.transport({}, 'other');
    expect(await t.getConfig('limits')).toBeUndefined();
    expect(await t.putConfig('limits', { rate: 1 })).toBe(1);
    expect(await t.getConfig('limits')).toEqual({ name: 'limits', value: { rate: 1 }, version: 1 });
    const seen: number[] = [];
    const values: unknown[] = [];
    const stop = other.watchConfig('limits', (e) => {
      seen.push(e.version);
      values.push(e.value);
    });
    await waitFor(() => seen.length === 1, 'the current entry');
    for (let v = 2; v <= 5; v++) {
      expect(await t.putConfig('limits', { rate: v })).toBe(v);
      await waitFor(() => seen.at(-1) === v, `version ${v}`);
    }
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(values.at(-1)).toEqual({ rate: 5 });
    // A burst may be coalesced, never reordered or repeated.
    await Promise.all([6, 7, 8].map((r) => t.putConfig('limits', { rate: r })));
    await waitFor(() => seen.at(-1) === 8, 'version 8');
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    expect(new Set(seen).size).toBe(seen.length);
    stop();
    await t.putConfig('limits', { rate: 9 });
    await sleep(200);
    expect(seen.at(-1)).toBe(8);
    await expect(t.putConfig('x', () => 1)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('durability reads the server setup', async () => {
    scope = new Scope();
    const t = await scope.transport();
    const d = await t.durability();
    const [, aof] = (await scope.admin.call('CONFIG', 'GET', 'appendonly')) as string[];
    expect(d.storage).toMatch(aof === 'yes' ? /^aof$/ : /^(rdb|memory)$/);
    expect(d.replicas).toBeGreaterThanOrEqual(1);
    expect(d.notes.some((n) => /MAXLEN/.test(n))).toBe(true);
    expect(d.notes.some((n) => /replica/i.test(n))).toBe(true);
  });
});

describe('Redis transport: a server that goes away', () => {
  it('connect rejects ERR_TRANSPORT_UNAVAILABLE when nothing answers by the deadline', async () => {
    const port = await freePort();
    const t = new RedisTransport({ url: `redis://127.0.0.1:${port}`, prefix: 'x', partitions: 1, maxLen: 0, dedupeWindowMs: 1000 }, 'n');
    await expectRejectCode(t.connect(300), 'ERR_TRANSPORT_UNAVAILABLE');
    expect(t.connected).toBe(false);
    await t.close();
    await t.close(); // idempotent
  });

  it('send rejects within its timeout while the server is down and works after it restarts', async () => {
    scope = new Scope();
    const port = await freePort();
    let server = await startRedis(port);
    const t = new RedisTransport({ url: `redis://127.0.0.1:${port}`, prefix: scope.prefix, partitions: 1, maxLen: 0, dedupeWindowMs: 1000 }, 'n');
    try {
      await t.connect(5000);
      expect(t.connected).toBe(true);
      expect(await t.send(out('down.x', 'a'), 2000)).toEqual({ duplicate: false, stored: true });
      await server.stop(); // SIGKILL
      await waitFor(() => !t.connected, 'the transport to see the server gone');
      await expectRejectCode(t.send(out('down.x', 'b'), 300), 'ERR_TRANSPORT_UNAVAILABLE');
      server = await startRedis(port);
      expect(await t.send(out('down.x', 'c'), 15_000)).toEqual({ duplicate: false, stored: true });
      expect(t.connected).toBe(true);
    } finally {
      await t.close();
      await server.stop();
    }
  });
});
