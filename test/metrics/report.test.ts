// `myelin report` against a real running Gateway with the history route mounted: the
// HTML file is written, self-contained (no script, no external URL), with a chart per
// section drawn from the recorded series and the alerts of the period; and clear
// errors when the gateway is not there.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../lib/cli/main.js';
import { rates, svgChart } from '../../lib/cli/report.js';
import { Gateway } from '../../lib/gateway/gateway.js';
import { MetricHistory, historyRoute } from '../../lib/metrics/history.js';
import type { MetricSnapshot } from '../../lib/metrics/types.js';
import { expectRejectCode } from '../helpers.js';

let gw: Gateway;
let base: string;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-report-'));
  const now = Date.now();
  const h = new MetricHistory();
  // Ten minutes of a bus at ~200 events/s, with latency quantiles and a queue.
  for (let i = 600; i >= 0; i--) {
    const t = now - i * 1000;
    const k = 600 - i;
    const snap: MetricSnapshot[] = [
      { name: 'myelin_bus_events_published_total', type: 'counter', help: '', series: [{ labels: { priority: 'normal' }, value: k * 200 }, { labels: { priority: 'low' }, value: k * 20 }] },
      { name: 'myelin_bus_events_failed_total', type: 'counter', help: '', series: [{ labels: {}, value: Math.floor(k / 10) }] },
      { name: 'myelin_bus_latency_seconds', type: 'gauge', help: '', series: [{ labels: { quantile: '0.5' }, value: 0.002 }, { labels: { quantile: '0.99' }, value: 0.02 + (k % 7) / 1000 }] },
      { name: 'myelin_bus_events_queued', type: 'gauge', help: '', series: [{ labels: { priority: 'normal' }, value: k % 50 }] },
    ];
    h.record(snap, t);
  }
  h.recordAlert({ name: 'queue-depth-high', status: 'firing', severity: 'warning', metric: 'myelin_bus_events_queued', labels: { priority: 'normal' }, value: 140, startsAt: now - 120_000 });
  h.recordAlert({ name: 'queue-depth-high', status: 'resolved', severity: 'warning', metric: 'myelin_bus_events_queued', labels: { priority: 'normal' }, value: 3, startsAt: now - 120_000, endsAt: now - 60_000 });
  gw = new Gateway({ port: 0, host: '127.0.0.1' });
  gw.route('GET', '/api/metrics/history', historyRoute(h));
  const { port } = await gw.listen();
  base = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await gw?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('myelin report', () => {
  it('writes a self-contained HTML report from a running gateway', async () => {
    const out = join(dir, 'report.html');
    expect(await main(['report', '--url', base, '--from', '-15m', '--out', out])).toBe(0);
    const html = await readFile(out, 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|src=|https?:\/\/(?!127\.0\.0\.1|www\.w3\.org\/2000\/svg)/);
    for (const title of ['Throughput', 'Latency percentiles', 'Errors per second', 'Queue depth', 'Alerts']) expect(html).toContain(title);
    // Four charts with data: one SVG each, one polyline per series.
    expect(html.match(/<svg /g)).toHaveLength(4);
    expect(html.match(/<polyline /g)!.length).toBe(2 + 2 + 1 + 1);
    expect(html).toContain('priority=low');
    expect(html).toContain('bus p99');
    expect(html).toContain('queue-depth-high');
    expect(html.match(/<tr class="(firing|resolved)">/g)).toHaveLength(2);
    // The bus summary comes from /stats.
    expect(html).toContain('Bus now: published');
  });

  it('a period without data says so', async () => {
    const out = join(dir, 'empty.html');
    expect(await main(['report', `--url=${base}`, '--from', '2020-01-01T00:00:00Z', '--to', '2020-01-01T01:00:00Z', '--out', out])).toBe(0);
    const html = await readFile(out, 'utf8');
    expect(html.match(/No data for this period/g)).toHaveLength(4);
    expect(html).toContain('No alerts in this period.');
  });

  it('clear errors: gateway not reachable, no history route, bad options', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise((r) => srv.close(r));
    const down = await expectRejectCode(main(['report', '--url', `http://127.0.0.1:${port}`, '--out', join(dir, 'x.html')]), 'ERR_INVALID_ARGUMENT');
    expect(down.message).toMatch(/cannot reach the gateway at http:\/\/127\.0\.0\.1:\d+/);
    const bare = new Gateway({ port: 0, host: '127.0.0.1' });
    const a = await bare.listen();
    try {
      const e = await expectRejectCode(main(['report', '--url', `http://127.0.0.1:${a.port}`, '--out', join(dir, 'y.html')]), 'ERR_INVALID_ARGUMENT');
      expect(e.message).toMatch(/404/);
    } finally {
      await bare.close();
    }
    await expectRejectCode(main(['report', '--url', 'ftp://x']), 'ERR_INVALID_ARGUMENT');
    await expectRejectCode(main(['report', '--from']), 'ERR_INVALID_ARGUMENT');
    await expectRejectCode(main(['report', '--bogus', '1']), 'ERR_INVALID_ARGUMENT');
    await expectRejectCode(main(['report', '--url', base, '--from', 'now', '--to', '-1h']), 'ERR_INVALID_ARGUMENT');
    await expectRejectCode(main(['report', '--url', base, '--from', 'last week']), 'ERR_INVALID_ARGUMENT');
  });

  it('rates() and svgChart() on their own', () => {
    expect(rates([[0, 0], [1000, 10], [2000, null], [3000, 40], [4000, 5]])).toEqual([[1000, 10], [4000, 5]]);
    const svg = svgChart({ title: 'a<b', unit: 's', lines: [{ label: '"x"', points: [[0, 0.001], [10, 0.002]] }] }, 0, 10);
    expect(svg).toContain('a&#60;b');
    expect(svg).toContain('&#34;x&#34;');
    expect(svg).toContain('2.00 ms');
  });
});
