// A Gateway with a MetricsSink: each response is recorded (status class, duration)
// and the native counters reach the sink at close, as increases that add up to stats().
import { describe, expect, it } from 'vitest';
import { Gateway } from '../../lib/gateway/gateway.js';
import type { MetricsSink } from '../../lib/internal/metrics-sink.js';
import WebSocket from 'ws';
import { expectCode } from '../helpers.js';

function recordingSink() {
  const totals = new Map<string, number>();
  const key = (name: string, labels: unknown) => `${name}${labels ? JSON.stringify(labels) : ''}`;
  const add = (name: string, labels: unknown, v: number) => totals.set(key(name, labels), (totals.get(key(name, labels)) ?? 0) + v);
  const sink: MetricsSink = {
    counter: (name) => ({ inc: (l, n = 1) => add(name, l, n) }),
    gauge: (name) => ({ set: (l, v) => totals.set(key(name, l), v) }),
    histogram: (name) => ({ observe: (l, v) => (add(`${name}_count`, l, 1), add(`${name}_sum`, l, v)) }),
  };
  return { sink, totals };
}

describe('Gateway metrics', () => {
  it('records responses by status class and the native counters', async () => {
    const { sink, totals } = recordingSink();
    const gw = new Gateway({ port: 0, ioThreads: 1, metrics: sink });
    const { port } = await gw.listen();
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    const events = await fetch(`${base}/v1/events`, { method: 'POST', body: '{"subject":"a.b","data":1}' });
    expect(events.status).toBe(202);
    const stats = gw.stats();
    await gw.close();
    expect(totals.get('gateway_http_responses_total{"code":"2xx"}')).toBe(2);
    expect(totals.get('gateway_http_responses_total{"code":"4xx"}')).toBe(1);
    expect(totals.get('gateway_http_request_duration_seconds_count')).toBe(3);
    expect(totals.get('gateway_http_request_duration_seconds_sum')).toBeGreaterThan(0);
    expect(totals.get('gateway_http_requests_total')).toBe(stats.httpRequests);
    expect(totals.get('gateway_events_in_total')).toBe(1);
  });

  it('times the ingress stage of one WebSocket pub in 64', async () => {
    const { sink, totals } = recordingSink();
    const gw = new Gateway({ port: 0, ioThreads: 1, metrics: sink });
    const { port } = await gw.listen();
    let seen = 0;
    const all = new Promise<void>((resolve) =>
      gw.bus.subscribe('t.>', () => {
        if (++seen === 128) resolve();
      }),
    );
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    await new Promise((r) => ws.once('open', r));
    for (let i = 0; i < 128; i++) ws.send(JSON.stringify({ op: 'pub', subject: 't.x', data: { i } }));
    await all;
    ws.close();
    await gw.close();
    expect(totals.get('gateway_stage_seconds_count{"stage":"ingress"}')).toBe(2);
    const sum = totals.get('gateway_stage_seconds_sum{"stage":"ingress"}') ?? -1;
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(10); // two samples, each well under a second: the clocks agree
  });

  it('a sink that is not one is refused', () => {
    expectCode(() => new Gateway({ metrics: {} as MetricsSink }), 'ERR_INVALID_ARGUMENT');
  });
});

describe('Gateway with a Metrics instance', () => {
  it('serves /metrics, the history and the alert list, and attaches its bus to the alerts', async () => {
    const { Metrics } = await import('../../lib/metrics/metrics.js');
    const metrics = new Metrics({ evaluationIntervalMs: 50, system: false, defaultRules: false });
    metrics.alerts.add({ name: 'many-events', when: { metric: 'myelin_gateway_events_in_total', above: 0 }, severity: 'warning' });
    const gw = new Gateway({ port: 0, ioThreads: 1, metrics });
    const fired = new Promise<unknown>((resolve) => gw.bus.subscribe('$SYS.alert.>', (ev) => resolve(ev.data)));
    const { port } = await gw.listen();
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/v1/events`, { method: 'POST', body: '{"subject":"a.b","data":1}' })).status).toBe(202);
    // The gateway's counters reach the sink once a second; the rule fires after that.
    const alert = (await fired) as { name: string; status: string };
    expect(alert.name).toBe('many-events');
    expect(alert.status).toBe('firing');
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/^myelin_gateway_events_in_total 1$/m);
    const list = (await (await fetch(`${base}/api/alerts`)).json()) as { alerts: Array<{ name: string; state: string }> };
    expect(list.alerts.find((a) => a.name === 'many-events')?.state).toBe('firing');
    const h = await fetch(`${base}/api/metrics/history?metric=myelin_gateway_events_in_total&from=-1h`);
    expect(h.status).toBe(200);
    await gw.close();
    metrics.close();
  });
});
