// Bus throughput with every built-in metric on (a Metrics with the system series, the
// bus recording into it, a scrape every second) against the same bus with none.
import { Bus, Metrics } from '../../dist/esm/index.js';
import { consume, done, measureAsync, scaled } from '../lib.mjs';

const N = scaled(1_000_000);

async function run(scenario, withMetrics) {
  const metrics = withMetrics ? new Metrics({}) : undefined;
  const bus = new Bus(withMetrics ? { metrics } : {});
  let got = 0;
  let want = 0;
  let wake;
  bus.subscribe('bench.ev', () => {
    if (++got === want) wake();
  });
  const scrape = withMetrics ? setInterval(() => metrics.expose().then((r) => consume(r.body.length)), 1000) : undefined;
  const data = { n: 1 };
  await measureAsync(scenario, 'events/s', N, async (n) => {
    got = 0;
    want = n;
    const doneP = new Promise((r) => (wake = r));
    for (let i = 0; i < n; i++) {
      if (!bus.publish('bench.ev', data)) await bus.publishAsync('bench.ev', data);
    }
    await doneP;
  });
  clearInterval(scrape);
  await bus.close();
  metrics?.close();
}

await run('metrics.bus.off', false);
await run('metrics.bus.on', true);
await run('metrics.bus.off2', false);
done();
