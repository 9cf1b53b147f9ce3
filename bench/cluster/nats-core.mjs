// 2 processes, publish -> subscribe over core NATS (no durability), small JSON objects:
// the publisher in this process, the subscriber in a child (consumer.mjs); events/s
// end to end, counted at the subscriber.
//   cluster.nats.core.raw     @nats-io/transport-node: JSON.stringify + publish, flush every 16,384
//   cluster.nats.core.myelin  new Bus({ transport: { kind: 'nats', stream: false } }).publish (part 2)
// Core NATS is at most once: a subscriber that falls too far behind is cut off by the
// server, so the count is what arrived and any shortfall is printed as lost.
import { connect } from '@nats-io/transport-node';
import { done, scaled } from '../lib.mjs';
import { NATS_URL, makeEvent, measureEndToEnd, openBus, requireServer, runId, startConsumers, stopConsumers } from './common.mjs';

await requireServer(NATS_URL, 'cluster.nats.core');
const N = scaled(200_000);
const subject = `bench.${runId}.core`;
const only = process.env.MYELIN_BENCH_ONLY; // 'raw' | 'myelin': one side only (debugging)

if (only !== 'myelin') {
  const nc = await connect({ servers: NATS_URL });
  const consumers = await startConsumers('nats-core-raw', { url: NATS_URL, subject });
  await measureEndToEnd('cluster.nats.core.raw', consumers, N, async (n) => {
    for (let i = 0; i < n; i++) {
      nc.publish(subject, JSON.stringify(makeEvent(i)));
      // A round trip now and then keeps the client's buffer and the server's per-client
      // pending bytes bounded (the way a real publisher paces itself).
      if ((i & 16383) === 16383) await nc.flush();
    }
    await nc.flush();
  });
  await stopConsumers(consumers);
  await nc.close();
}

if (only !== 'raw') {
  const transport = { kind: 'nats', servers: NATS_URL, stream: false };
  const bus = await openBus(transport, 'cluster.nats.core.myelin');
  if (bus) {
    const consumers = await startConsumers('myelin', { transport, subject });
    await measureEndToEnd('cluster.nats.core.myelin', consumers, N, async (n) => {
      for (let i = 0; i < n; i++) {
        const d = makeEvent(i);
        if (!bus.publish(subject, d)) await bus.publishAsync(subject, d);
      }
      await bus.drain();
    });
    await stopConsumers(consumers);
    await bus.close();
  }
}
done();
