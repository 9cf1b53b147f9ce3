// Alertmanager-compatible webhooks against a real node:http receiver: payload version
// 4 with RFC 3339 times, 5xx retried with backoff until success, 4xx not retried,
// network errors retried and counted, never thrown.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertManager } from '../../lib/metrics/alerts.js';
import type { MetricSnapshot } from '../../lib/metrics/types.js';
import { deliverWebhook, fingerprint, webhookPayload } from '../../lib/metrics/webhook.js';

interface Hit {
  method: string;
  type: string | undefined;
  body: any;
}

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A receiver answering each request with the next status of `statuses` (the last one repeats). */
async function receiver(statuses: number[]): Promise<{ url: string; hits: Hit[] }> {
  const hits: Hit[] = [];
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      hits.push({ method: req.method!, type: req.headers['content-type'], body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      res.statusCode = statuses[Math.min(hits.length - 1, statuses.length - 1)];
      res.end();
    });
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/hook`, hits };
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

function gaugeReader(value: () => number) {
  return {
    snapshot: (): MetricSnapshot[] => [{ name: 'm_temp', type: 'gauge', help: '', series: [{ labels: { zone: 'a' }, value: value() }] }],
    value: () => undefined,
    quantile: () => undefined,
  };
}

describe('webhooks', () => {
  it('an alert manager rule posts payload version 4 for firing and resolved', async () => {
    const rx = await receiver([200]);
    let v = 10;
    const am = new AlertManager({ reader: gaugeReader(() => v), defaultRules: false, timer: false, externalURL: 'http://gw.local:8080' });
    am.add({ name: 'hot', when: { metric: 'm_temp', above: 5 }, severity: 'critical', webhook: rx.url });
    am.evaluate(1_800_000_000_000);
    v = 1;
    am.evaluate(1_800_000_060_000);
    await am.settled();
    am.close();
    expect(rx.hits).toHaveLength(2);
    const [fire, resolve] = rx.hits.map((h) => h.body);
    expect(rx.hits[0]).toMatchObject({ method: 'POST', type: 'application/json' });
    expect(fire).toMatchObject({
      version: '4',
      status: 'firing',
      receiver: 'myelin',
      groupKey: '{}:{alertname="hot"}',
      groupLabels: { alertname: 'hot' },
      commonLabels: { alertname: 'hot', severity: 'critical', zone: 'a' },
      externalURL: 'http://gw.local:8080',
      truncatedAlerts: 0,
    });
    expect(fire.alerts).toHaveLength(1);
    const a = fire.alerts[0];
    expect(Object.keys(a).sort()).toEqual(['annotations', 'endsAt', 'fingerprint', 'generatorURL', 'labels', 'startsAt', 'status']);
    expect(a.startsAt).toBe(new Date(1_800_000_000_000).toISOString());
    expect(a.startsAt).toMatch(RFC3339);
    expect(a.endsAt).toBe('0001-01-01T00:00:00Z');
    expect(a.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(a.generatorURL).toBe('http://gw.local:8080/dashboard');
    expect(resolve.status).toBe('resolved');
    expect(resolve.alerts[0].endsAt).toBe(new Date(1_800_000_060_000).toISOString());
    expect(resolve.alerts[0].fingerprint).toBe(a.fingerprint);
    expect(am.stats().webhooks).toEqual({ sent: 2, failed: 0, attempts: 2 });
  });

  it('5xx is retried with backoff until it succeeds', async () => {
    const rx = await receiver([503, 500, 200]);
    const payload = webhookPayload([{ name: 'x', status: 'firing', severity: 'warning', metric: 'm', labels: {}, value: 1, startsAt: 0 }]);
    const out = await deliverWebhook(rx.url, payload, { attempts: 4, backoffMs: 5 });
    expect(out).toEqual({ ok: true, attempts: 3, status: 200 });
    expect(rx.hits).toHaveLength(3);
    expect(rx.hits[2].body).toEqual(rx.hits[0].body);
  });

  it('5xx gives up after the bounded attempts; 4xx is not retried; failures are counted, never thrown', async () => {
    const down = await receiver([502]);
    const p = webhookPayload([]);
    expect(await deliverWebhook(down.url, p, { attempts: 3, backoffMs: 1 })).toEqual({ ok: false, attempts: 3, status: 502 });
    expect(down.hits).toHaveLength(3);
    const refusing = await receiver([400, 200]);
    expect(await deliverWebhook(refusing.url, p, { attempts: 3, backoffMs: 1 })).toEqual({ ok: false, attempts: 1, status: 400 });
    expect(refusing.hits).toHaveLength(1);
    // A network error (nothing listens) is retried too.
    const srv = http.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    await new Promise((r) => srv.close(r));
    const out = await deliverWebhook(`http://127.0.0.1:${port}/`, p, { attempts: 2, backoffMs: 1 });
    expect(out.ok).toBe(false);
    expect(out.attempts).toBe(2);
    expect(out.error).toBeTruthy();
    // Through the manager: counted.
    const am = new AlertManager({ reader: gaugeReader(() => 10), defaultRules: false, timer: false, webhook: { attempts: 2, backoffMs: 1 } });
    const gone = await receiver([404]);
    am.add({ name: 'hot', when: { metric: 'm_temp', above: 5 }, webhook: gone.url });
    am.evaluate(0);
    await am.settled();
    am.close();
    expect(am.stats().webhooks).toEqual({ sent: 0, failed: 1, attempts: 1 });
  });

  it('close() stops the retries', async () => {
    const down = await receiver([503]);
    const am = new AlertManager({ reader: gaugeReader(() => 10), defaultRules: false, timer: false, webhook: { attempts: 10, backoffMs: 60_000 } });
    am.add({ name: 'hot', when: { metric: 'm_temp', above: 5 }, webhook: down.url });
    am.evaluate(0);
    while (down.hits.length === 0) await new Promise((r) => setImmediate(r));
    am.close();
    await am.settled();
    expect(down.hits).toHaveLength(1);
    expect(am.stats().webhooks.failed).toBe(1);
  });

  it('fingerprints depend on the labels only, not their order', () => {
    expect(fingerprint({ a: '1', b: '2' })).toBe(fingerprint({ b: '2', a: '1' }));
    expect(fingerprint({ a: '1' })).not.toBe(fingerprint({ a: '2' }));
  });
});
