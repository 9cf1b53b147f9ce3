// MetricHistory (lib/metrics/history.ts): the 1 s and 1 min tiers, their bounds (one
// hour, one day, the ring wrapping), step bucketing, histogram quantiles per interval,
// the series cap, bad queries, and the HTTP handler.
import { describe, expect, it } from 'vitest';
import { MetricHistory, bucketQuantile, historyRoute } from '../../lib/metrics/history.js';
import type { GatewayRequest, ResponseWriter, RouteResult } from '../../lib/gateway/http-types.js';
import type { MetricSnapshot } from '../../lib/metrics/types.js';
import { expectCode } from '../helpers.js';

const T0 = 1_800_000_000_000; // a whole minute
const gauge = (name: string, value: number, labels: Record<string, string> = {}): MetricSnapshot => ({ name, type: 'gauge', help: '', series: [{ labels, value }] });
const counter = (name: string, value: number, labels: Record<string, string> = {}): MetricSnapshot => ({ name, type: 'counter', help: '', series: [{ labels, value }] });

describe('MetricHistory', () => {
  it('keeps 1 s points for the last hour and answers them exactly', () => {
    let now = T0;
    const h = new MetricHistory({ now: () => now });
    for (let i = 0; i < 120; i++) h.record([gauge('g', i)], T0 + i * 1000);
    now = T0 + 119_000;
    const r = h.query('g', undefined, { from: T0 + 10_000, to: T0 + 19_000 });
    expect(r.step).toBe(1000);
    expect(r.series[0].points).toEqual(Array.from({ length: 10 }, (_, i) => [T0 + (10 + i) * 1000, 10 + i]));
    // A 10 s step: gauges average, counters take the last value.
    expect(h.query('g', undefined, { from: T0, to: T0 + 29_999, step: 10_000 }).series[0].points).toEqual([
      [T0, 4.5],
      [T0 + 10_000, 14.5],
      [T0 + 20_000, 24.5],
    ]);
  });

  it('1 min points for 24 h: gauges are the mean of the minute, counters its last value; the hour-old fine points are gone', () => {
    let now = T0;
    const h = new MetricHistory({ now: () => now });
    // Two hours at one sample every 10 s.
    for (let t = 0; t < 7_200_000; t += 10_000) h.record([gauge('g', (t / 10_000) % 6), counter('c_total', t / 1000)], T0 + t);
    now = T0 + 7_190_000;
    const g = h.query('g', undefined, { from: T0, to: now });
    expect(g.step).toBe(60_000);
    expect(g.series[0].points).toHaveLength(120);
    expect(g.series[0].points.every(([, v]) => v === 2.5)).toBe(true);
    const c = h.query('c_total', undefined, { from: T0, to: now, step: 60_000 });
    expect(c.series[0].points[0]).toEqual([T0, 50]);
    expect(c.series[0].points[1]).toEqual([T0 + 60_000, 110]);
    // Asking the fine tier for what is older than an hour: nothing comes back from it.
    const fine = h.query('g', undefined, { from: now - 3_600_000, to: now, step: 1000 });
    expect(fine.series[0].points[0][0]).toBeGreaterThanOrEqual(now - 3_600_000);
    expect(fine.series[0].points).toHaveLength(360);
  });

  it('the coarse ring keeps one day: after 25 hours the first hour is gone', () => {
    let now = T0;
    const h = new MetricHistory({ now: () => now });
    for (let m = 0; m < 25 * 60; m++) h.record([gauge('g', m)], T0 + m * 60_000);
    now = T0 + (25 * 60 - 1) * 60_000;
    const r = h.query('g', undefined, { from: T0, to: now, step: 60_000 });
    expect(r.series[0].points).toHaveLength(1440);
    expect(r.series[0].points[0]).toEqual([T0 + 60 * 60_000, 60]);
  });

  it('histograms: _count, _sum and quantiles of each interval (NaN when nothing was observed)', () => {
    const h = new MetricHistory({ now: () => T0 + 3000 });
    const snap = (counts: number[]): MetricSnapshot => ({
      name: 'lat_seconds',
      type: 'histogram',
      help: '',
      series: [{ labels: { route: 'a' }, value: 0, count: counts[2], buckets: [[0.1, counts[0]], [1, counts[1]], [Infinity, counts[2]]] }],
    });
    h.record([snap([100, 100, 100])], T0);
    h.record([snap([100, 200, 200])], T0 + 1000); // 100 new, all in (0.1, 1]
    h.record([snap([100, 200, 200])], T0 + 2000); // none
    const q = h.query('lat_seconds', { quantile: '0.5' }, { from: T0, to: T0 + 2000 });
    expect(q.series).toHaveLength(1);
    expect(q.series[0].labels).toEqual({ route: 'a', quantile: '0.5' });
    expect(q.series[0].points[0]).toEqual([T0 + 1000, 0.55]);
    expect(Number.isNaN(q.series[0].points[1][1])).toBe(true);
    expect(h.query('lat_seconds_count', undefined, { from: T0, to: T0 + 2000 }).series[0].points.map((p) => p[1])).toEqual([100, 200, 200]);
    expect(h.metrics().map((m) => m.name)).toEqual(['lat_seconds', 'lat_seconds_count', 'lat_seconds_sum']);
  });

  it('bucketQuantile interpolates like histogram_quantile', () => {
    const b: Array<[number, number]> = [[1, 10], [2, 20], [Infinity, 20]];
    expect(bucketQuantile(b, 0.5)).toBe(1);
    expect(bucketQuantile(b, 0.75)).toBe(1.5);
    expect(bucketQuantile([[1, 0], [Infinity, 5]], 0.5)).toBe(1);
    expect(Number.isNaN(bucketQuantile([[1, 0], [Infinity, 0]], 0.5))).toBe(true);
  });

  it('the series count is bounded; later series are dropped and counted', () => {
    const h = new MetricHistory({ maxSeries: 3 });
    h.record([{ name: 'g', type: 'gauge', help: '', series: Array.from({ length: 5 }, (_, i) => ({ labels: { i: String(i) }, value: i })) }], T0);
    expect(h.size).toBe(3);
    expect(h.dropped).toBe(2);
    expect(h.query('g', undefined, { from: T0, to: T0 }).series.map((s) => s.labels.i)).toEqual(['0', '1', '2']);
  });

  it('label filters, unknown metrics, records going back in time', () => {
    const h = new MetricHistory({ now: () => T0 + 1000 });
    h.record([{ name: 'q', type: 'gauge', help: '', series: [{ labels: { lane: 'low' }, value: 1 }, { labels: { lane: 'high' }, value: 2 }] }], T0 + 1000);
    h.record([gauge('q', 99, { lane: 'low' })], T0); // earlier than the last record: ignored
    expect(h.query('q', { lane: 'high' }, { from: T0, to: T0 + 1000 }).series).toEqual([{ labels: { lane: 'high' }, points: [[T0 + 1000, 2]] }]);
    expect(h.query('q', { lane: 'low' }, { from: T0, to: T0 + 1000 }).series[0].points).toEqual([[T0 + 1000, 1]]);
    expect(h.query('nothing').series).toEqual([]);
  });

  it('bad input gets ERR_INVALID_ARGUMENT', () => {
    const h = new MetricHistory({ now: () => T0 });
    for (const [name, labels, q] of [
      ['', undefined, {}],
      [42, undefined, {}],
      ['g', 'x', {}],
      ['g', { a: {} }, {}],
      ['g', undefined, null],
      ['g', undefined, { from: T0, to: T0 - 1 }],
      ['g', undefined, { from: Number.NaN }],
      ['g', undefined, { to: -1 }],
      ['g', undefined, { step: 10 }],
      ['g', undefined, { step: Infinity }],
      ['g', undefined, { from: 0, to: T0, step: 1000 }], // too many points
      ['g', undefined, { extra: 1 }],
    ] as Array<[unknown, unknown, unknown]>) {
      expectCode(() => h.query(name as string, labels as never, q as never), 'ERR_INVALID_ARGUMENT');
    }
    expectCode(() => h.record('x' as never, T0), 'ERR_INVALID_ARGUMENT');
    expectCode(() => h.record([], Number.NaN), 'ERR_INVALID_ARGUMENT');
    for (const o of [{ maxSeries: 0 }, { maxSeries: 1.5 }, { maxAlerts: -1 }, { now: 1 }, { other: 1 }]) expectCode(() => new MetricHistory(o as never), 'ERR_INVALID_ARGUMENT');
    expectCode(() => historyRoute({} as never), 'ERR_INVALID_ARGUMENT');
  });
});

function req(query: string): GatewayRequest {
  return { method: 'GET', path: '/api/metrics/history', query: new URLSearchParams(query), headers: {}, body: Buffer.alloc(0), signal: new AbortController().signal, token: undefined };
}

describe('historyRoute', () => {
  const h = new MetricHistory({ now: () => T0 + 2000 });
  h.record([gauge('g', 1)], T0);
  h.record([gauge('g', Number.NaN)], T0 + 1000);
  h.recordAlert({ name: 'a', status: 'firing', severity: 'warning', metric: 'g', labels: {}, value: 1, startsAt: T0 });
  const route = historyRoute(h, () => T0 + 2000);
  const call = (q: string) => route(req(q), {} as ResponseWriter) as RouteResult;

  it('lists metrics and alerts, and answers a series with NaN as null', () => {
    expect(call('from=-10s').body).toEqual({ now: T0 + 2000, metrics: [{ name: 'g', type: 'gauge', series: 1 }], alerts: [{ name: 'a', status: 'firing', severity: 'warning', metric: 'g', labels: {}, value: 1, startsAt: T0 }] });
    const r = call(`metric=g&from=${T0}&to=now&step=1s`);
    expect(r.status).toBe(200);
    expect((r.body as { series: unknown[] }).series).toEqual([{ labels: {}, points: [[T0, 1], [T0 + 1000, null]] }]);
    expect(JSON.parse(JSON.stringify(r.body)).step).toBe(1000);
  });

  it('bad parameters answer 400 with ERR_INVALID_ARGUMENT, never echoing much of the input', () => {
    for (const q of ['metric=g&from=yesterday', 'metric=g&to=<script>', 'metric=g&step=fast', 'metric=g&labels={', `metric=g&from=${T0 + 5000}&to=${T0}`, `metric=g&from=${'9'.repeat(300)}`]) {
      const r = call(q);
      expect(r.status, q).toBe(400);
      const e = (r.body as { error: { code: string; message: string } }).error;
      expect(e.code).toBe('ERR_INVALID_ARGUMENT');
      expect(e.message.length).toBeLessThanOrEqual(200);
      expect(e.message).not.toContain('<script>');
    }
  });
});

describe('MetricHistory: a histogram series that appears after the first snapshot', () => {
  it('counts its first interval from zero', () => {
    const h = new MetricHistory({ now: () => T0 + 3000 });
    const stage = (n: number): MetricSnapshot => ({ name: 'stage_seconds', type: 'histogram', help: '', series: [{ labels: {}, value: 0, count: n, buckets: [[0.001, n], [Infinity, n]] }] });
    h.record([], T0); // the baseline: the series did not exist yet
    h.record([stage(3)], T0 + 1000); // three observations in its first second
    const q = h.query('stage_seconds', { quantile: '0.99' }, { from: T0, to: T0 + 2000 });
    expect(q.series).toHaveLength(1);
    expect(q.series[0].points[0][0]).toBe(T0 + 1000);
    expect(q.series[0].points[0][1]).toBeGreaterThan(0);
    expect(q.series[0].points[0][1]).toBeLessThanOrEqual(0.001);
  });
});

describe('MetricHistory: several snapshots inside one second', () => {
  it("describe that whole second: a later snapshot with nothing new does not erase the second's quantile", () => {
    const h = new MetricHistory({ now: () => T0 + 3000 });
    const snap = (n: number): MetricSnapshot => ({ name: 'h_seconds', type: 'histogram', help: '', series: [{ labels: {}, value: 0, count: n, buckets: [[0.5, n], [Infinity, n]] }] });
    h.record([snap(0)], T0); // baseline
    h.record([snap(4)], T0 + 1000); // four observations early in the second...
    h.record([snap(4)], T0 + 1200); // ...then snapshots with nothing new in the same second
    h.record([snap(4)], T0 + 1800);
    const q = h.query('h_seconds', { quantile: '0.5' }, { from: T0, to: T0 + 2000 });
    const point = q.series[0].points.find((p) => p[0] === T0 + 1000);
    expect(point?.[1]).toBeGreaterThan(0);
    expect(point?.[1]).toBeLessThanOrEqual(0.5);
  });
});
