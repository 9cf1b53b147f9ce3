// Headless Chromium (Debian's `chromium`, scripts/install-chromium.mjs) opens /dashboard on
// a gateway with a real Metrics, Bus and AIClient (on the upstream simulator) carrying
// traffic: the uPlot charts must draw the real series (points in the page's state and
// coloured pixels on the canvases), an alert rule that fires must appear first in the
// page's list, the hot-path panel must show the stages that have observations (or say
// "no data yet"), and a screenshot is saved to test-output/dashboard.png.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { Metrics } from '../../lib/metrics/metrics.js';
import { launchChromium, Resources, startGateway } from './gateway-helpers.js';
import { startLiveStack } from '../metrics/live-stack.js';
// @ts-expect-error a plain .mjs script without types
import { CHROMIUM, installChromium } from '../../scripts/install-chromium.mjs';

const res = new Resources();
afterEach(() => res.closeAll());

const installed = (installChromium as (o: { quiet: boolean }) => { ok: boolean; reason?: string })({ quiet: true });
if (!installed.ok) console.warn(`dashboard.test.ts skipped: ${installed.reason}`);

const OUT = join(process.cwd(), 'test-output');
let browser: BrowserContext | undefined;
let closeBrowser: (() => Promise<void>) | undefined;

beforeAll(async () => {
  if (!installed.ok) return;
  ({ browser, close: closeBrowser } = await launchChromium(CHROMIUM as string, { width: 1400, height: 1800 }));
}, 120_000);

afterAll(async () => {
  await closeBrowser?.();
});

interface DashState {
  polls: number;
  errors: number;
  uplot: boolean;
  history: boolean;
  charts: Record<string, { series: string[]; points: number[]; drawn: boolean }>;
  alerts: Array<{ name: string; state: string }>;
  stages: Array<{ area: string; stage: string; p50: number | null; p99: number | null }>;
  targets: Array<{ target: string; requests: number; errors: number; breaker: number | null; cost: number | null }>;
}

const dash = (page: Page): Promise<DashState> => page.evaluate(() => JSON.parse(JSON.stringify((window as unknown as { myelinDashboard: unknown }).myelinDashboard)) as DashState);

/** Waits until the chart `id` is drawn with at least one series holding `min` points. */
async function chartDrawn(page: Page, id: string, min = 2): Promise<void> {
  await page.waitForFunction(
    ([id, min]) => {
      const c = (window as unknown as { myelinDashboard: DashState }).myelinDashboard.charts[id as string];
      return !!c && c.drawn && c.points.some((n) => n >= (min as number));
    },
    [id, min] as const,
    { timeout: 20_000 },
  );
}

/** Pixels of the chart's canvas that are a series colour (saturated), not the grey axes and grid. */
function colouredPixels(page: Page, id: string): Promise<number> {
  return page.evaluate((id) => {
    const canvas = document.querySelector(`#chart-${id} canvas`) as HTMLCanvasElement | null;
    if (!canvas) return -1;
    const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 60) n++;
    return n;
  }, id);
}

describe.skipIf(!installed.ok)('the /dashboard page in headless Chromium', () => {
  test('serves uPlot from node_modules, and 404 for any other /dashboard/ path', async () => {
    const { http } = await startGateway(res, 'epoll');
    const js = await fetch(`${http}/dashboard/uplot.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await js.text()).toContain('uPlot');
    const css = await fetch(`${http}/dashboard/uplot.css`);
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    await css.arrayBuffer();
    for (const p of ['/dashboard/', '/dashboard/../package.json', '/dashboard/uplot.js.map', '/dashboard/uPlot.iife.min.js']) {
      const r = await fetch(http + p);
      expect(r.status, p).toBe(404);
      await r.arrayBuffer();
    }
  });

  test('charts draw the live series, a firing alert is listed first, and a screenshot is saved', async () => {
    const stack = await startLiveStack({ evaluationIntervalMs: 200 });
    res.add(() => stack.close());
    stack.metrics.alerts.add({ name: 'network-events-seen', when: { metric: 'myelin_gateway_events_in_total', above: 0 }, severity: 'critical' });
    await stack.traffic(70);
    const page = await browser!.newPage();
    res.add(() => page.close());
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${stack.http}/dashboard`);
    await page.waitForFunction(() => (window as unknown as { myelinDashboard?: DashState }).myelinDashboard?.polls! > 0);
    expect((await dash(page)).uplot).toBe(true);
    // More traffic while the page watches, so the rates have seconds either side.
    await stack.traffic(70);
    for (const id of ['throughput', 'latency', 'queues', 'connections', 'cpu', 'loop', 'ai']) await chartDrawn(page, id);
    await stack.traffic(70);

    const s = await dash(page);
    expect(s.errors).toBe(0);
    expect(s.history).toBe(true);
    expect(s.charts.throughput.series).toEqual(['gateway in', 'gateway out', 'bus published', 'bus delivered', 'HTTP requests']);
    // The CPU chart has one line per core the system series reports.
    expect(s.charts.cpu.series.length).toBeGreaterThan(0);
    expect(s.charts.cpu.series.every((n) => /^cpu \d+$/.test(n))).toBe(true);
    expect(s.charts.queues.series).toEqual(expect.arrayContaining(['queued critical', 'queued high', 'queued normal', 'queued low']));
    // Each uPlot chart is a canvas with its lines drawn in colour.
    for (const id of ['throughput', 'latency', 'connections', 'cpu']) expect(await colouredPixels(page, id), id).toBeGreaterThan(20);
    // The page counted the network events the gateway took in.
    await page.waitForFunction(() => {
      const txt = document.querySelector('#chart-throughput .now')?.textContent ?? '';
      return /gateway in \d/.test(txt);
    });

    // AI: the target the traffic used, its requests and its cost.
    await page.waitForFunction(() => (window as unknown as { myelinDashboard: DashState }).myelinDashboard.targets.some((t) => t.requests >= 2));
    const ai = (await dash(page)).targets.find((t) => t.target === 'openai/gpt-4o-mini');
    expect(ai).toBeDefined();
    expect(ai!.cost).toBeGreaterThan(0);
    expect(ai!.breaker).toBe(0);
    expect(await page.textContent('#targets')).toContain('openai/gpt-4o-mini');

    // The rule fires (events_in > 0 at the next evaluation) and is listed first.
    await page.waitForSelector('#alerts li[data-name="network-events-seen"][data-state="firing"]', { timeout: 20_000 });
    const first = await page.getAttribute('#alerts li:first-child', 'data-state');
    expect(first).toBe('firing');
    const states = (await dash(page)).alerts.map((a) => a.state);
    const rank = { firing: 0, pending: 1, inactive: 2 } as Record<string, number>;
    expect(states.map((x) => rank[x])).toEqual([...states.map((x) => rank[x])].sort((a, b) => a - b));
    expect(states.length).toBeGreaterThan(5); // the default KPI rules are listed too

    // The hot path: a stage with observations in /metrics is in the table; none, "no data yet".
    const text = await stack.scrape();
    const observed = [...text.matchAll(/^myelin_(gateway|bus|ai)_stage_seconds_count\{[^}]*stage="([a-z_]+)"[^}]*\} ([0-9.e+]+)/gm)].filter((m) => Number(m[3]) > 0);
    if (observed.length > 0) {
      await page.waitForFunction(() => (window as unknown as { myelinDashboard: DashState }).myelinDashboard.stages.some((r) => r.p99 !== null), undefined, { timeout: 20_000 });
      const stages = (await dash(page)).stages.filter((r) => r.p99 !== null);
      for (const r of stages) expect(observed.some((m) => m[1] === r.area && m[2] === r.stage), `${r.area}/${r.stage}`).toBe(true);
      expect(await page.$$('#stages tr.worst')).toHaveLength(1);
    } else {
      expect(await page.textContent('#stages')).toContain('no data yet');
    }

    mkdirSync(OUT, { recursive: true });
    const file = join(OUT, 'dashboard.png');
    await page.screenshot({ path: file, fullPage: true });
    const png = readFileSync(file);
    expect(png.length).toBeGreaterThan(10_000);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(errors).toEqual([]);
  });

  test('a gateway with a quiet Metrics: the hot path and AI panels say "no data yet"', async () => {
    const metrics = new Metrics({ system: false, evaluationIntervalMs: 100 });
    res.add(() => metrics.close());
    const { http } = await startGateway(res, 'epoll', { metrics });
    const page = await browser!.newPage();
    res.add(() => page.close());
    await page.goto(`${http}/dashboard`);
    await page.waitForFunction(() => (window as unknown as { myelinDashboard?: DashState }).myelinDashboard?.polls! > 1);
    expect(await page.textContent('#chart-hotpath .now')).toContain('no data yet');
    expect(await page.textContent('#stages')).toContain('no data yet');
    expect(await page.textContent('#targets')).toContain('no data yet');
    expect(await page.isHidden('#nohistory')).toBe(true);
    // The gateway's own series do arrive.
    await chartDrawn(page, 'connections', 1);
  });

  test('without a Metrics instance the page says so and still shows the stats', async () => {
    const { http } = await startGateway(res, 'epoll');
    const page = await browser!.newPage();
    res.add(() => page.close());
    await page.goto(`${http}/dashboard`);
    await page.waitForSelector('#nohistory', { state: 'visible' });
    await page.waitForFunction(() => (document.getElementById('stats')?.children.length ?? 0) > 0);
    await page.waitForFunction(() => (window as unknown as { myelinDashboard: DashState }).myelinDashboard.polls > 1);
    const s = await dash(page);
    expect(s.history).toBe(false);
    expect(s.errors).toBe(0);
    expect(await page.textContent('#chart-throughput .now')).toContain('no data yet');
  });

  test('with auth, uPlot and every series are fetched with the bearer token', async () => {
    const token = 'dashboard-token-0123456789';
    const stack = await startLiveStack({ evaluationIntervalMs: 200, gateway: { auth: { tokens: [token] } } });
    res.add(() => stack.close());
    const page = await browser!.newPage();
    res.add(() => page.close());
    // The navigation needs the header; the page builds its own for what it fetches.
    await page.route('**/dashboard?*', (route) => route.continue({ headers: { ...route.request().headers(), authorization: `Bearer ${token}` } }));
    await page.goto(`${stack.http}/dashboard?token=${token}`);
    await page.waitForFunction(() => (window as unknown as { myelinDashboard?: DashState }).myelinDashboard?.polls! > 0);
    await stack.traffic(20);
    await chartDrawn(page, 'throughput');
    const s = await dash(page);
    expect(s.uplot).toBe(true);
    expect(s.errors).toBe(0);
    expect(stack.gw.stats().authFailures).toBe(0);
  });
});
