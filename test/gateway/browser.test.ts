// Headless Chromium (Debian's `chromium`, installed by scripts/install-chromium.mjs when
// missing and we are root) opens the gateway's /dashboard page, whose script opens a
// WebSocket to /ws and subscribes to '>'. A bus publish must show up in the page, on
// both I/O backends; with auth, the page's ?token= reaches the socket and its fetches.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { BrowserContext } from 'playwright-core';
import { BACKENDS, type Io, launchChromium, Resources, startGateway, usable } from './gateway-helpers.js';
// @ts-expect-error a plain .mjs script without types
import { CHROMIUM, installChromium } from '../../scripts/install-chromium.mjs';

const res = new Resources();
afterEach(() => res.closeAll());

const installed = (installChromium as (o: { quiet: boolean }) => { ok: boolean; reason?: string })({ quiet: true });
if (!installed.ok) console.warn(`browser.test.ts skipped: ${installed.reason}`);

let browser: BrowserContext | undefined;
let closeBrowser: (() => Promise<void>) | undefined;

beforeAll(async () => {
  if (!installed.ok) return;
  ({ browser, close: closeBrowser } = await launchChromium(CHROMIUM as string));
}, 120_000);

afterAll(async () => {
  await closeBrowser?.();
});

describe.each(BACKENDS)('Chromium against the gateway over %s', (io: Io) => {
  if (!usable(io) || !installed.ok) {
    test.skip(installed.ok ? 'io_uring is not usable on this kernel' : `Chromium unavailable: ${installed.reason}`, () => {});
    return;
  }

  test('the dashboard page subscribes over a WebSocket and shows a bus event', async () => {
    const { gw, http } = await startGateway(res, io);
    const page = await browser!.newPage();
    res.add(() => page.close());
    await page.goto(`${http}/dashboard`);
    await page.waitForFunction(() => (window as unknown as { myelinSocket: WebSocket }).myelinSocket.readyState === 1);
    await page.waitForFunction(() => document.getElementById('ws-state')?.textContent === 'open');
    // The page's sub travels after its open; publish until its subscription is in.
    const marker = `hello-from-the-bus-${io}`;
    const seen = page.waitForFunction((m) => document.getElementById('events')?.textContent?.includes(m), marker, { timeout: 10_000 });
    await expectEventually(() => gw.stats().subscriptions === 1);
    gw.bus.publish('browser.test', { text: marker, n: 1 }, { key: 'k' });
    await seen;
    const line = await page.evaluate(() => document.getElementById('events')!.textContent!.split('\n')[0]);
    expect(JSON.parse(line)).toMatchObject({ op: 'event', subject: 'browser.test', data: { text: marker, n: 1 }, key: 'k', sub: 'dash' });
    // The page's own publish reaches a bus handler.
    const got = new Promise((resolve) => gw.bus.subscribe('from.page', (ev) => resolve(ev.data)));
    await page.evaluate(() =>
      (window as unknown as { myelinSocket: WebSocket }).myelinSocket.send(JSON.stringify({ op: 'pub', subject: 'from.page', data: { ua: navigator.userAgent.includes('Chrome') } })),
    );
    expect(await got).toEqual({ ua: true });
    // The stats table fills from /stats.
    await page.waitForFunction(() => (document.getElementById('stats')?.children.length ?? 0) > 0);
    expect(gw.stats().websockets).toBe(1);
  });

  test('with auth, the page passes ?token= to its WebSocket and its fetches', async () => {
    const token = 'browser-token-0123456789';
    const { gw, http } = await startGateway(res, io, { auth: { tokens: [token] } });
    const page = await browser!.newPage();
    res.add(() => page.close());
    const denied = await page.goto(`${http}/dashboard`);
    expect(denied?.status()).toBe(401);
    // The navigation itself needs the header (added to that one request only); the
    // page's WebSocket then authenticates with ?token= alone, its fetches with the
    // header its script builds from it.
    const authed = await browser!.newPage();
    res.add(() => authed.close());
    await authed.route('**/dashboard?*', (route) => route.continue({ headers: { ...route.request().headers(), authorization: `Bearer ${token}` } }));
    await authed.goto(`${http}/dashboard?token=${token}`);
    await authed.waitForFunction(() => document.getElementById('ws-state')?.textContent === 'open');
    await expectEventually(() => gw.stats().subscriptions === 1);
    gw.bus.publish('auth.ok', 'through');
    await authed.waitForFunction(() => document.getElementById('events')?.textContent?.includes('"through"'));
    await authed.waitForFunction(() => (document.getElementById('stats')?.children.length ?? 0) > 0);
    expect(JSON.stringify(gw.stats())).not.toContain(token);
  });
});

async function expectEventually(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not reached in 10 s');
    await new Promise((r) => setTimeout(r, 10));
  }
}
