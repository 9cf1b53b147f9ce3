// AlertManager (lib/metrics/alerts.ts) against a small in-test MetricsReader, with an
// injected clock: `for` durations, one alert per series, silences, escalation,
// resolve, anomalies, rates, windowed quantiles, ratios, trends, default rules, and
// ERR_INVALID_ARGUMENT for bad input to every public method.
import { afterEach, describe, expect, it } from 'vitest';
import { AlertManager, type AlertManagerOptions, KPI_SERIES, defaultRules } from '../../lib/metrics/alerts.js';
import { MetricHistory } from '../../lib/metrics/history.js';
import type { Alert, AlertRule, MetricSnapshot, MetricType, MetricsReader, SeriesSample } from '../../lib/metrics/types.js';
import { expectCode } from '../helpers.js';

/** A reader whose series the test sets directly. */
class TestReader implements MetricsReader {
  readonly metrics = new Map<string, MetricSnapshot>();
  set(name: string, type: MetricType, series: SeriesSample[]): void {
    this.metrics.set(name, { name, type, help: name, series });
  }
  gauge(name: string, value: number, labels: Record<string, string> = {}): void {
    const m = this.metrics.get(name);
    const rest = (m?.series ?? []).filter((s) => JSON.stringify(s.labels) !== JSON.stringify(labels));
    this.set(name, 'gauge', [...rest, { labels, value }]);
  }
  drop(name: string): void {
    this.metrics.delete(name);
  }
  snapshot(): MetricSnapshot[] {
    return [...this.metrics.values()].map((m) => ({ ...m, series: m.series.map((s) => ({ ...s })) }));
  }
  value(): number | undefined {
    return undefined;
  }
  quantile(): number | undefined {
    return undefined;
  }
}

const open: AlertManager[] = [];
afterEach(() => {
  for (const m of open.splice(0)) m.close();
});

let clock = 0;
function manager(reader: MetricsReader, extra: Partial<AlertManagerOptions> = {}): { am: AlertManager; got: Alert[] } {
  const got: Alert[] = [];
  clock = 1_000_000;
  const am = new AlertManager({ reader, emit: (a) => got.push(a), defaultRules: false, timer: false, now: () => clock, ...extra });
  open.push(am);
  return { am, got };
}
/** Evaluates at each of the times given (ms after the start). */
function at(am: AlertManager, ...ms: number[]): void {
  for (const t of ms) {
    clock = 1_000_000 + t;
    am.evaluate(clock);
  }
}
const stateOf = (am: AlertManager, name: string) => am.list().find((r) => r.rule.name === name)?.state;

describe('thresholds and for', () => {
  it('pending until `for` has held, then firing once; resolved with endsAt when the condition goes', () => {
    const r = new TestReader();
    const { am, got } = manager(r);
    am.add({ name: 'hot', when: { metric: 'm_temp', above: 5 }, for: '30s', severity: 'critical' });
    r.gauge('m_temp', 3);
    at(am, 0);
    expect(stateOf(am, 'hot')).toBe('inactive');
    r.gauge('m_temp', 9);
    at(am, 1000);
    expect(stateOf(am, 'hot')).toBe('pending');
    at(am, 30_000);
    expect(got).toEqual([]);
    at(am, 31_000);
    expect(got).toEqual([{ name: 'hot', status: 'firing', severity: 'critical', metric: 'm_temp', labels: {}, value: 9, startsAt: 1_031_000 }]);
    at(am, 32_000, 40_000);
    expect(got).toHaveLength(1);
    r.gauge('m_temp', 1);
    at(am, 41_000);
    expect(got[1]).toEqual({ name: 'hot', status: 'resolved', severity: 'critical', metric: 'm_temp', labels: {}, value: 1, startsAt: 1_031_000, endsAt: 1_041_000 });
    expect(stateOf(am, 'hot')).toBe('inactive');
    expect(am.list()[0].last?.status).toBe('resolved');
  });

  it('a dip during pending restarts the `for` clock', () => {
    const r = new TestReader();
    const { am, got } = manager(r);
    am.add({ name: 'low', when: { metric: 'm_x', below: 10 }, for: 5000 });
    r.gauge('m_x', 1);
    at(am, 0, 4000);
    r.gauge('m_x', 50);
    at(am, 4500);
    r.gauge('m_x', 1);
    at(am, 5000, 9000);
    expect(got).toHaveLength(0);
    at(am, 10_000);
    expect(got.map((a) => a.status)).toEqual(['firing']);
  });

  it('without labels: one alert per series, bounded by maxSeriesPerRule; a vanished series resolves', () => {
    const r = new TestReader();
    const { am, got } = manager(r, { maxSeriesPerRule: 2 });
    am.add({ name: 'q', when: { metric: 'm_q', above: 100 } });
    r.set('m_q', 'gauge', [
      { labels: { lane: 'a' }, value: 500 },
      { labels: { lane: 'b' }, value: 1 },
      { labels: { lane: 'c' }, value: 900 },
    ]);
    at(am, 0);
    expect(got.map((a) => a.labels)).toEqual([{ lane: 'a' }]);
    expect(am.stats().overflow).toBe(1);
    r.drop('m_q');
    at(am, 1000);
    expect(got[1]).toMatchObject({ status: 'resolved', labels: { lane: 'a' }, endsAt: 1_001_000 });
  });

  it('with labels: only the matching series', () => {
    const r = new TestReader();
    const { am, got } = manager(r);
    am.add({ name: 'p99', when: { metric: 'm_lat', labels: { quantile: '0.99' }, above: 1 } });
    r.set('m_lat', 'gauge', [
      { labels: { quantile: '0.5' }, value: 5 },
      { labels: { quantile: '0.99' }, value: 0.5 },
    ]);
    at(am, 0);
    expect(got).toHaveLength(0);
    r.gauge('m_lat', 2, { quantile: '0.99' });
    at(am, 1000);
    expect(got.map((a) => a.labels)).toEqual([{ quantile: '0.99' }]);
  });

  it('a rule on a metric that does not exist stays inactive', () => {
    const { am, got } = manager(new TestReader());
    am.add({ name: 'ghost', when: { metric: 'm_none', above: 0 } });
    at(am, 0, 1000);
    expect(stateOf(am, 'ghost')).toBe('inactive');
    expect(got).toHaveLength(0);
  });
});

describe('silences and escalation', () => {
  it('a silence suppresses delivery but not state; what comes after it is delivered', () => {
    const r = new TestReader();
    const { am, got } = manager(r);
    am.add({ name: 's', when: { metric: 'm_s', above: 1 } });
    am.silence('s', { forMs: 10_000 });
    r.gauge('m_s', 5);
    at(am, 0);
    expect(got).toHaveLength(0);
    const l = am.list()[0];
    expect(l.state).toBe('firing');
    expect(l.silencedUntil).toBe(1_010_000);
    expect(am.stats().silenced).toBe(1);
    r.gauge('m_s', 0);
    at(am, 20_000);
    expect(got.map((a) => a.status)).toEqual(['resolved']);
    // forMs 0 lifts a silence.
    am.silence('s', { forMs: 60_000 });
    am.silence('s', { forMs: 0 });
    r.gauge('m_s', 5);
    at(am, 21_000);
    expect(got.map((a) => a.status)).toEqual(['resolved', 'firing']);
  });

  it('repeatInterval re-notifies while firing; escalateAfter raises the severity to critical', () => {
    const r = new TestReader();
    const { am, got } = manager(r);
    am.add({ name: 'e', when: { metric: 'm_e', above: 1 }, severity: 'info', repeatInterval: '10s', escalateAfter: '25s' });
    r.gauge('m_e', 5);
    for (let t = 0; t <= 60_000; t += 1000) at(am, t);
    expect(got.map((a) => `${a.startsAt - 1_000_000}:${a.severity}`)).toEqual([
      '0:info',
      '0:info', // 10 s
      '0:info', // 20 s
      '0:warning', // 25 s: escalated (and the repeat clock restarts)
      '0:warning', // 35 s
      '0:warning', // 45 s
      '0:critical', // 50 s
      '0:critical', // 60 s
    ]);
    expect(got.every((a) => a.status === 'firing')).toBe(true);
  });
});

describe('anomaly, rate, quantile, ratio, trend', () => {
  it('anomaly: a constant series never alerts; a step does within a few ticks, and resolves as the mean adapts', () => {
    const r = new TestReader();
    const { am, got } = manager(r);
    am.add({ name: 'anom', when: { metric: 'm_a', anomaly: { z: 4 } } });
    r.gauge('m_a', 100);
    for (let t = 0; t < 30_000; t += 1000) at(am, t);
    expect(got).toHaveLength(0);
    r.gauge('m_a', 400);
    at(am, 30_000);
    expect(got.map((a) => a.status)).toEqual(['firing']);
    for (let t = 31_000; t < 200_000; t += 1000) at(am, t);
    expect(got.at(-1)?.status).toBe('resolved');
  });

  it('rateOverMs: a counter compared by its per-second rate; a reset is not a negative rate', () => {
    const r = new TestReader();
    const { am, got } = manager(r);
    am.add({ name: 'fast', when: { metric: 'm_total', rateOverMs: 10_000, above: 50 } });
    let v = 0;
    for (let t = 0; t <= 20_000; t += 1000) {
      v += 10; // 10/s
      r.set('m_total', 'counter', [{ labels: {}, value: v }]);
      at(am, t);
    }
    expect(got).toHaveLength(0);
    r.set('m_total', 'counter', [{ labels: {}, value: 5 }]); // restart
    at(am, 21_000);
    expect(got).toHaveLength(0);
    v = 5;
    for (let t = 22_000; t <= 40_000; t += 1000) {
      v += 100;
      r.set('m_total', 'counter', [{ labels: {}, value: v }]);
      at(am, t);
    }
    expect(got.map((a) => a.status)).toEqual(['firing']);
    expect(got[0].value).toBeGreaterThan(50);
  });

  it('quantile with rateOverMs: the quantile of the observations inside the window', () => {
    const r = new TestReader();
    const { am, got } = manager(r);
    am.add({ name: 'p95', when: { metric: 'm_dur', quantile: 0.95, rateOverMs: 5000, above: 0.5 } });
    const les = [0.1, 0.5, 1, Infinity];
    const counts = [0, 0, 0, 0];
    const push = (le: number, n: number) => {
      for (let i = les.indexOf(le); i < les.length; i++) counts[i] += n;
      r.set('m_dur', 'histogram', [{ labels: {}, value: 0, count: counts[3], buckets: les.map((l, i) => [l, counts[i]] as [number, number]) }]);
    };
    for (let t = 0; t <= 10_000; t += 1000) {
      push(0.1, 100);
      at(am, t);
    }
    expect(got).toHaveLength(0);
    for (let t = 11_000; t <= 16_000; t += 1000) {
      push(1, 100);
      at(am, t);
    }
    expect(got.map((a) => a.status)).toEqual(['firing']);
    expect(got[0].value).toBeGreaterThan(0.5);
    expect(got[0].value).toBeLessThanOrEqual(1);
  });

  it('per: an error ratio over summed rates, one alert for the rule', () => {
    const r = new TestReader();
    const { am, got } = manager(r);
    am.add({ name: 'errors', when: { metric: 'm_failed_total', per: ['m_failed_total', 'm_ok_total'], rateOverMs: 5000, above: 0.001 } });
    let ok = 0;
    let failed = 0;
    for (let t = 0; t <= 10_000; t += 1000) {
      ok += 1000;
      r.set('m_ok_total', 'counter', [{ labels: {}, value: ok }]);
      r.set('m_failed_total', 'counter', [{ labels: {}, value: failed }]);
      at(am, t);
    }
    expect(got).toHaveLength(0);
    for (let t = 11_000; t <= 13_000; t += 1000) {
      ok += 1000;
      failed += 10; // 1%
      r.set('m_ok_total', 'counter', [{ labels: {}, value: ok }]);
      r.set('m_failed_total', 'counter', [{ labels: {}, value: failed }]);
      at(am, t);
    }
    expect(got.map((a) => a.status)).toEqual(['firing']);
    expect(got[0].value).toBeGreaterThan(0.001);
    expect(got[0].value).toBeLessThan(0.01);
  });

  it('trend: throughput that leaves its trend by more than the tolerance fires', () => {
    const r = new TestReader();
    const { am, got } = manager(r);
    am.add({ name: 'tp', when: { metric: 'm_pub_total', rateOverMs: 10_000, trend: { windowMs: 120_000, tolerance: 0.1, minRate: 1 } } });
    let v = 0;
    for (let t = 0; t <= 180_000; t += 1000) {
      v += 100; // a flat 100/s
      r.set('m_pub_total', 'counter', [{ labels: { lane: 'low' }, value: v }]);
      at(am, t);
    }
    expect(got).toHaveLength(0);
    for (let t = 181_000; t <= 190_000; t += 1000) {
      v += 300;
      r.set('m_pub_total', 'counter', [{ labels: { lane: 'low' }, value: v }]);
      at(am, t);
    }
    expect(got.map((a) => a.status)).toEqual(['firing']);
    expect(got[0].labels).toEqual({ lane: 'low' });
  });
});

describe('default rules', () => {
  it('are the seed KPIs, named after the table, and stay inactive without their series', () => {
    const r = new TestReader();
    const { am } = manager(r, { defaultRules: true });
    const names = am.list().map((l) => l.rule.name);
    expect(names).toEqual(defaultRules().map((d) => d.name));
    expect(names).toHaveLength(11);
    for (const l of am.list()) expect(l.rule.when.metric.startsWith('myelin_')).toBe(true);
    at(am, 0, 1000);
    expect(am.list().every((l) => l.state === 'inactive')).toBe(true);
  });

  it('CPU per core > 80% for a minute fires one alert per core; the prefix option renames the series', () => {
    const r = new TestReader();
    const { am, got } = manager(r, { defaultRules: true, prefix: 'app_' });
    const cpu = `app_${KPI_SERIES.cpu}`;
    r.set(cpu, 'gauge', [
      { labels: { cpu: '0' }, value: 0.95 },
      { labels: { cpu: '1' }, value: 0.2 },
    ]);
    for (let t = 0; t <= 60_000; t += 1000) at(am, t);
    expect(got.map((a) => [a.name, a.labels.cpu])).toEqual([['cpu-high', '0']]);
  });

  it('defaultRules: false leaves none', () => {
    const { am } = manager(new TestReader());
    expect(am.list()).toEqual([]);
  });
});

describe('delivery and actions through the manager', () => {
  it('emit listeners, actions and snapshot() that throw are counted, never thrown', async () => {
    const r = new TestReader();
    let calls = 0;
    const got: Alert[] = [];
    clock = 0;
    const am = new AlertManager({
      reader: r,
      defaultRules: false,
      timer: false,
      now: () => clock,
      emit: () => {
        calls++;
        throw new Error('listener');
      },
    });
    open.push(am);
    am.add({ name: 'f', when: { metric: 'm_f', above: 0 }, action: (a) => void got.push(a) });
    am.add({ name: 'g', when: { metric: 'm_f', above: 0 }, action: () => Promise.reject(new Error('action')) });
    am.add({ name: 'h', when: { metric: 'm_f', above: 0 }, action: () => { throw new Error('sync'); } });
    r.gauge('m_f', 1);
    am.evaluate(0);
    await am.settled();
    expect(calls).toBe(3);
    expect(got.map((a) => a.name)).toEqual(['f']);
    expect(am.stats()).toMatchObject({ emitErrors: 3, actions: { run: 1, failed: 2 } });
    const bad = new AlertManager({ reader: { snapshot: () => { throw new Error('x'); } } as unknown as MetricsReader, defaultRules: false, timer: false });
    open.push(bad);
    bad.evaluate(0);
    expect(bad.stats().snapshotErrors).toBe(1);
  });

  it('shed-load calls bus.shed(priority, on) while firing and off on resolve; autoscale sets the gauge and publishes $SYS.autoscale', async () => {
    const r = new TestReader();
    const calls: unknown[] = [];
    const events: unknown[] = [];
    const bus = { publish: (s: string, d: unknown) => (events.push([s, d]), true), shed: (p: string, on: boolean) => calls.push([p, on]) };
    const gauges: Array<[string, number]> = [];
    const sink = {
      counter: () => ({ inc() {} }),
      histogram: () => ({ observe() {} }),
      gauge: (name: string) => ({ set: (_l: unknown, v: number) => gauges.push([name, v]) }),
    };
    const { am } = manager(r, { sink });
    am.attach({ bus });
    am.add({ name: 'shed', when: { metric: 'm_q', above: 10 }, action: { kind: 'shed-load' } });
    am.add({ name: 'scale', when: { metric: 'm_q', above: 10 }, action: { kind: 'autoscale', replicas: 6 } });
    r.gauge('m_q', 50);
    at(am, 0, 1000);
    r.gauge('m_q', 0);
    at(am, 2000);
    await am.settled();
    expect(calls).toEqual([['low', true], ['low', false]]);
    expect(gauges).toEqual([[KPI_SERIES.autoscale, 6]]);
    expect(events.filter((e) => (e as [string])[0] === '$SYS.autoscale')).toEqual([['$SYS.autoscale', { replicas: 6, alert: 'scale', value: 50, at: 1_000_000 }]]);
    expect(events.filter((e) => (e as [string])[0] === '$SYS.alert.shed').length).toBe(2);
  });

  it('shed-load on a bus without shed() is skipped and counted; close() turns an active shed off', async () => {
    const r = new TestReader();
    const { am } = manager(r);
    am.attach({ bus: { publish: () => true } });
    am.add({ name: 'shed', when: { metric: 'm_q', above: 10 }, action: { kind: 'shed-load', priority: 'normal' } });
    r.gauge('m_q', 50);
    at(am, 0);
    await am.settled();
    expect(am.stats().actions.skipped).toBe(1);
    const calls: unknown[] = [];
    const { am: am2 } = manager(r);
    am2.attach({ bus: { publish: () => true, shed: (p: string, on: boolean) => calls.push([p, on]) } });
    am2.add({ name: 'shed', when: { metric: 'm_q', above: 10 }, action: { kind: 'shed-load', priority: 'normal' } });
    at(am2, 0);
    am2.close();
    await am2.settled();
    expect(calls).toEqual([['normal', true], ['normal', false]]);
  });

  it('the history is fed on each evaluation and keeps the notifications', () => {
    const r = new TestReader();
    const history = new MetricHistory({ now: () => clock });
    const { am } = manager(r, { history });
    am.add({ name: 'h', when: { metric: 'm_h', above: 1 } });
    r.gauge('m_h', 5);
    at(am, 0, 1000);
    expect(history.query('m_h', undefined, { from: 1_000_000, to: 1_001_000 }).series[0].points).toEqual([
      [1_000_000, 5],
      [1_001_000, 5],
    ]);
    expect(history.alerts().map((a) => a.name)).toEqual(['h']);
    expect(am.history).toBe(history);
  });
});

describe('re-entrancy', () => {
  it('a listener may evaluate, remove and add rules from inside a notification', () => {
    const r = new TestReader();
    const seen: string[] = [];
    clock = 0;
    let am!: AlertManager;
    am = new AlertManager({
      reader: r,
      defaultRules: false,
      timer: false,
      now: () => clock,
      emit: (a) => {
        seen.push(`${a.name}:${a.status}`);
        am.evaluate(clock); // ignored: already evaluating
        if (a.name === 'one') {
          am.remove('two');
          am.add({ name: 'three', when: { metric: 'm_r', above: 0 } });
        }
      },
    });
    open.push(am);
    am.add({ name: 'one', when: { metric: 'm_r', above: 0 } });
    am.add({ name: 'two', when: { metric: 'm_r', above: 0 } });
    r.gauge('m_r', 1);
    am.evaluate(0);
    // 'two' went before its turn; 'three', added during the pass, was evaluated in it.
    expect(seen).toEqual(['one:firing', 'three:firing']);
    expect(am.list().map((l) => [l.rule.name, l.state])).toEqual([
      ['one', 'firing'],
      ['three', 'firing'],
    ]);
  });
});

describe('bad input gets ERR_INVALID_ARGUMENT', () => {
  const ok: AlertRule = { name: 'ok', when: { metric: 'm_x', above: 1 } };
  const bad: Array<[string, unknown]> = [
    ['not an object', 42],
    ['null', null],
    ['unknown key', { ...ok, extra: 1 }],
    ['no name', { when: ok.when }],
    ['bad name', { ...ok, name: 'has space' }],
    ['name starting with a digit', { ...ok, name: '1x' }],
    ['no when', { name: 'x' }],
    ['no condition', { name: 'x', when: { metric: 'm_x' } }],
    ['unknown when key', { name: 'x', when: { metric: 'm_x', above: 1, over: 2 } }],
    ['bad metric', { name: 'x', when: { metric: 'm-x', above: 1 } }],
    ['NaN threshold', { name: 'x', when: { metric: 'm_x', above: Number.NaN } }],
    ['string threshold', { name: 'x', when: { metric: 'm_x', below: '1' } }],
    ['bad labels', { name: 'x', when: { metric: 'm_x', above: 1, labels: { a: {} } } }],
    ['bad quantile', { name: 'x', when: { metric: 'm_x', above: 1, quantile: 1.5 } }],
    ['bad anomaly', { name: 'x', when: { metric: 'm_x', anomaly: { z: -1 } } }],
    ['unknown anomaly key', { name: 'x', when: { metric: 'm_x', anomaly: { zz: 1 } } }],
    ['bad rateOverMs', { name: 'x', when: { metric: 'm_x', above: 1, rateOverMs: '1y' } }],
    ['tiny rateOverMs', { name: 'x', when: { metric: 'm_x', above: 1, rateOverMs: 10 } }],
    ['bad per', { name: 'x', when: { metric: 'm_x', above: 1, per: [] } }],
    ['bad trend', { name: 'x', when: { metric: 'm_x', trend: { tolerance: 0 } } }],
    ['bad for', { ...ok, for: '30 seconds' }],
    ['negative for', { ...ok, for: -5 }],
    ['for of a year', { ...ok, for: '365d' }],
    ['bad repeatInterval', { ...ok, repeatInterval: 'often' }],
    ['bad escalateAfter', { ...ok, escalateAfter: Number.NaN }],
    ['bad severity', { ...ok, severity: 'page' }],
    ['bad webhook', { ...ok, webhook: 'not a url' }],
    ['ftp webhook', { ...ok, webhook: 'ftp://example.com/x' }],
    ['webhook with credentials', { ...ok, webhook: 'http://u:p@127.0.0.1/x' }],
    ['unknown action kind', { ...ok, action: { kind: 'reboot' } }],
    ['bad breaker target', { ...ok, action: { kind: 'open-breaker', target: 'gpt' } }],
    ['bad shed priority', { ...ok, action: { kind: 'shed-load', priority: 'critical' } }],
    ['bad replicas', { ...ok, action: { kind: 'autoscale', replicas: -1 } }],
    ['action extra key', { ...ok, action: { kind: 'autoscale', replicas: 2, x: 1 } }],
  ];
  it.each(bad)('add: %s', (_, rule) => {
    const { am } = manager(new TestReader());
    expectCode(() => am.add(rule as AlertRule), 'ERR_INVALID_ARGUMENT');
    expect(am.list()).toEqual([]);
  });

  it('add: a duplicate name', () => {
    const { am } = manager(new TestReader());
    am.add(ok);
    expectCode(() => am.add(ok), 'ERR_INVALID_ARGUMENT', /exists/);
  });

  it('remove, silence, evaluate, attach', () => {
    const { am } = manager(new TestReader());
    am.add(ok);
    expectCode(() => am.remove(42 as unknown as string), 'ERR_INVALID_ARGUMENT');
    expect(am.remove('nope')).toBe(false);
    for (const [n, o] of [
      ['nope', { forMs: 1 }],
      [7, { forMs: 1 }],
      ['ok', undefined],
      ['ok', { forMs: -1 }],
      ['ok', { forMs: Number.NaN }],
      ['ok', { forMs: '1s' }],
      ['ok', { forMs: 1, x: 1 }],
    ] as Array<[unknown, unknown]>) {
      expectCode(() => am.silence(n as string, o as { forMs: number }), 'ERR_INVALID_ARGUMENT');
    }
    expectCode(() => am.evaluate(Number.NaN), 'ERR_INVALID_ARGUMENT');
    for (const p of [null, { bus: {} }, { ai: {} }, { other: 1 }]) expectCode(() => am.attach(p as never), 'ERR_INVALID_ARGUMENT');
    expect(am.remove('ok')).toBe(true);
    expect(am.list()).toEqual([]);
  });

  it('constructor options', () => {
    const reader = new TestReader();
    for (const o of [
      null,
      {},
      { reader: {} },
      { reader, intervalMs: 0 },
      { reader, intervalMs: Number.NaN },
      { reader, emit: 1 },
      { reader, maxSeriesPerRule: 0 },
      { reader, prefix: '1bad' },
      { reader, history: {} },
      { reader, webhook: { attempts: 0 } },
      { reader, webhook: { backoffMs: -1 } },
      { reader, externalURL: 'nope' },
      { reader, unknown: 1 },
    ]) {
      expectCode(() => new AlertManager(o as AlertManagerOptions), 'ERR_INVALID_ARGUMENT');
    }
  });

  it('after close, add throws; evaluate does nothing; close is idempotent', () => {
    const r = new TestReader();
    const { am, got } = manager(r);
    am.add(ok);
    am.close();
    am.close();
    expectCode(() => am.add({ ...ok, name: 'later' }), 'ERR_INVALID_ARGUMENT');
    r.gauge('m_x', 5);
    at(am, 0);
    expect(got).toEqual([]);
    expect(am.closed).toBe(true);
  });
});
