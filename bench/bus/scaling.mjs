// Throughput of one worker pool by thread count (1, 2, ... up to MYELIN_BENCH_MAX_THREADS
// or the available cores), keyed events spread over 256 keys.
import { availableParallelism } from 'node:os';
import { Bus } from '../../dist/esm/index.js';
import { measureAsync, scaled } from '../lib.mjs';

const here = (p) => new URL(p, import.meta.url);
const max = Number(process.env.MYELIN_BENCH_MAX_THREADS ?? availableParallelism());
const counts = [1, 2, 4, 8, 16].filter((n) => n <= max);
const N = scaled(500_000);
for (const threads of counts) {
  const bus = new Bus({ capacity: 1 << 16 });
  await bus.workers(here('./fixtures/spin-handler.mjs'), { threads, subjects: 'scale.item' });
  await measureAsync(`bus.scaling.${threads}`, 'events/s', N, async (n) => {
    for (let i = 0; i < n; i++) {
      const d = { qty: i };
      const o = { key: `k${i & 255}` };
      if (!bus.publish('scale.item', d, o)) await bus.publishAsync('scale.item', d, o);
    }
    await bus.drain();
  });
  await bus.close();
}
