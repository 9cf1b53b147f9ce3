// Latency from an event's *scheduled* send time to its worker handler's start, open loop
// (fixtures/open-loop.mjs explains the generator and why latency is measured against the
// schedule: coordinated omission). Two rows, one thread in the pool:
//   bus.latency.worker.half.*  offered at half the peak measured just before
//                              (MYELIN_BENCH_RATE overrides the rate)
//   bus.latency.worker.100k.*  offered at 100,000 events/s (MYELIN_BENCH_FIXED_RATE)
// and, after each, its floor (<row>.floor.*): the same generator and recording through
// a bare SharedArrayBuffer ring and one worker, no bus (fixtures/ring-floor.mjs).
// Each reports p50, p99, p99.9, max (us; median over windows, min-max spread), the
// achieved rate, the sample count, and the generator's burstiness and lag.
import { Bus } from '../../dist/esm/index.js';
import { consume, done, scaled } from '../lib.mjs';
import { closedLoopPeak, createHistograms, generate, plan, report } from './fixtures/open-loop.mjs';
import { startFloor } from './fixtures/ring-floor.mjs';

const here = (p) => new URL(p, import.meta.url);
const SUBJECT = 'lat.item';

/** A bus with one pool thread running the recording handler, attached to `windows` histograms. */
async function setup(windows) {
  const bus = new Bus({ capacity: 1 << 20 });
  await bus.workers(here('./fixtures/latency-handler.mjs'), { threads: 1, subjects: SUBJECT });
  const hists = createHistograms(windows);
  await bus.request(SUBJECT, { histIds: hists.map((h) => h.id) }); // the worker attaches
  return { bus, hists };
}

async function peak() {
  const { bus, hists } = await setup(1);
  const rate = await closedLoopPeak(bus, SUBJECT, scaled(300_000));
  await bus.close();
  for (const h of hists) h.close();
  return rate;
}

async function row(prefix, rate) {
  const p = plan(rate);
  const { bus, hists } = await setup(p.windows);
  const gen = await generate(p, hists, (d) => bus.publish(SUBJECT, d));
  await bus.drain();
  const stamps = new Float64Array(await bus.request(SUBJECT, { stamps: true }));
  report(prefix, p, hists, stamps, gen);
  consume(stamps[0]);
  await bus.close();
  for (const h of hists) h.close();
}

/** The same row through a bare shared-memory ring instead of the bus (fixtures/ring-floor.mjs). */
async function floor(prefix, rate) {
  const p = plan(rate);
  const hists = createHistograms(p.windows);
  const ring = await startFloor(hists);
  const gen = await generate(p, hists, ring.publish);
  report(prefix, p, hists, await ring.finish(), gen);
  for (const h of hists) h.close();
}

const peakRate = await peak();
const half = Number(process.env.MYELIN_BENCH_RATE ?? Math.floor(peakRate / 2));
process.stderr.write(`  peak to 1 worker ${Math.round(peakRate)} events/s (closed loop); offering ${half} events/s open loop\n`);
console.log(`RESULT ${JSON.stringify({ scenario: 'bus.latency.worker.peak', metric: 'events/s', median: peakRate, min: peakRate, max: peakRate, repeats: 3 })}`);
const fixed = Number(process.env.MYELIN_BENCH_FIXED_RATE ?? 100_000);
// Floors first, and the row most likely to fall behind (half peak) last: a row that
// falls behind leaves a heap full of promoted events whose collection would land on
// whatever runs next.
await floor('bus.latency.worker.half.floor', half);
await floor('bus.latency.worker.100k.floor', fixed);
await row('bus.latency.worker.100k', fixed);
await row('bus.latency.worker.half', half);
done();
