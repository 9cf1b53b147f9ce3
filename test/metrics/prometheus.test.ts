// The exposition against Prometheus' own tools (Debian's `prometheus` package, installed
// by scripts/install-prometheus.mjs when missing and run as root; otherwise skipped):
// - `promtool check metrics` on real 0.0.4 output (the parser and the linter);
// - OpenMetrics output through Prometheus' OpenMetrics parser (`promtool tsdb
//   create-blocks-from openmetrics`, which needs a timestamp per sample: the test
//   appends one; promtool 2.42's `check metrics` reads 0.0.4 only);
// - a real Prometheus server on a free port scraping a running Gateway's /metrics
//   (it negotiates OpenMetrics), and the series coming back through its query API.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bus, Gateway, Metrics } from '../../lib/index.js';
// @ts-expect-error a plain .mjs script without types
import { installPrometheus } from '../../scripts/install-prometheus.mjs';

const have: boolean = installPrometheus();
if (!have) console.warn('test/metrics/prometheus.test.ts: skipped: prometheus/promtool missing and not installable (run `node scripts/install-prometheus.mjs` as root)');

const tmp = mkdtempSync(join(tmpdir(), 'myelin-prom-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function sample(m: Metrics): void {
  const c = m.counter('requests', { help: 'Requests with "quotes", \\ and\nnewlines', labelNames: ['path', 'code'] });
  for (const path of ['/a"b', '/back\\slash', '/new\nline', '/brace}', '/🚀', '/lone\ud800']) c.inc({ path, code: 200 }, 3);
  const h = m.histogram('request_duration_seconds', { help: 'Request duration', labelNames: ['path'], buckets: [0, 0.005, 0.1, 1, 2.5] });
  for (const v of [-0, 0, 0.005, 0.1, 1, 7, Number.POSITIVE_INFINITY]) h.observe({ path: '/a' }, v);
  h.observe({ path: '/nan' }, 0.2);
  const g = m.gauge('temperature_celsius', { help: 'A gauge', labelNames: ['k'] });
  g.set({ k: 'nan' }, Number.NaN);
  g.set({ k: 'ninf' }, Number.NEGATIVE_INFINITY);
  g.set({ k: 'pinf' }, Number.POSITIVE_INFINITY);
  g.set({ k: 'nzero' }, -0);
  for (let i = 0; i < 50; i++) m.counter('capped', { help: 'x', labelNames: ['id'] }).inc({ id: i });
}

const OM = 'application/openmetrics-text; version=1.0.0';

describe.skipIf(!have)('promtool', () => {
  it('check metrics passes on Prometheus text 0.0.4 output', async () => {
    const m = new Metrics({ system: false, maxSeries: 20 });
    sample(m);
    const body = (await m.expose()).body.toString();
    m.close();
    const r = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('Prometheus parses the OpenMetrics output (every sample becomes a series)', async () => {
    const m = new Metrics({ system: false, maxSeries: 20 });
    sample(m);
    const r0 = await m.expose({ accept: OM });
    m.close();
    const body = r0.body.toString();
    expect(body.endsWith('# EOF\n')).toBe(true);
    const lines = body.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    const file = join(tmp, 'om.txt');
    writeFileSync(file, body.replace(/^([^#\n].*) (\S+)$/gm, '$1 $2 1700000000'));
    const out = join(tmp, 'blocks');
    const r = spawnSync('promtool', ['tsdb', 'create-blocks-from', 'openmetrics', file, out], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const row = r.stdout.trim().split('\n').pop()!.trim().split(/\s+/);
    expect(Number(row[6])).toBe(lines.length); // NUM SERIES: no sample lost, none duplicated
  });

  it('the full output with the system series parses (lint findings are printed, none are format errors)', async () => {
    const m = new Metrics({});
    sample(m);
    await new Promise((r) => setTimeout(r, 1100)); // one system sample
    const body = (await m.expose()).body.toString();
    m.close();
    const r = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    expect(r.stderr + r.stdout).not.toMatch(/error while linting|parsing error/);
    if (r.status !== 0) console.warn(`promtool lint on the built-in series:\n${r.stdout}${r.stderr}`);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

describe.skipIf(!have)('a real Prometheus server', () => {
  let prom: ChildProcess | undefined;
  let gw: Gateway | undefined;
  let bus: Bus | undefined;
  let metrics: Metrics | undefined;
  let promPort = 0;

  beforeAll(async () => {
    metrics = new Metrics({ system: false });
    sample(metrics);
    bus = new Bus({ metrics });
    gw = new Gateway({ port: 0, host: '127.0.0.1', bus, metrics });
    const { port } = await gw.listen();
    promPort = await freePort();
    const dir = mkdtempSync(join(tmp, 'server-'));
    const config = join(dir, 'prometheus.yml');
    writeFileSync(config, `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: myelin\n    static_configs:\n      - targets: ['127.0.0.1:${port}']\n`);
    prom = spawn('prometheus', [`--config.file=${config}`, `--web.listen-address=127.0.0.1:${promPort}`, `--storage.tsdb.path=${join(dir, 'data')}`], { stdio: 'ignore' });
  });

  afterAll(async () => {
    if (prom?.pid !== undefined && prom.exitCode === null) {
      const exited = new Promise((r) => prom!.once('exit', r));
      prom.kill('SIGTERM');
      await exited;
    }
    await gw?.close();
    await bus?.close();
    metrics?.close();
  });

  async function query(q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
    const r = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
    const j = (await r.json()) as { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    expect(j.status).toBe('success');
    return j.data.result;
  }

  it('scrapes the gateway and answers queries with our series', async () => {
    // Synchronise on what we wait for: the target up and our series present.
    let up: Awaited<ReturnType<typeof query>> = [];
    for (let i = 0; i < 120; i++) {
      try {
        up = await query('up{job="myelin"} == 1 and on() count(myelin_requests_total) > 0');
        if (up.length > 0) break;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(up.length).toBe(1);
    const req = await query('myelin_requests_total');
    const paths = req.map((s) => s.metric.path).sort();
    expect(paths).toEqual(['/a"b', '/back\\slash', '/brace}', '/lone\ufffd', '/new\nline', '/🚀'].sort());
    for (const s of req) expect(s.value[1]).toBe('3');
    const le = await query('myelin_request_duration_seconds_bucket{path="/a"}');
    expect(Object.fromEntries(le.map((s) => [s.metric.le, s.value[1]]))).toEqual({ '0.0': '2', '0.005': '3', '0.1': '4', '1.0': '5', '2.5': '5', '+Inf': '7' });
    const count = await query('myelin_request_duration_seconds_count{path="/a"}');
    expect(count[0].value[1]).toBe('7');
    const g = await query('myelin_temperature_celsius');
    expect(Object.fromEntries(g.map((s) => [s.metric.k, s.value[1]]))).toEqual({ nan: 'NaN', ninf: '-Inf', pinf: '+Inf', nzero: '0' });
    // The scrape negotiated OpenMetrics (Prometheus asks for it first).
    const targets = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/targets`)).json()) as { data: { activeTargets: Array<{ health: string; lastError: string }> } };
    expect(targets.data.activeTargets[0].lastError).toBe('');
  });
});
