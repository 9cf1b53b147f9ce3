// A scrape of 10,000 histogram series (2 labels, 11 buckets): myelin's expose() against
// prom-client's registry.metrics() with the same series, wall time and the longest
// event-loop block during the scrape (a 1 ms interval timer's largest gap).
import client from 'prom-client';
import { Metrics } from '../../dist/esm/index.js';
import { consume, done, emit, repeats } from '../lib.mjs';

const SERIES = 10_000;
const m = new Metrics({ system: false, maxSeries: SERIES + 10 });
const h = m.histogram('scrape_seconds', { help: 'x', labelNames: ['route', 'code'] });
const registry = new client.Registry();
const ph = new client.Histogram({ name: 'scrape_seconds', help: 'x', labelNames: ['route', 'code'], registers: [registry] });
for (let i = 0; i < SERIES; i++) {
  const labels = { route: `/r${i % 1000}`, code: String(200 + Math.floor(i / 1000)) };
  h.observe(labels, i / 1000);
  ph.observe(labels, i / 1000);
}

async function timed(scenario, fn) {
  const wall = [];
  const block = [];
  process.stderr.write(`  ${scenario}: warm-up`);
  consume((await fn()).length);
  for (let r = 0; r < repeats; r++) {
    let last = performance.now();
    let gap = 0;
    const t = setInterval(() => {
      const now = performance.now();
      if (now - last > gap) gap = now - last;
      last = now;
    }, 1);
    const t0 = performance.now();
    const body = await fn();
    const ms = performance.now() - t0;
    const now = performance.now();
    if (now - last > gap) gap = now - last;
    clearInterval(t);
    consume(body.length);
    wall.push(ms);
    block.push(gap);
    process.stderr.write(' .');
    await new Promise((r) => setTimeout(r, 20));
  }
  process.stderr.write('\n');
  emit(`${scenario}.ms`, 'ms', wall);
  emit(`${scenario}.block_ms`, 'ms', block);
}

await timed('metrics.scrape.10k', async () => (await m.expose()).body);
await timed('promclient.scrape.10k', () => registry.metrics());
m.close();
done();
