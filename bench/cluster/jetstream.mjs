// Durable: JetStream publish -> acknowledged handler in a second process, small JSON
// objects; events/s from the first publish to the last acknowledged event.
//   cluster.jetstream.raw     @nats-io/jetstream: js.publish with up to 1,000 acks
//                             outstanding into a file-backed stream on its own subject;
//                             a durable pull consumer in a child, consume() acking each
//   cluster.jetstream.myelin  new Bus({ transport: { kind: 'nats', stream } }): a queue-group
//                             subscription in a child; publish(), publishAsync when full
// Each run uses its own stream (deleted after) and purges it between repeats, so the
// shared server's disk holds at most one repeat.
import { connect } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { done, scaled } from '../lib.mjs';
import { cleanup } from './cleanup.mjs';
import { NATS_URL, log, makeEvent, measureBusGroup, measureEndToEnd, requireServer, runId, startConsumers, stopConsumers, windowed } from './common.mjs';

await requireServer(NATS_URL, 'cluster.jetstream');
const N = scaled(100_000);
const WINDOW = 1000;
const only = process.env.MYELIN_BENCH_ONLY;

if (only !== 'myelin') {
  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const stream = `BENCH_${runId}`.toUpperCase();
  const subject = `bench.${runId}.js`;
  await jsm.streams.add({ name: stream, subjects: [subject], storage: 'file' });
  try {
    await jsm.consumers.add(stream, { durable_name: 'raw', ack_policy: AckPolicy.Explicit, max_ack_pending: 10_000 });
    const consumers = await startConsumers('jetstream-raw', { url: NATS_URL, stream, durable: 'raw' });
    await measureEndToEnd(
      'cluster.jetstream.raw',
      consumers,
      N,
      (n) => windowed(n, WINDOW, (i) => js.publish(subject, JSON.stringify(makeEvent(i)))),
      { after: () => jsm.streams.purge(stream) },
    );
    await stopConsumers(consumers);
  } finally {
    await jsm.streams.delete(stream).catch((err) => log(`could not delete stream ${stream}: ${err.message}`));
    await nc.close();
  }
}

if (only !== 'raw') {
  // The bus's own stream, named per run so the shared server keeps nothing of ours.
  const stream = `MYELIN_BENCH_${runId}`.toUpperCase();
  const transport = { kind: 'nats', servers: NATS_URL, stream };
  const subject = `bench.${runId}.jsm`;
  await measureBusGroup('cluster.jetstream.myelin', transport, subject, N, cleanup);
}

done();
