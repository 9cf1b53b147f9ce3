// SystemMetrics against a recording sink: every series it promises arrives with sane
// values after a sample, and a throwing sink never breaks it.
import { describe, expect, it } from 'vitest';
import { SystemMetrics } from '../../lib/metrics/system.js';
import type { MetricsSink } from '../../lib/internal/metrics-sink.js';

function recordingSink() {
  const seen = new Map<string, Array<{ labels: unknown; v: number }>>();
  const rec = (name: string) => (labels: unknown, v = 1) => {
    const list = seen.get(name) ?? [];
    list.push({ labels, v });
    seen.set(name, list);
  };
  const sink: MetricsSink = {
    counter: (name) => ({ inc: rec(name) }),
    gauge: (name) => ({ set: (l, v) => rec(name)(l, v) }),
    histogram: (name) => ({ observe: (l, v) => rec(name)(l, v) }),
  };
  return { sink, seen };
}

describe('SystemMetrics', () => {
  it('samples CPU per core, memory, event-loop lag and utilisation, and fds', async () => {
    const { sink, seen } = recordingSink();
    const s = new SystemMetrics(sink, 60_000);
    const until = Date.now() + 30;
    while (Date.now() < until); // some CPU time and event-loop delay to see
    await new Promise((r) => setTimeout(r, 20));
    s.sample();
    s.close();
    const cpu = seen.get('system_cpu_utilization_ratio') ?? [];
    expect(cpu.length).toBeGreaterThan(0);
    for (const { v } of cpu) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
    }
    expect(seen.get('process_resident_memory_bytes')?.[0].v).toBeGreaterThan(1 << 20);
    const mem = seen.get('system_memory_utilization_ratio')?.[0].v ?? -1;
    expect(mem).toBeGreaterThan(0);
    expect(mem).toBeLessThan(1);
    const elu = seen.get('nodejs_eventloop_utilization_ratio')?.[0].v ?? -1;
    expect(elu).toBeGreaterThanOrEqual(0);
    expect(elu).toBeLessThanOrEqual(1);
    expect(seen.get('process_open_fds')?.[0].v).toBeGreaterThan(2);
    expect(seen.get('process_max_fds')?.[0].v).toBeGreaterThan(100);
    expect((seen.get('process_cpu_seconds_total') ?? []).reduce((a, x) => a + x.v, 0)).toBeGreaterThan(0);
    expect(s.errors).toBe(0);
  });

  it('a sink that throws is counted, never thrown', () => {
    const bad: MetricsSink = {
      counter: () => ({ inc: () => { throw new Error('x'); } }),
      gauge: () => ({ set: () => { throw new Error('x'); } }),
      histogram: () => { throw new Error('no histograms'); },
    };
    const s = new SystemMetrics(bad, 60_000);
    expect(() => s.sample()).not.toThrow();
    s.close();
    expect(s.errors).toBeGreaterThan(0);
  });
});
