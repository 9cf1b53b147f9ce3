// Redis Streams consumer group: publish -> acknowledged handler in a second process,
// small JSON objects; events/s from the first XADD to the last handled event.
//   cluster.redis.raw     ioredis: XADD in explicit pipelines of 256 (4 pipelines in
//                         flight); a child reads with XREADGROUP COUNT 256 BLOCK and
//                         sends each batch's XACK pipelined behind the next read
//   cluster.redis.myelin  new Bus({ transport: { kind: 'redis', prefix } }): a queue-group
//                         subscription in a child; publish(), publishAsync when full
// Keys are unique per run and deleted after; the stream is trimmed between repeats.
import { Redis } from 'ioredis';
import { done, scaled } from '../lib.mjs';
import { cleanup } from './cleanup.mjs';
import { REDIS_URL, log, makeEvent, measureBusGroup, measureEndToEnd, requireServer, runId, startConsumers, stopConsumers } from './common.mjs';

await requireServer(REDIS_URL, 'cluster.redis');
const N = scaled(200_000);
const PIPE = 256;
const IN_FLIGHT = 4;
const only = process.env.MYELIN_BENCH_ONLY;

if (only !== 'myelin') {
  const r = new Redis(REDIS_URL);
  const key = `bench:${runId}:raw`;
  const group = 'raw';
  await r.xgroup('CREATE', key, group, '$', 'MKSTREAM');
  try {
    const consumers = await startConsumers('redis-raw', { url: REDIS_URL, key, group });
    await measureEndToEnd(
      'cluster.redis.raw',
      consumers,
      N,
      async (n) => {
        const pending = [];
        for (let i = 0; i < n; i += PIPE) {
          const p = r.pipeline();
          for (let j = i; j < Math.min(n, i + PIPE); j++) p.xadd(key, '*', 'd', JSON.stringify(makeEvent(j)));
          pending.push(p.exec());
          if (pending.length >= IN_FLIGHT) await pending.shift();
        }
        await Promise.all(pending);
      },
      { after: () => r.xtrim(key, 'MAXLEN', 0) },
    );
    await stopConsumers(consumers);
  } finally {
    await r.del(key).catch((err) => log(`could not delete ${key}: ${err.message}`));
    r.disconnect();
  }
}

if (only !== 'raw') {
  const prefix = `myelin-bench-${runId}`;
  const transport = { kind: 'redis', url: REDIS_URL, prefix };
  const subject = `bench.${runId}.redis`;
  await measureBusGroup('cluster.redis.myelin', transport, subject, N, cleanup);
}

done();
