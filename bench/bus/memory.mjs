// Memory per queued event: 10 M small events queued with no consumer. The payload is
// one shared object, so what is measured is the bus's own bookkeeping per event.
import { Bus } from '../../dist/esm/index.js';
import { emit, scaled } from '../lib.mjs';

const N = scaled(10_000_000);
const gc = globalThis.gc;
if (!gc) {
  console.error('memory.mjs needs --expose-gc');
  process.exit(2);
}
const payload = { id: 1 };
const bus = new Bus({ capacity: N });
gc();
const before = process.memoryUsage();
for (let i = 0; i < N; i++) bus.publish('mem.queued', payload); // nobody subscribes: all stay queued
gc();
const after = process.memoryUsage();
const heap = (after.heapUsed - before.heapUsed) / N;
// `external` already includes `arrayBuffers` (the typed-array columns).
const total = (after.heapUsed + after.external - before.heapUsed - before.external) / N;
process.stderr.write(`  ${N} queued: heap +${((after.heapUsed - before.heapUsed) / 2 ** 20).toFixed(0)} MiB, rss ${(after.rss / 2 ** 20).toFixed(0)} MiB\n`);
if (bus.stats().queued !== N) throw new Error(`expected ${N} queued, got ${bus.stats().queued}`);
emit('bus.memory.per_event', 'B', [total], { heapPerEvent: heap, queued: N });
