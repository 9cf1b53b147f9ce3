// Latency from publish to the worker handler, open loop at a fixed offered rate (half
// the measured peak unless MYELIN_BENCH_RATE says otherwise), so queueing delay shows.
// The worker records (now - publish time) into a native HDR histogram shared by id.
import { Bus } from '../../dist/esm/index.js';
import { createHistogram } from '../../dist/esm/internal/histogram.js';
import { emit, scaled } from '../lib.mjs';

const here = (p) => new URL(p, import.meta.url);
const hist = createHistogram();

async function peak() {
  const bus = new Bus({ capacity: 1 << 16 });
  await bus.workers(here('./fixtures/count-handler.mjs'), { threads: 1, subjects: 'lat.item' });
  const n = scaled(300_000);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const d = { qty: i };
    if (!bus.publish('lat.item', d)) await bus.publishAsync('lat.item', d);
  }
  await bus.drain();
  const rate = n / ((performance.now() - t0) / 1000);
  await bus.close();
  return rate;
}

const peakRate = await peak();
const rate = Number(process.env.MYELIN_BENCH_RATE ?? Math.floor(peakRate / 2));
process.stderr.write(`  peak ${Math.round(peakRate)} events/s; offering ${rate} events/s open loop\n`);

const bus = new Bus({ capacity: 1 << 20 });
await bus.workers(here('./fixtures/latency-handler.mjs'), { threads: 1, subjects: 'lat.item' });
await bus.request('lat.item', { histId: hist.id, at: 0 }); // the worker attaches to the histogram
const seconds = Math.max(1, Math.round(5 * Number(process.env.MYELIN_BENCH_SCALE ?? 1)));
const total = rate * seconds;
let sent = 0;
const start = performance.now();
// Each 1 ms tick publishes what the schedule says is due: a fixed offered rate that
// does not slow down when the system does (open loop).
await new Promise((resolve) => {
  const tick = () => {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
    for (; sent < due; sent++) bus.publish('lat.item', { at: performance.timeOrigin + performance.now() });
    if (sent >= total) resolve();
    else setTimeout(tick, 1);
  };
  tick();
});
await bus.drain();
const s = hist.snapshot();
const us = (ns) => ns / 1000;
emit('bus.latency.p50', 'us', [us(s.p50)]);
emit('bus.latency.p99', 'us', [us(s.p99)]);
emit('bus.latency.p999', 'us', [us(s.p999)]);
emit('bus.latency.max', 'us', [us(s.max)]);
emit('bus.latency.rate', 'events/s', [rate], { samples: s.count });
await bus.close();
