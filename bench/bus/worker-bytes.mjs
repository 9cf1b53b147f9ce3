// Main -> worker, 64-byte Uint8Array payloads: myelin's worker pool against ringbuf.js
// (a SharedArrayBuffer SPSC ring) moving the same bytes with no bus around them.
import { Worker } from 'node:worker_threads';
import { RingBuffer } from 'ringbuf.js';
import { Bus } from '../../dist/esm/index.js';
import { consume, done, measureAsync, scaled } from '../lib.mjs';

const N = scaled(1_000_000);
const here = (p) => new URL(p, import.meta.url);
const record = new Uint8Array(64).fill(1);

{
  const sab = RingBuffer.getStorageForCapacity(64 * 4096, Uint8Array);
  const rb = new RingBuffer(sab, Uint8Array);
  const ctl = new Int32Array(new SharedArrayBuffer(16));
  const w = new Worker(here('./fixtures/ringbuf-worker.mjs'), { workerData: { sab, ctl: ctl.buffer } });
  const batch = new Uint8Array(64 * 256).fill(1);
  await measureAsync('bus.bytes.ringbufjs', 'events/s', N, async (n) => {
    Atomics.store(ctl, 1, 0);
    Atomics.store(ctl, 0, n);
    for (let sent = 0; sent < n; ) {
      const k = Math.min(256, n - sent);
      const pushed = rb.push(batch, k * 64);
      sent += pushed / 64;
      if (pushed === 0) await new Promise((r) => setImmediate(r));
    }
    while (Atomics.load(ctl, 1) < n) await Atomics.waitAsync(ctl, 1, Atomics.load(ctl, 1), 1000).value;
  });
  Atomics.store(ctl, 2, 1);
  consume(await new Promise((r) => w.once('message', r)));
  await w.terminate();
}
{
  const bus = new Bus({ capacity: 1 << 16 });
  await bus.workers(here('./fixtures/count-handler.mjs'), { threads: 1, subjects: 'bytes.item' });
  await measureAsync('bus.bytes.myelin', 'events/s', N, async (n) => {
    for (let i = 0; i < n; i++) if (!bus.publish('bytes.item', record)) await bus.publishAsync('bytes.item', record);
    await bus.drain();
  });
  consume(bus.stats().delivered);
  await bus.close();
}
done();
