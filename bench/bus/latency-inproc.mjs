// Latency from an event's *scheduled* send time to its in-process handler's start, open
// loop at half the in-process peak measured just before (MYELIN_BENCH_RATE overrides);
// fixtures/open-loop.mjs explains the generator. Reports bus.latency.inproc.half.*: p50,
// p99, p99.9, max (us; median over windows, min-max spread), the achieved rate, the
// sample count, and the generator's burstiness and lag; then the floor
// (bus.latency.inproc.half.floor.*): the same generator calling the handler directly.
//
// The handler reads the clock on the first event of each delivery round and then every
// 8th event: a clock read (~60 ns) per event would cost as much as the bus's own
// delivery at these rates. A recorded start is early by at most 7 deliveries (< 1 us).
import { Bus } from '../../dist/esm/index.js';
import { HistogramRecorder } from '../../dist/esm/internal/histogram.js';
import { consume, done, scaled } from '../lib.mjs';
import { clock, closedLoopPeak, createHistograms, generate, newStamps, plan, recorder, report } from './fixtures/open-loop.mjs';

const SUBJECT = 'lat.item';

/** The recording handler (on event data) and its `windows` histograms. */
function recording(windows) {
  const hists = createHistograms(windows);
  const stamps = newStamps(windows);
  const rec = recorder(hists.map((h) => new HistogramRecorder(h)), stamps);
  let now = 0;
  let k = 0;
  let fresh = false;
  const expire = () => {
    fresh = false;
  };
  const handle = (data) => {
    if (!fresh || (++k & 7) === 0) {
      now = clock();
      if (!fresh) {
        fresh = true;
        queueMicrotask(expire); // runs once the current delivery round has returned
      }
    }
    rec(data, now);
  };
  return { hists, stamps, handle };
}

/** A bus whose one subscriber records into `windows` histograms. */
function setup(windows, capacity) {
  const { hists, stamps, handle } = recording(windows);
  const bus = new Bus({ capacity });
  bus.subscribe(SUBJECT, (ev) => handle(ev.data));
  return { bus, hists, stamps };
}

const probe = setup(1, 1 << 16);
const peakRate = await closedLoopPeak(probe.bus, SUBJECT, scaled(2_000_000));
await probe.bus.close();
for (const h of probe.hists) h.close();
const rate = Number(process.env.MYELIN_BENCH_RATE ?? Math.floor(peakRate / 2));
process.stderr.write(`  in-process peak ${Math.round(peakRate)} events/s (closed loop); offering ${rate} events/s open loop\n`);
console.log(`RESULT ${JSON.stringify({ scenario: 'bus.latency.inproc.peak', metric: 'events/s', median: peakRate, min: peakRate, max: peakRate, repeats: 3 })}`);

const p = plan(rate);
// The floor first (the same generator calling the same recording handler directly, no
// bus): a bus run that falls behind leaves a heap whose collection would land on it.
const direct = recording(p.windows);
const floorGen = await generate(p, direct.hists, (d) => {
  direct.handle(d);
  return true;
});
report('bus.latency.inproc.half.floor', p, direct.hists, direct.stamps, floorGen);
for (const h of direct.hists) h.close();

// Lanes sized for 0.25 s of backlog at the offered rate: a run that falls behind further
// refuses events, and refused events count as lost (see generate()).
const { bus, hists, stamps } = setup(p.windows, Math.min(1 << 22, 2 ** Math.ceil(Math.log2(rate / 4))));
const gen = await generate(p, hists, (d) => bus.publish(SUBJECT, d));
await bus.drain();
report('bus.latency.inproc.half', p, hists, stamps, gen);
consume(stamps[0]);
await bus.close();
for (const h of hists) h.close();
done();
