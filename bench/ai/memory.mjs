// Memory under a long run with the cache on: 1,000,000 distinct cacheable requests
// (temperature 0, so every one is a miss that is then stored) through ai.chat to the
// simulator in a child process (0 ms latency, unpaced), ~64 in flight. The cache holds
// at most 10,000 entries, so after it fills memory should stay flat: RSS and heap are
// sampled every 50,000 requests (scaled with MYELIN_BENCH_SCALE).
//
// RESULT lines: ai.memory.rss_first (MB once the cache has filled: the first sample at
// or after 50,000 requests and at least twice maxEntries), ai.memory.rss_last (MB at the
// end), ai.memory.heap_growth (heapUsed MB from the next sample, 100,000 at full scale,
// to the end; a leak shows here) and ai.memory.requests_per_s. Each sample follows a
// full GC (exposed at run time below), so heapUsed is live data, not the sawtooth of
// uncollected garbage; the 20 collections at full scale barely touch the rate.
import v8 from 'node:v8';
import vm from 'node:vm';
import { AIClient } from '../../dist/esm/index.js';
import { emit, scaled } from '../lib.mjs';
import { startSimulator } from './sim.mjs';

const MAX_ENTRIES = 10_000;
const IN_FLIGHT = 64;
const total = scaled(1_000_000);
const step = scaled(50_000);
const firstAt = Math.max(step, 2 * MAX_ENTRIES);
const baseAt = Math.max(2 * step, 2 * firstAt);
const MB = 1024 * 1024;
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

const sim = await startSimulator(['--latency-ms', '0', '--tokens-per-s', '0']);
const ai = new AIClient({
  providers: [{ name: 'sim', kind: 'openai', baseURL: `${sim.url}/v1`, apiKey: 'sk-bench', connections: IN_FLIGHT }],
  cache: { maxEntries: MAX_ENTRIES, ttlMs: 600_000 },
});

const samples = [];
let sent = 0;
let done = 0;
let failed = 0;
let cached = 0;
let nextSample = step;

function sample(n) {
  gc();
  const m = process.memoryUsage();
  samples.push({ n, rss: m.rss / MB, heap: m.heapUsed / MB });
  process.stderr.write(`  ${n} requests: rss ${(m.rss / MB).toFixed(1)} MB, heap ${(m.heapUsed / MB).toFixed(1)} MB\n`);
}

const call = (i) =>
  ai.chat({ model: 'sim/gpt-4o-mini', temperature: 0, maxTokens: 16, messages: [{ role: 'user', content: `distinct question number ${i}` }] });

process.stderr.write(`  ${total} distinct cacheable requests, ${IN_FLIGHT} in flight, a sample every ${step}\n`);
const t0 = performance.now();
await new Promise((resolve) => {
  const next = () => {
    if (sent >= total) return;
    const i = sent++;
    call(i).then(
      (r) => settle(r.cached),
      () => settle(false, true),
    );
  };
  const settle = (hit, err = false) => {
    done++;
    if (hit) cached++;
    if (err) failed++;
    if (done === nextSample) {
      sample(done);
      nextSample += step;
    }
    if (done === total) resolve();
    else next();
  };
  for (let k = 0; k < Math.min(IN_FLIGHT, total); k++) next();
});
const seconds = (performance.now() - t0) / 1000;
if (samples.at(-1)?.n !== total) sample(total);

const at = (n) => samples.find((s) => s.n >= n) ?? samples.at(-1);
const first = at(firstAt);
const base = at(baseAt);
const last = samples.at(-1);
const stats = ai.stats();
process.stderr.write(
  `  ${total} requests in ${seconds.toFixed(1)} s, ${failed} failed, ${cached} cached, cache misses ${stats.cache?.misses}` +
    (stats.overheadUs ? `; overhead p50 ${stats.overheadUs.p50.toFixed(1)} us, p99 ${stats.overheadUs.p99.toFixed(1)} us` : '') +
    '\n',
);
emit('ai.memory.rss_first', 'MB', [first.rss], { atRequests: first.n });
emit('ai.memory.rss_last', 'MB', [last.rss], { atRequests: last.n });
emit('ai.memory.heap_growth', 'MB', [last.heap - base.heap], { fromRequests: base.n, toRequests: last.n, failed });
emit('ai.memory.requests_per_s', 'req/s', [total / seconds], { failed });

await ai.close();
await sim.close();
