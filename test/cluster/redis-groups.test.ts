// Queue groups on the Redis transport against a real Redis: members split a group's
// events, keyed events keep their order with one reader per partition, unacked entries
// come back after ackWaitMs (and are taken over from a member that left), a deleted
// group or stream is recreated, trimmed entries are counted as lost, and two claimers
// racing never both get an entry.
import { Redis } from 'ioredis';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { claimIdle, defineScripts, partitionOf } from '../../lib/cluster/redis-scripts.js';
import { requireRedis } from '../ai/services.js';
import { out, RecordingSink, REDIS_URL, Scope, sleep, waitFor } from './redis-helpers.js';

let scope: Scope | undefined;
beforeAll(requireRedis);
afterEach(async () => {
  await scope?.cleanup();
  scope = undefined;
});

const group = (pattern: string, queue: string, ackWaitMs = 300) => ({ pattern, queue, ackWaitMs, maxDeliver: 5 });

describe('Redis transport: queue groups', () => {
  it('two members split the events: together all of them, none twice', async () => {
    scope = new Scope();
    const a = await scope.transport({}, 'a');
    const b = await scope.transport({}, 'b');
    const sa = new RecordingSink();
    const sb = new RecordingSink();
    const subA = a.subscribe(group('split.>', 'workers'), sa);
    const subB = b.subscribe(group('split.>', 'workers'), sb);
    await Promise.all([subA.ready, subB.ready]);
    await sleep(300); // both members heartbeat at least once more: ownership settled
    for (let i = 0; i < 200; i++) await a.send(out('split.x', `e${i}`), 5000);
    await waitFor(() => sa.got.length + sb.got.length >= 200, '200 deliveries');
    await sleep(300);
    const all = [...sa.texts(), ...sb.texts()];
    expect(all.length).toBe(200);
    expect(new Set(all).size).toBe(200);
    expect(sa.got.length).toBeGreaterThan(0);
    expect(sb.got.length).toBeGreaterThan(0);
    expect([...sa.errors, ...sb.errors]).toEqual([]);
    const signals = await a.signals();
    expect(signals).toEqual([{ group: 'workers', pattern: 'split.>', lag: 0, pending: 0, redelivered: 0 }]);
  });

  it('three members with keyed events: per-key order holds and each partition has one reader', async () => {
    scope = new Scope();
    const ts = await Promise.all(['a', 'b', 'c'].map((n) => scope!.transport({ partitions: 6 }, n)));
    const sinks = ts.map(() => new RecordingSink());
    const subs = ts.map((t, i) => t.subscribe(group('keyed.*', 'ordered'), sinks[i]));
    await Promise.all(subs.map((s) => s.ready));
    await sleep(300);
    const keys = Array.from({ length: 24 }, (_, i) => `cust-${i}`);
    // Sends from different transports are not ordered between each other: each round goes after the last.
    for (let n = 0; n < 20; n++) await Promise.all(keys.map((k, i) => ts[(n + i) % 3].send(out('keyed.ev', `${k}#${n}`, { key: k }), 5000)));
    const total = keys.length * 20;
    await waitFor(() => sinks.reduce((a, s) => a + s.got.length, 0) >= total, `${total} deliveries`);
    const readerOf = new Map<number, number>();
    for (let i = 0; i < 3; i++) {
      const perKey = new Map<string, number[]>();
      for (const d of sinks[i].got) {
        expect(d.meta.key).toBeDefined();
        const [k, n] = (JSON.parse(Buffer.from(d.payload).toString()) as string).split('#');
        perKey.set(k, [...(perKey.get(k) ?? []), Number(n)]);
        const p = partitionOf(k, 6);
        expect(readerOf.get(p) ?? i, `partition ${p} read by one member`).toBe(i);
        readerOf.set(p, i);
      }
      for (const [k, ns] of perKey) expect(ns, k).toEqual([...ns].sort((x, y) => x - y));
    }
    expect(new Set(readerOf.values()).size).toBe(3); // 6 partitions over 3 members: each reads some
    expect(sinks.reduce((a, s) => a + s.got.length, 0)).toBe(total);
  });

  it('an unacked entry comes back after ackWaitMs (deliveries 2); a member that left is taken over', async () => {
    scope = new Scope();
    const a = await scope.transport({ partitions: 1 }, 'a');
    const slow = new RecordingSink(false);
    const subA = a.subscribe(group('redo.x', 'g', 300), slow);
    await subA.ready;
    await a.send(out('redo.x', 'once'), 5000);
    await waitFor(() => slow.got.length === 2, 'the redelivery');
    expect(slow.got.map((d) => d.deliveries)).toEqual([1, 2]);
    expect(slow.takeovers).toEqual([]); // its own entry: a redelivery, not a takeover
    // A second member joins; the first leaves without acking: the second takes the entry over.
    const b = await scope.transport({ partitions: 1 }, 'b');
    const sb = new RecordingSink();
    const subB = b.subscribe(group('redo.x', 'g', 300), sb);
    await subB.ready;
    await subA.close();
    await waitFor(() => sb.got.length === 1, 'the takeover');
    expect(sb.got[0].deliveries).toBeGreaterThanOrEqual(3);
    expect(Buffer.from(sb.got[0].payload).toString()).toBe(JSON.stringify('once'));
    expect(sb.takeovers.reduce((s, t) => s + t.count, 0)).toBe(1);
    expect(sb.takeovers[0].idleMs).toBeGreaterThanOrEqual(300);
    await waitFor(async () => (await b.signals())[0]?.pending === 0, 'the ack');
    expect((await b.signals())[0].redelivered).toBe(1);
  });

  it('working() holds off the redelivery', async () => {
    scope = new Scope();
    const a = await scope.transport({ partitions: 1 }, 'a');
    const sink = new RecordingSink(false);
    const sub = a.subscribe(group('hold.x', 'g', 400), sink);
    await sub.ready;
    await a.send(out('hold.x', 'busy'), 5000);
    await waitFor(() => sink.got.length === 1, 'the delivery');
    for (let i = 0; i < 8; i++) {
      sink.got[0].working!();
      await sleep(100);
    }
    expect(sink.got.length).toBe(1);
    sink.got[0].ack();
    await waitFor(async () => (await a.signals())[0].pending === 0, 'the ack');
  });

  for (const how of ['the group is destroyed', 'the stream is deleted'] as const) {
    it(`keeps reading when ${how} (NOGROUP), reporting it`, async () => {
      scope = new Scope();
      const a = await scope.transport({ partitions: 1 }, 'a');
      const sink = new RecordingSink();
      const sub = a.subscribe(group('ng.x', 'g'), sink);
      await sub.ready;
      await a.send(out('ng.x', 'one'), 5000);
      await waitFor(() => sink.got.length === 1, 'the first event');
      const stream = `${scope.prefix}:s:ng:0`;
      if (how === 'the stream is deleted') await scope.admin.del(stream);
      else await scope.admin.call('XGROUP', 'DESTROY', stream, 'g|ng.x');
      await waitFor(() => sink.errors.some((e) => /recreated/.test((e as Error).message)), 'the recreation report');
      await a.send(out('ng.x', 'two'), 5000);
      await waitFor(() => sink.got.length === 2, 'the event after the recreation');
      expect(sink.texts()).toEqual([JSON.stringify('one'), JSON.stringify('two')]);
    });
  }

  it('an entry trimmed while pending is acknowledged and counted as lost, once', async () => {
    scope = new Scope();
    const a = await scope.transport({ partitions: 1 }, 'a');
    const sink = new RecordingSink(false);
    const sub = a.subscribe(group('gone.x', 'g', 300), sink);
    await sub.ready;
    for (let i = 0; i < 5; i++) await a.send(out('gone.x', `p${i}`), 5000);
    await waitFor(() => sink.got.length === 5, 'five deliveries');
    const stream = `${scope.prefix}:s:gone:0`;
    await scope.admin.call('XTRIM', stream, 'MAXLEN', 0);
    await waitFor(() => sink.lostCount('trimmed before delivery') === 5, 'five lost');
    await waitFor(async () => (await a.signals())[0].pending === 0, 'the pending list to empty');
    await sleep(500);
    expect(sink.lostCount('trimmed before delivery')).toBe(5);
    expect(sink.got.length).toBe(5);
  });

  it('MAXLEN trimming under a lagging group is counted as lost, once, and the rest is delivered', async () => {
    scope = new Scope();
    const a = await scope.transport({ partitions: 1, maxLen: 100 }, 'a');
    const sink = new RecordingSink();
    sink.setRoom(0); // the group lags: nothing is read
    const sub = a.subscribe(group('lag.x', 'g', 300), sink);
    await sub.ready;
    const sent = 1000;
    for (let i = 0; i < sent; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => a.send(out('lag.x', `l${i + j}`), 5000)));
    const stream = `${scope.prefix}:s:lag:0`;
    const kept = await scope.admin.xlen(stream);
    expect(kept).toBeLessThan(sent);
    await waitFor(() => sink.lostCount('trimmed unread by MAXLEN') === sent - kept, `${sent - kept} lost`).catch((err) => {
      console.log(sink.losses, sink.errors);
      throw err;
    });
    expect((await a.signals())[0].lag).toBe(kept);
    sink.setRoom(256);
    await waitFor(() => sink.got.length === kept, `the ${kept} kept entries`);
    await sleep(500);
    expect(sink.lostCount('trimmed unread by MAXLEN')).toBe(sent - kept);
    expect(sink.got.length + sink.lostCount('trimmed unread by MAXLEN')).toBe(sent);
    expect(sink.texts().at(-1)).toBe(JSON.stringify(`l${sent - 1}`));
    expect((await a.signals())[0].lag).toBe(0);
  });

  it('the audit counts a trimmed gap the group already read across, once', async () => {
    scope = new Scope();
    const stream = `${scope.prefix}:s:gap:0`;
    const r = defineScripts(new Redis(REDIS_URL, { protocol: 2 }));
    try {
      expect(await r.myelinCreateGroup(stream, 'g', '$')).toBe(1);
      expect(await r.myelinCreateGroup(stream, 'g', '$')).toBe(0);
      for (let i = 0; i < 10; i++) await r.xadd(stream, '*', 'd', `a${i}`);
      await r.call('XREADGROUP', 'GROUP', 'g', 'm', 'COUNT', 10, 'STREAMS', stream, '>');
      for (let i = 0; i < 10; i++) await r.xadd(stream, '*', 'd', `b${i}`);
      await r.call('XTRIM', stream, 'MAXLEN', 5); // 5 of the 10 unread go
      for (let i = 0; i < 3; i++) await r.xadd(stream, '*', 'd', `c${i}`);
      await r.call('XREADGROUP', 'GROUP', 'g', 'm', 'COUNT', 4, 'STREAMS', stream, '>'); // across the gap
      expect(await r.myelinAudit(stream, 'g', 10_000)).toEqual([5, 0]);
      expect(await r.myelinAudit(stream, 'g', 10_000)).toEqual([0, 0]);
      const groups = (await r.call('XINFO', 'GROUPS', stream)) as unknown[][];
      expect(groups[0][groups[0].indexOf('lag') + 1]).toBe(4);
    } finally {
      r.disconnect();
    }
  });

  it('two claimers racing never both get an entry', async () => {
    scope = new Scope();
    const stream = `${scope.prefix}:s:race:0`;
    const admin = scope.admin;
    await admin.call('XGROUP', 'CREATE', stream, 'g', '$', 'MKSTREAM');
    for (let i = 0; i < 300; i++) await admin.xadd(stream, '*', 's', 'race.x', 'd', `r${i}`);
    const read = (await admin.call('XREADGROUP', 'GROUP', 'g', 'dead', 'COUNT', 1000, 'STREAMS', stream, '>')) as [string, [string, string[]][]][];
    // Idle for an hour (XCLAIM's IDLE), claimed at 30 minutes: a claimed entry cannot become claimable again while the test runs.
    await admin.call('XCLAIM', stream, 'g', 'dead', 0, ...read[0][1].map((e) => e[0]), 'IDLE', 3_600_000, 'JUSTID');
    const c1 = defineScripts(new Redis(REDIS_URL, { protocol: 2 }));
    const c2 = defineScripts(new Redis(REDIS_URL, { protocol: 2 }));
    try {
      const got: string[][] = [[], []];
      const claimer = async (r: typeof c1, i: number, me: string) => {
        for (let round = 0; round < 40; round++) {
          for (const row of await claimIdle(r, stream, 'g', me, 1_800_000, 10)) {
            expect(row[4]).toBeDefined();
            got[i].push(row[0].toString());
          }
        }
      };
      await Promise.all([claimer(c1, 0, 'one'), claimer(c2, 1, 'two')]);
      const both = got[0].filter((id) => got[1].includes(id));
      expect(both).toEqual([]);
      expect(new Set([...got[0], ...got[1]]).size).toBe(got[0].length + got[1].length);
      expect(got[0].length + got[1].length).toBe(300);
      expect(got[0].length).toBeGreaterThan(0);
      expect(got[1].length).toBeGreaterThan(0);
    } finally {
      c1.disconnect();
      c2.disconnect();
    }
  });
});
