// The cluster bus with its engine down: our own nats-server / redis-server on a free
// port (test/cluster/brokers.ts), stopped (SIGSTOP), killed (kill -9) and restarted.
//   - publishAsync never reports ok when the engine did not acknowledge: it rejects with
//     ERR_TRANSPORT_UNAVAILABLE within ackTimeoutMs, and the event is counted `unknown`;
//   - publish() buffers within `capacity`, and the overflow policy applies beyond it
//     ('wait' refuses and counts, 'reject' throws ERR_BUS_FULL, the drops count);
//   - what publish() buffered while the engine was down reaches the queue group once it
//     is back, each event once (the retried sends carry the same id: dedupe).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bus } from '../../lib/bus/bus.js';
import { type Broker, startNats, startRedis } from './brokers.js';
import { type Kind, sleep, uid, until } from './engines.js';


describe.each<Kind>(['nats', 'redis'])('cluster bus on %s with the engine down', (kind) => {
  let broker: Broker;
  const buses: Bus[] = [];
  const transport = (extra: Record<string, unknown> = {}) =>
    kind === 'nats'
      ? { kind, servers: broker.url, stream: `F_${uid()}`, ackTimeoutMs: 500, ...extra }
      : { kind, url: broker.url, prefix: `f${uid()}`, partitions: 2, ackTimeoutMs: 500, ...extra };
  const open = (t: ReturnType<typeof transport>, opts: Record<string, unknown> = {}) => {
    const b = new Bus({ transport: t, ...opts });
    buses.push(b);
    return b;
  };

  beforeAll(async () => {
    // Redis keeps nothing across a restart unless it writes an AOF: with fsync per write,
    // what it acknowledged survives kill -9 (the durability stats() reports).
    broker = kind === 'nats' ? await startNats({ jetstream: true }) : await startRedis({ appendonly: true });
  });
  afterAll(async () => {
    broker.kill('SIGCONT');
    await Promise.all(buses.map((b) => b.close()));
    await broker.stop();
  });

  it('publishAsync rejects with ERR_TRANSPORT_UNAVAILABLE while the engine is stopped, and never reports ok', async () => {
    const bus = open(transport());
    await bus.ready;
    await bus.publishAsync('fa.one', 1); // up: acknowledged
    broker.kill('SIGSTOP');
    try {
      const t0 = Date.now();
      await expect(bus.publishAsync('fa.two', 2)).rejects.toMatchObject({ code: 'ERR_TRANSPORT_UNAVAILABLE' });
      expect(Date.now() - t0).toBeLessThan(10_000); // the deadline, not a hang
      expect(bus.stats().transport?.unknown).toBe(1);
    } finally {
      broker.kill('SIGCONT');
    }
    await bus.publishAsync('fa.three', 3);
    expect(bus.stats().transport?.acked).toBeGreaterThanOrEqual(2);
  });

  it.each(['wait', 'reject', 'drop-newest', 'drop-oldest'] as const)('bounds the outbox at capacity under %s while the engine is stopped', async (overflow) => {
    const bus = open(transport({ ackTimeoutMs: 300 }), { capacity: 8, overflow });
    await bus.ready;
    broker.kill('SIGSTOP');
    try {
      let accepted = 0;
      let full = 0;
      for (let i = 0; i < 20; i++) {
        try {
          if (bus.publish('fo.e', i)) accepted++;
          else full++;
        } catch (err) {
          expect((err as { code?: string }).code).toBe('ERR_BUS_FULL');
          full++;
        }
      }
      const st = bus.stats();
      const t = st.transport!;
      expect(t.outbox + t.unacked).toBeLessThanOrEqual(8);
      if (overflow === 'wait' || overflow === 'reject') {
        expect(accepted).toBe(8);
        expect(st.refused).toBe(12);
        expect(st.published).toBe(8);
      } else {
        // every publish was accepted or dropped, and every drop is counted
        expect(st.published).toBe(20);
        expect(st.dropped).toBe(12);
      }
      expect(accepted + full).toBe(20);
    } finally {
      broker.kill('SIGCONT');
    }
    await bus.drain();
    expect(bus.stats().transport?.outbox).toBe(0);
  });

  it('what publish() buffered across a kill -9 and restart of the engine reaches the queue group once each', async () => {
    const t = transport({ ackTimeoutMs: 1000 });
    const producer = open(t);
    const consumer = open(t);
    const seen = new Map<number, number>();
    const sub = consumer.subscribe('fk.e', (ev) => void seen.set(ev.data as number, (seen.get(ev.data as number) ?? 0) + 1), { queue: 'g', ackWaitMs: 2000 });
    await sub.ready;
    const N = 300;
    for (let i = 0; i < N / 2; i++) producer.publish('fk.e', i);
    await producer.drain();
    broker.kill('SIGKILL');
    for (let i = N / 2; i < N; i++) expect(producer.publish('fk.e', i)).toBe(true); // buffered in the outbox
    await sleep(300);
    const during = producer.stats().transport!;
    expect(during.outbox + during.unacked).toBeGreaterThan(0);
    await broker.restart();
    await until(() => seen.size === N, `all ${N} events (have ${seen.size})`, 45_000);
    await producer.drain();
    expect(producer.stats().transport?.acked).toBe(N);
    // At least once, duplicates bounded: the publishes retried across the outage are
    // stored once (same id, dedupe window), so a duplicate can only be a redelivery of
    // an event handled before the kill whose acknowledgement the engine had not yet
    // made durable (JetStream writes consumer state lazily, as it does messages).
    const dup = [...seen.values()].filter((n) => n > 1).length;
    for (let i = N / 2; i < N; i++) expect(seen.get(i), `event ${i} buffered during the outage`).toBe(1);
    expect(dup).toBeLessThanOrEqual(N / 2);
  });
});
