// The alert manager with its real peers: a Bus ($SYS.alert.<name> events), an AIClient
// against the upstream simulator (the open-breaker action makes it refuse a target) and
// a Metrics instance as the reader and the sink (the autoscale gauge).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AIClient } from '../../lib/ai/client/index.js';
import { UpstreamSimulator } from '../../lib/ai/simulator/index.js';
import { Bus } from '../../lib/bus/bus.js';
import { AlertManager } from '../../lib/metrics/alerts.js';
import { Metrics } from '../../lib/metrics/metrics.js';
import type { Alert } from '../../lib/metrics/types.js';
import { KEY, TARGETS, client, hello, rejection } from '../ai/client-fixtures.js';

let sim: UpstreamSimulator;
let url: string;
beforeAll(async () => {
  sim = new UpstreamSimulator({ apiKey: KEY, tokens: 4 });
  url = (await sim.listen(0)).url;
});
afterAll(async () => {
  await sim?.close();
});

describe('alert manager with real peers', () => {
  it('publishes $SYS.alert.<name> on a real Bus for firing and resolved, through a real Metrics reader', async () => {
    const metrics = new Metrics({ system: false });
    const bus = new Bus();
    const depth = metrics.gauge('queue_depth', { help: 'test' });
    const am = new AlertManager({ reader: metrics, defaultRules: false, timer: false, sink: metrics });
    am.attach({ bus });
    const seen: Array<{ subject: string; data: Alert }> = [];
    bus.subscribe('$SYS.alert.>', (e) => void seen.push({ subject: e.subject, data: e.data as Alert }));
    am.add({ name: 'deep-queue', when: { metric: 'myelin_queue_depth', above: 100 }, severity: 'critical' });
    depth.set(undefined, 500);
    am.evaluate(1000);
    depth.set(undefined, 3);
    am.evaluate(2000);
    await bus.drain();
    expect(seen.map((s) => [s.subject, s.data.status, s.data.value])).toEqual([
      ['$SYS.alert.deep-queue', 'firing', 500],
      ['$SYS.alert.deep-queue', 'resolved', 3],
    ]);
    expect(seen[1].data).toMatchObject({ name: 'deep-queue', severity: 'critical', metric: 'myelin_queue_depth', startsAt: 1000, endsAt: 2000 });
    // autoscale through the Metrics sink: the gauge appears as myelin_autoscale_desired_replicas.
    const events: unknown[] = [];
    bus.subscribe('$SYS.autoscale', (e) => void events.push(e.data));
    am.add({ name: 'scale-out', when: { metric: 'myelin_queue_depth', above: 10 }, action: { kind: 'autoscale', replicas: 4 } });
    depth.set(undefined, 50);
    am.evaluate(3000);
    await am.settled();
    await bus.drain();
    expect(metrics.value('myelin_autoscale_desired_replicas')).toBe(4);
    expect(events).toEqual([{ replicas: 4, alert: 'scale-out', value: 50, at: 3000 }]);
    am.close();
    await bus.close();
    metrics.close();
    // A closed bus is counted, not thrown.
    const am2 = new AlertManager({ reader: metrics, defaultRules: false, timer: false });
    am2.attach({ bus });
    am2.add({ name: 'x', when: { metric: 'myelin_queue_depth', above: 10 } });
    am2.evaluate(1);
    expect(am2.stats().busErrors).toBe(1);
    am2.close();
  });

  it('open-breaker makes the AIClient refuse the target until the alert is long gone', async () => {
    const ai: AIClient = client(url, { breaker: { minRequests: 100, openMs: 60_000 } });
    const metrics = new Metrics({ system: false });
    const errors = metrics.gauge('upstream_errors', { help: 'test' });
    const am = new AlertManager({ reader: metrics, defaultRules: false, timer: false });
    am.attach({ ai });
    am.add({ name: 'upstream-bad', when: { metric: 'myelin_upstream_errors', above: 0.5 }, action: { kind: 'open-breaker', target: TARGETS.openai, forMs: 60_000 } });
    expect((await ai.chat(hello(TARGETS.openai))).text).not.toBe('');
    errors.set(undefined, 0.9);
    am.evaluate(1000);
    await am.settled();
    expect(am.stats().actions).toEqual({ run: 1, failed: 0, skipped: 0 });
    const before = sim.stats().requests;
    const err = await rejection(ai.chat(hello(TARGETS.openai)));
    expect(err.code).toBe('ERR_AI_CIRCUIT_OPEN');
    expect(sim.stats().requests).toBe(before);
    expect(ai.stats().targets[TARGETS.openai].breaker).toBe('open');
    expect((await ai.chat(hello(TARGETS.claude))).text).not.toBe('');
    am.close();
    metrics.close();
    await ai.close();
    // Without an AI client attached the action is skipped and counted.
    const m2 = new Metrics({ system: false });
    m2.gauge('upstream_errors', { help: 'test' }).set(undefined, 1);
    const lone = new AlertManager({ reader: m2, defaultRules: false, timer: false });
    lone.add({ name: 'upstream-bad', when: { metric: 'myelin_upstream_errors', above: 0.5 }, action: { kind: 'open-breaker', target: TARGETS.openai } });
    lone.evaluate(1);
    await lone.settled();
    expect(lone.stats().actions.skipped).toBe(1);
    lone.close();
    m2.close();
  });

  it('the unref\'d timer evaluates every intervalMs on its own', async () => {
    const metrics = new Metrics({ system: false });
    metrics.gauge('hot', { help: 'test' }).set(undefined, 9);
    const got: Alert[] = [];
    const am = new AlertManager({ reader: metrics, defaultRules: false, intervalMs: 20, emit: (a) => got.push(a) });
    am.add({ name: 'hot', when: { metric: 'myelin_hot', above: 1 } });
    while (got.length === 0) await new Promise((r) => setTimeout(r, 10));
    expect(got[0]).toMatchObject({ name: 'hot', status: 'firing', value: 9 });
    expect(am.stats().evaluations).toBeGreaterThan(0);
    am.close();
    metrics.close();
  });
});
