// Added latency of ai.chat over a direct undici call to the same upstream (the
// simulator with 0 ms latency), open loop at 1,000 and 5,000 requests/s.
import { Pool } from 'undici';
import { AIClient } from '../../dist/esm/index.js';
import { emit, scaled } from '../lib.mjs';
import { openLoop, pct, startSimulator } from './sim.mjs';

const sim = await startSimulator(['--latency-ms', '0', '--tokens-per-s', '0']);
const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 16 });
const pool = new Pool(sim.url, { connections: 64 });
const direct = async () => {
  const r = await pool.request({ path: '/v1/chat/completions', method: 'POST', body, headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' } });
  const json = await r.body.json();
  if (r.statusCode !== 200) throw new Error(JSON.stringify(json));
  return json;
};
const ai = new AIClient({ providers: [{ name: 'sim', kind: 'openai', baseURL: `${sim.url}/v1`, apiKey: 'sk-bench' }] });
const viaMyelin = () => ai.chat({ model: 'sim/gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }], maxTokens: 16 });

// Sequential (closed loop, one request at a time), interleaving the two clients so
// drift in the machine's load affects both alike: the cleanest read of added latency.
{
  const n = scaled(2000);
  const d = [];
  const m = [];
  for (let i = 0; i < 200; i++) await (i % 2 ? direct() : viaMyelin()); // warm-up
  process.stderr.write(`  sequential, ${n} requests each`);
  for (let i = 0; i < n; i++) {
    let t0 = performance.now();
    await direct();
    d.push((performance.now() - t0) * 1000);
    t0 = performance.now();
    await viaMyelin();
    m.push((performance.now() - t0) * 1000);
  }
  process.stderr.write('\n');
  d.sort((a, b) => a - b);
  m.sort((a, b) => a - b);
  for (const [p, name] of [[50, 'p50'], [99, 'p99'], [99.9, 'p999']]) {
    emit(`ai.overhead.seq.direct.${name}`, 'us', [pct(d, p)]);
    emit(`ai.overhead.seq.myelin.${name}`, 'us', [pct(m, p)]);
    emit(`ai.overhead.seq.added.${name}`, 'us', [pct(m, p) - pct(d, p)]);
  }
}

const seconds = Math.max(1, Math.round(4 * Number(process.env.MYELIN_BENCH_SCALE ?? 1)));
for (const rate of [1000, 5000]) {
  process.stderr.write(`  ${rate} req/s for ${seconds} s: direct`);
  await openLoop(rate, 0.5, direct); // warm-up
  const d = await openLoop(rate, seconds, direct);
  process.stderr.write(', ai.chat');
  await openLoop(rate, 0.5, viaMyelin);
  const m = await openLoop(rate, seconds, viaMyelin);
  process.stderr.write(`\n`);
  for (const [p, name] of [[50, 'p50'], [99, 'p99'], [99.9, 'p999']]) {
    emit(`ai.overhead.${rate}.direct.${name}`, 'us', [pct(d.latencies, p)]);
    emit(`ai.overhead.${rate}.myelin.${name}`, 'us', [pct(m.latencies, p)]);
    emit(`ai.overhead.${rate}.added.${name}`, 'us', [pct(m.latencies, p) - pct(d.latencies, p)], { failed: m.failed + d.failed });
  }
}
await ai.close?.();
await pool.close();
await sim.close();
