// Main thread -> one worker handler, small objects: myelin's worker pool (shared-memory
// rings, a batch per crossing) against postMessage per event, postMessage in batches
// of 256, and Piscina (best setting: concurrentTasksPerWorker 64).
import { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { Bus } from '../../dist/esm/index.js';
import { consume, done, measureAsync, scaled } from '../lib.mjs';

const N = scaled(1_000_000);
const here = (p) => new URL(p, import.meta.url);
const event = (i) => ({ id: i, kind: 'order', qty: 3 }); // a fresh object per event, as in a service

async function postWorker() {
  const w = new Worker(here('./fixtures/post-worker.mjs'));
  await new Promise((r) => w.once('online', r));
  return w;
}

{
  const w = await postWorker();
  await measureAsync('bus.worker.postmessage', 'events/s', scaled(300_000), async (n) => {
    w.postMessage({ target: n });
    const doneP = new Promise((r) => w.once('message', r));
    for (let i = 0; i < n; i++) w.postMessage(event(i));
    consume((await doneP).sum);
  });
  await w.terminate();
}
{
  const w = await postWorker();
  await measureAsync('bus.worker.postmessage256', 'events/s', N, async (n) => {
    w.postMessage({ target: n });
    const doneP = new Promise((r) => w.once('message', r));
    for (let i = 0; i < n; i += 256) {
      const batch = new Array(256);
      for (let k = 0; k < 256; k++) batch[k] = event(i + k);
      w.postMessage(batch);
    }
    consume((await doneP).sum);
  });
  await w.terminate();
}
{
  const pool = new Piscina({ filename: here('./fixtures/piscina-task.mjs').href, minThreads: 1, maxThreads: 1, concurrentTasksPerWorker: 64 });
  await measureAsync('bus.worker.piscina', 'events/s', scaled(50_000), async (n) => {
    const inflight = [];
    let sum = 0;
    for (let i = 0; i < n; i++) {
      inflight.push(pool.run(event(i)));
      if (inflight.length >= 1024) sum += (await Promise.all(inflight.splice(0))).reduce((a, b) => a + b, 0);
    }
    sum += (await Promise.all(inflight)).reduce((a, b) => a + b, 0);
    consume(sum);
  });
  await pool.destroy();
}
{
  const bus = new Bus({ capacity: 1 << 16 });
  await bus.workers(here('./fixtures/count-handler.mjs'), { threads: 1, subjects: 'work.item' });
  await measureAsync('bus.worker.myelin', 'events/s', N, async (n) => {
    for (let i = 0; i < n; i++) {
      const p = event(i);
      if (!bus.publish('work.item', p)) await bus.publishAsync('work.item', p);
    }
    await bus.drain();
  });
  consume(bus.stats().delivered);
  await bus.close();
}
done();
