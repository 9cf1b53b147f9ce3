// /v1/chat/completions overhead: the same request straight to the upstream simulator
// (0 ms latency) and through a gateway to it, with one undici Pool per target. Added
// latency = gateway percentile - direct percentile, sequential (closed loop, interleaved
// with direct calls) and open loop at 1,000 requests/s.
//   gateway.chat.<seq|1000>.<epoll|io_uring|portkey>.added.{p50,p99}   us
//   gateway.chat.<seq|1000>.direct.{p50,p99}                            us
//   gateway.chat.1000.<...>.server_cores                                the gateway process's CPU
// Portkey's gateway (npm @portkey-ai/gateway, the anchor) runs from a cache outside the
// repository (MYELIN_BENCH_CACHE, default ~/.cache/myelin-bench), installed there on
// first use; where it cannot be installed or started its rows say n/a.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { emit, scaled } from '../lib.mjs';
import { openLoop, pct, startSimulator } from '../ai/sim.mjs';
import { backends, sleep, startServer } from './fixtures.mjs';

const PORTKEY = '@portkey-ai/gateway@1.15.2';
const cache = process.env.MYELIN_BENCH_CACHE ?? join(homedir(), '.cache', 'myelin-bench');

function cpuSeconds(pid) {
  // /proc/<pid>/stat fields 14 and 15: utime and stime in clock ticks (100 per second here).
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function startPortkey() {
  const entry = join(cache, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js');
  if (!existsSync(entry)) {
    process.stderr.write(`  installing ${PORTKEY} into ${cache} (the anchor; once)\n`);
    mkdirSync(cache, { recursive: true });
    if (!existsSync(join(cache, 'package.json'))) writeFileSync(join(cache, 'package.json'), '{"name":"myelin-bench-cache","private":true}\n');
    const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', PORTKEY], { cwd: cache, stdio: 'ignore', timeout: 300000 });
    if (r.status !== 0 || !existsSync(entry)) return undefined;
  }
  const port = await freePort();
  const child = spawn(process.execPath, [entry, `--port=${port}`, '--headless'], { stdio: 'ignore', env: { ...process.env, NODE_ENV: 'production' } });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(url);
      if (r.ok) return { url, pid: child.pid, stop: () => child.kill('SIGTERM') };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  return undefined;
}

const sim = await startSimulator(['--latency-ms', '0', '--tokens-per-s', '0']);
const messages = [{ role: 'user', content: 'hello there' }];
const caller = (url, model, headers = {}) => {
  const pool = new Pool(url, { connections: 64 });
  const body = JSON.stringify({ model, messages, max_tokens: 16 });
  const h = { 'content-type': 'application/json', authorization: 'Bearer sk-bench', ...headers };
  const call = async () => {
    const r = await pool.request({ path: '/v1/chat/completions', method: 'POST', body, headers: h });
    const text = await r.body.text();
    if (r.statusCode !== 200) throw new Error(`${r.statusCode} ${text.slice(0, 200)}`);
    return text;
  };
  return { call, close: () => pool.close() };
};

const direct = caller(sim.url, 'gpt-4o-mini');
const gws = [];
for (const io of backends()) {
  const s = await startServer('myelin', io, 'chat', { simUrl: sim.url });
  gws.push({ name: io, pid: s.pid, stop: s.stop, ...caller(`http://127.0.0.1:${s.port}`, 'sim/gpt-4o-mini') });
}
const pk = await startPortkey();
if (pk) {
  const c = caller(pk.url, 'gpt-4o-mini', { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${sim.url}/v1` });
  try {
    await c.call();
    gws.push({ name: 'portkey', pid: pk.pid, stop: pk.stop, ...c });
  } catch (err) {
    process.stderr.write(`  portkey does not answer: ${err.message}\n`);
    pk.stop();
  }
} else process.stderr.write('  portkey could not be installed or started: its rows are n/a\n');

// Sequential, each gateway interleaved with direct calls.
const n = scaled(1000);
for (const g of gws) {
  for (let i = 0; i < 200; i++) await (i % 2 ? direct.call() : g.call());
  process.stderr.write(`  chat sequential ${g.name}: ${n} requests each\n`);
  const d = [];
  const m = [];
  for (let i = 0; i < n; i++) {
    let t0 = performance.now();
    await direct.call();
    d.push((performance.now() - t0) * 1000);
    t0 = performance.now();
    await g.call();
    m.push((performance.now() - t0) * 1000);
  }
  d.sort((a, b) => a - b);
  m.sort((a, b) => a - b);
  for (const [p, k] of [[50, 'p50'], [99, 'p99']]) {
    emit(`gateway.chat.seq.${g.name}.added.${k}`, 'us', [pct(m, p) - pct(d, p)], { direct: pct(d, p), via: pct(m, p) });
    if (g === gws[0]) emit(`gateway.chat.seq.direct.${k}`, 'us', [pct(d, p)]);
  }
}

// Open loop at 1,000 requests/s.
const seconds = Math.max(1, Math.round(3 * Number(process.env.MYELIN_BENCH_SCALE ?? 1)));
await openLoop(1000, 0.5, direct.call);
const d = await openLoop(1000, seconds, direct.call);
for (const g of gws) {
  process.stderr.write(`  chat 1000 req/s ${g.name}: ${seconds} s\n`);
  await openLoop(1000, 0.5, g.call);
  const c0 = cpuSeconds(g.pid);
  const t0 = performance.now();
  const m = await openLoop(1000, seconds, g.call);
  const cores = (cpuSeconds(g.pid) - c0) / ((performance.now() - t0) / 1000);
  for (const [p, k] of [[50, 'p50'], [99, 'p99']]) {
    emit(`gateway.chat.1000.${g.name}.added.${k}`, 'us', [pct(m.latencies, p) - pct(d.latencies, p)], { failed: m.failed, direct: pct(d.latencies, p), via: pct(m.latencies, p) });
  }
  emit(`gateway.chat.1000.${g.name}.server_cores`, 'cores', [cores]);
}
for (const [p, k] of [[50, 'p50'], [99, 'p99']]) emit(`gateway.chat.1000.direct.${k}`, 'us', [pct(d.latencies, p)]);

for (const g of gws) {
  await g.close();
  await g.stop();
}
await direct.close();
await sim.close();
