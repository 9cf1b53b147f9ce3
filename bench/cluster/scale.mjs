// Scaling: 1 -> 2 -> 4 consumer processes in one queue group, per transport (JetStream
// and Redis Streams through the myelin bus); events/s from the first publish to the
// moment the group together handled every event. One publisher process (this one).
//   cluster.scale.<nats|redis>.<1|2|4>
// On a 2-core machine the broker, the publisher and the consumers share the same two
// cores, so more processes cannot add cores: the row shows the cost of the group
// coordination, not the speed-up a larger machine would see.
import { done, scaled } from '../lib.mjs';
import { NATS_URL, REDIS_URL, log, makeEvent, measureEndToEnd, openBus, reachable, runId, startConsumers, stopConsumers } from './common.mjs';
import { cleanup } from './cleanup.mjs';

const N = scaled(100_000);
const COUNTS = [1, 2, 4];
const which = (process.env.MYELIN_BENCH_TRANSPORTS ?? 'nats,redis').split(',');

for (const kind of which) {
  const url = kind === 'nats' ? NATS_URL : REDIS_URL;
  if (!(await reachable(url))) {
    log(`skip: cluster.scale.${kind}: no server at ${url}`);
    continue;
  }
  const name = `myelin_scale_${runId}`;
  const transport = kind === 'nats' ? { kind, servers: url, stream: name.toUpperCase() } : { kind, url, prefix: name };
  const subject = `scale.${runId}.${kind}`;
  const bus = await openBus(transport, `cluster.scale.${kind}`);
  if (!bus) continue;
  try {
    for (const k of COUNTS) {
      // A new group per count: it starts with the events published after it subscribed.
      const consumers = await startConsumers('myelin', { transport, subject, queue: `scale${k}`, subscribe: { ackWaitMs: 30_000 } }, k);
      try {
        await measureEndToEnd(`cluster.scale.${kind}.${k}`, consumers, N, async (n) => {
          for (let i = 0; i < n; i++) {
            const d = makeEvent(i);
            const o = { key: `k${i & 255}` };
            if (!bus.publish(subject, d, o)) await bus.publishAsync(subject, d, o);
          }
          await bus.drain();
        });
      } finally {
        await stopConsumers(consumers);
      }
    }
  } finally {
    await bus.close();
    await cleanup(transport);
  }
}
done();
