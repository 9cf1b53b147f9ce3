// The bus's built-in series beyond stats() (lib/bus/bus-metrics.ts, issue 10): the stage
// histograms, the per-prefix families, worker utilisation and restarts, against a sink
// that records every call; and a sink that throws everywhere.
import { describe, expect, it } from 'vitest';
import { Bus } from '../lib/index.js';
import type { CounterHandle, GaugeHandle, HistogramHandle, MetricLabels, MetricOptions, MetricsSink } from '../lib/internal/metrics-sink.js';
import { STAGE_SAMPLE_EVERY as EVERY } from '../lib/bus/bus-metrics.js';
import { addsUp } from './helpers.js';

const busyHandler = new URL('./fixtures/busy-handler.mjs', import.meta.url);

class RecordingSink implements MetricsSink {
  readonly values = new Map<string, number>();
  readonly observed: Array<{ name: string; labels: MetricLabels | undefined; v: number }> = [];
  readonly options = new Map<string, MetricOptions>();
  #key(name: string, labels?: MetricLabels): string {
    return labels ? `${name}${JSON.stringify(labels)}` : name;
  }
  counter(name: string, o: MetricOptions): CounterHandle {
    this.options.set(name, o);
    return { inc: (labels, n = 1) => void this.values.set(this.#key(name, labels), (this.values.get(this.#key(name, labels)) ?? 0) + n) };
  }
  gauge(name: string, o: MetricOptions): GaugeHandle {
    this.options.set(name, o);
    return { set: (labels, v) => void this.values.set(this.#key(name, labels), v) };
  }
  histogram(name: string, o: MetricOptions): HistogramHandle {
    this.options.set(name, o);
    return { observe: (labels, v) => void this.observed.push({ name, labels, v }) };
  }
  stage(stage: string): number[] {
    return this.observed.filter((o) => o.name === 'bus_stage_seconds' && o.labels?.stage === stage).map((o) => o.v);
  }
}

function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/** Resolves once `check()` is true, polling every 20 ms (the flush runs every second). */
async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('bus stage histograms', () => {
  it('time one delivery in EVERY: queue, dispatch and a sync handler no shorter than it runs', async () => {
    const sink = new RecordingSink();
    const bus = new Bus({ metrics: sink });
    bus.subscribe('s.sync', () => spin(1));
    for (let i = 0; i < EVERY * 3; i++) bus.publish('s.sync', i);
    await bus.drain();
    await bus.close(); // the last flush
    const handler = sink.stage('handler');
    expect(handler).toHaveLength(3);
    for (const v of handler) {
      expect(v).toBeGreaterThanOrEqual(0.001);
      expect(v).toBeLessThan(10);
    }
    // a round is cut at its first 64-event time check past 1 ms, so with 1 ms handlers
    // each round is 64 events and a timed one (EVERY is a multiple of 64) is the last
    // of its round: it waited behind 63 handlers of >= 1 ms
    const dispatch = sink.stage('dispatch');
    expect(dispatch).toHaveLength(3);
    for (const v of dispatch) expect(v).toBeGreaterThanOrEqual(63 * 0.001);
    const queue = sink.stage('queue');
    expect(queue).toHaveLength(3);
    for (const v of [...queue, ...dispatch]) expect(Number.isFinite(v) && v >= 0 && v < 10).toBe(true);
    expect(sink.options.get('bus_stage_seconds')?.labelNames).toEqual(['stage']);
  });

  it("an async handler's stage lasts until its promise settles", async () => {
    const sink = new RecordingSink();
    const bus = new Bus({ metrics: sink });
    bus.subscribe('s.async', () => new Promise<void>((r) => setTimeout(r, 5)));
    for (let i = 0; i < EVERY; i++) {
      bus.publish('s.async', i);
      await bus.drain();
    }
    await bus.close();
    const handler = sink.stage('handler');
    expect(handler).toHaveLength(1);
    expect(handler[0]).toBeGreaterThanOrEqual(0.004); // a 5 ms timer; allow the clock's grain
  });

  it('times deliveries off the run loop too: headers, two subscribers, a busy async one', async () => {
    const sink = new RecordingSink();
    const bus = new Bus({ metrics: sink });
    bus.subscribe('h.x', () => spin(1));
    bus.subscribe('two.x', () => spin(1));
    bus.subscribe('two.x', () => {});
    for (let i = 0; i < EVERY; i++) bus.publish('h.x', i, { headers: { a: 'b' } });
    for (let i = 0; i < EVERY; i++) bus.publish('two.x', i);
    // concurrency 1, all at once: the first starts in the round, the rest wait and start
    // from settlements, where nothing is timed; none is timed with a parked start of ~0
    bus.subscribe('busy.x', () => new Promise<void>((r) => setTimeout(r, 1)));
    for (let i = 0; i < EVERY; i++) bus.publish('busy.x', i);
    await bus.drain();
    await bus.close();
    const handler = sink.stage('handler');
    expect(handler.length).toBeGreaterThanOrEqual(2);
    for (const v of handler) expect(v).toBeGreaterThanOrEqual(0.001);
    expect(sink.stage('queue')).toHaveLength(handler.length);
    expect(sink.stage('dispatch')).toHaveLength(handler.length);
  });

  it('times fewer deliveries when they come fast (the stride adapts), but some', async () => {
    const sink = new RecordingSink();
    const bus = new Bus({ metrics: sink, capacity: 1 << 17 });
    let n = 0;
    bus.subscribe('fast.x', () => void n++);
    const N = 100_000;
    for (let i = 0; i < N; i++) bus.publish('fast.x', i);
    await bus.drain();
    await bus.close();
    expect(n).toBe(N);
    const timed = sink.stage('handler').length;
    expect(timed).toBeGreaterThan(0);
    // at 1 in EVERY it would be 781; events ~microseconds apart double the stride at
    // each timed one (while they come under 0.25 ms apart)
    expect(timed).toBeLessThan(N / EVERY / 4);
  });

  it('without a sink, nothing is timed (no stage work on the delivery path)', async () => {
    const bus = new Bus();
    let n = 0;
    bus.subscribe('s.none', () => void n++);
    for (let i = 0; i < 200; i++) bus.publish('s.none', i);
    await bus.drain();
    expect(n).toBe(200);
    await bus.close();
  });
});

describe('bus per-prefix series', () => {
  it('bounds the prefixes at 32, folds the rest into "other", and adds up to the totals', async () => {
    const sink = new RecordingSink();
    const bus = new Bus({ metrics: sink });
    bus.subscribe('>', (ev) => {
      if (ev.data === 'fail') throw new Error('no');
    });
    for (let t = 0; t < 40; t++) {
      bus.publish(`t${t}.x`, 1);
      bus.publish(`t${t}.y.z`, 2);
    }
    bus.publish('t0.x', 'fail');
    await bus.drain();
    await bus.close();
    const pub = [...sink.values].filter(([k]) => k.startsWith('bus_prefix_events_published_total'));
    expect(pub).toHaveLength(33); // 32 tokens and "other"
    const v = (prefix: string) => sink.values.get(`bus_prefix_events_published_total{"subject_prefix":"${prefix}"}`);
    expect(v('t0')).toBe(3);
    expect(v('t31')).toBe(2);
    expect(v('t32')).toBeUndefined();
    expect(v('other')).toBe(8 * 2 + 1); // t32..t39, and '$DLQ' (t0's dead letter), the 41st token
    const total = pub.reduce((a, [, n]) => a + n, 0);
    expect(total).toBe(bus.stats().published);
    expect(sink.values.get('bus_prefix_deliveries_failed_total{"subject_prefix":"t0"}')).toBe(1);
    expect(sink.values.get('bus_events_published_total{"priority":"normal"}')).toBe(bus.stats().published); // the old family is unchanged
  });

  it('counts drops and unrouted events by prefix', async () => {
    const sink = new RecordingSink();
    const bus = new Bus({ metrics: sink, capacity: 2, overflow: 'drop-newest' });
    bus.subscribe('a.>', () => {});
    for (let i = 0; i < 5; i++) bus.publish('a.b', i);
    bus.publish('nobody.here', 1);
    await bus.drain();
    await bus.close();
    const d = (p: string) => sink.values.get(`bus_prefix_events_dropped_total{"subject_prefix":"${p}"}`);
    expect(d('a')).toBe(3);
    expect(d('nobody')).toBe(1);
    addsUp(bus);
  });
});

describe('bus worker pool series', () => {
  it('utilisation stays in [0, 1] and rises with a busy worker', async () => {
    const sink = new RecordingSink();
    const bus = new Bus({ metrics: sink });
    await bus.workers(busyHandler, { threads: 1, subjects: 'busy.>' });
    const util = () => sink.values.get('bus_worker_utilization_ratio{"pool":"0"}');
    await until(() => util() !== undefined, 'an idle utilisation'); // two flushes
    const idle = util() as number;
    expect(idle).toBeGreaterThanOrEqual(0);
    expect(idle).toBeLessThan(0.5);
    // keep the thread busy (20 ms per event) until a flush has seen it
    let busy = 0;
    const feed = setInterval(() => {
      for (let i = 0; i < 5; i++) bus.publish('busy.spin', 20);
    }, 50);
    try {
      await until(() => {
        busy = util() as number;
        return busy > 0.5;
      }, 'a busy utilisation');
    } finally {
      clearInterval(feed);
    }
    expect(busy).toBeLessThanOrEqual(1);
    await bus.close();
  });

  it('counts a worker that exits and is replaced as a restart', async () => {
    const sink = new RecordingSink();
    const bus = new Bus({ metrics: sink });
    bus.subscribe('$DLQ.>', () => {});
    const pool = await bus.workers(busyHandler, { threads: 1, subjects: 'busy.>' });
    bus.publish('busy.exit', 0);
    await bus.drain();
    await until(() => pool.stats().restarts === 1, 'the restart');
    await bus.close(); // the last flush
    expect(sink.values.get('bus_worker_restarts_total{"pool":"0"}')).toBe(1);
  });
});

describe('a sink that throws', () => {
  it('never breaks the bus: every call throws, deliveries, workers and close still work', async () => {
    let calls = 0;
    const boom = () => {
      calls++;
      throw new Error('sink down');
    };
    const sink: MetricsSink = {
      counter: () => ({ inc: boom }),
      gauge: () => ({ set: boom }),
      histogram: () => ({ observe: boom }),
    };
    const bus = new Bus({ metrics: sink });
    let n = 0;
    bus.subscribe('x.sync', () => void n++);
    bus.subscribe('x.async', async () => void n++);
    await bus.workers(busyHandler, { threads: 1, subjects: 'busy.>' });
    for (let i = 0; i < 300; i++) {
      bus.publish('x.sync', i);
      bus.publish('x.async', i);
      bus.publish('busy.spin', 0);
    }
    await bus.drain();
    await new Promise((r) => setTimeout(r, 1100)); // a timer flush, which throws inside
    await bus.close();
    expect(n).toBe(600);
    expect(calls).toBeGreaterThan(0);
    expect(bus.stats()).toMatchObject({ delivered: 900, failed: 0 });
  });

  it('never breaks the bus when the factories throw', async () => {
    const boom = () => {
      throw new Error('no instruments');
    };
    const bus = new Bus({ metrics: { counter: boom, gauge: boom, histogram: boom } as unknown as MetricsSink });
    let n = 0;
    bus.subscribe('y.x', () => void n++);
    for (let i = 0; i < 200; i++) bus.publish('y.x', i);
    await bus.drain();
    await bus.close();
    expect(n).toBe(200);
  });
});
