// Rules of the bus that a review found broken: atomic batches, what answers a
// request, the metrics option, refusals that are counted, dead letters under a full
// lane, and the publish time of the first event after an idle spell.
import { describe, expect, it } from 'vitest';
import { Bus, MyelinError } from '../lib/index.js';
import type { CounterHandle, GaugeHandle, HistogramHandle, MetricLabels, MetricOptions, MetricsSink } from '../lib/internal/metrics-sink.js';
import { addsUp, expectCode, expectRejectCode } from './helpers.js';


describe('publishBatch is all or nothing on bad input', () => {
  const bad: Array<[string, Record<string, unknown>]> = [
    ['priority', { priority: 'urgent' }],
    ['key', { key: 7 }],
    ['headers', { headers: { trace: 1 } }],
    ['subject', { subject: 'a..b' }],
    ['unknown option', { prio: 'low' }],
  ];
  it.each(bad)('a bad %s in the last item enqueues nothing', async (_what, fields) => {
    const bus = new Bus();
    const got: unknown[] = [];
    bus.subscribe('batch.>', (ev) => void got.push(ev.data));
    const items = [
      { subject: 'batch.a', data: 1 },
      { subject: 'batch.b', data: 2, priority: 'high' as const },
      { subject: 'batch.c', data: 3, ...fields },
    ];
    expectCode(() => bus.publishBatch(items as never), 'ERR_INVALID_ARGUMENT');
    await bus.drain();
    expect(got).toEqual([]);
    expect(bus.stats().published).toBe(0);
    await bus.close();
  });

  it("under 'reject' a batch that does not fit throws ERR_BUS_FULL before enqueuing any", async () => {
    const bus = new Bus({ capacity: 4, overflow: 'reject' });
    bus.subscribe('batch.>', () => {});
    bus.publish('batch.x', 0, { key: 'k' });
    bus.publish('batch.x', 0);
    // 3 more fit in 'normal'; the key of the high item keeps it in 'normal' behind its
    // predecessor, so 'normal' would need 4.
    const items = [
      { subject: 'batch.a', data: 1 },
      { subject: 'batch.b', data: 2 },
      { subject: 'batch.c', data: 3, key: 'k', priority: 'high' as const },
    ];
    const err = expectCode(() => bus.publishBatch(items), 'ERR_BUS_FULL');
    expect(err.message).toMatch(/nothing was enqueued/);
    expect(bus.stats().published).toBe(2);
    expect(bus.stats().refused).toBe(1);
    expect(bus.publishBatch(items.slice(0, 2))).toBe(2); // exactly fits
    await bus.drain();
    addsUp(bus);
    await bus.close();
  });

  it("under 'wait' it stops at the first item that finds its lane full and counts the rest refused", async () => {
    const bus = new Bus({ capacity: 3, overflow: 'wait' });
    const got: number[] = [];
    bus.subscribe('batch.n', (ev) => void got.push(ev.data as number));
    const items = [1, 2, 3, 4, 5].map((data) => ({ subject: 'batch.n', data, priority: data === 4 ? ('high' as const) : undefined }));
    // 1, 2, 3 fill 'normal', 4 goes to the empty 'high' lane, 5 is the first refused.
    expect(bus.publishBatch(items)).toBe(4);
    expect(bus.stats().refused).toBe(1);
    await bus.drain();
    expect(got.sort()).toEqual([1, 2, 3, 4]);
    await bus.close();
  });
});

describe('what answers a request', () => {
  it('a subscriber that returns undefined is not a reply', async () => {
    const bus = new Bus();
    const logged: string[] = [];
    bus.subscribe('>', (ev) => void logged.push(ev.subject)); // a logger: returns nothing
    bus.subscribe('svc.echo', async (ev) => {
      await new Promise((r) => setImmediate(r));
      return { echo: ev.data };
    });
    expect(await bus.request('svc.echo', 'hi')).toEqual({ echo: 'hi' });
    expect(logged).toContain('svc.echo');
    await bus.close();
  });

  it('the first value other than undefined wins, whichever handler gives it', async () => {
    const bus = new Bus();
    bus.subscribe('svc.*', () => undefined);
    bus.subscribe('svc.pick', () => null); // null is a reply
    bus.subscribe('svc.pick', () => 'late');
    expect(await bus.request('svc.pick', 1)).toBeNull();
    await bus.close();
  });

  it('resolves with undefined only once every handler finished without a reply', async () => {
    const bus = new Bus();
    let finished = 0;
    bus.subscribe('svc.quiet', () => void finished++);
    bus.subscribe('svc.quiet', async () => {
      await new Promise((r) => setTimeout(r, 20));
      finished++;
    });
    await expect(bus.request('svc.quiet', 1)).resolves.toBeUndefined();
    expect(finished).toBe(2);
    await bus.close();
  });

  it('a failing handler does not hide another one\'s reply; with no reply the failure rejects', async () => {
    const bus = new Bus();
    bus.subscribe('svc.mixed', () => {
      throw new Error('logger broke');
    });
    bus.subscribe('svc.mixed', async () => 'answer');
    expect(await bus.request('svc.mixed', 1)).toBe('answer');
    bus.subscribe('svc.broken', () => {
      throw new Error('nope');
    });
    bus.subscribe('svc.broken', () => undefined);
    const err = await expectRejectCode(bus.request('svc.broken', 1), 'ERR_HANDLER_FAILED');
    expect((err.cause as Error).message).toBe('nope');
    await bus.close();
  });

  it('counts a queue group as one handler', async () => {
    const bus = new Bus();
    bus.subscribe('svc.q', () => 'a', { queue: 'g' });
    bus.subscribe('svc.q', () => 'b', { queue: 'g' });
    bus.subscribe('svc.q', () => undefined);
    expect(['a', 'b']).toContain(await bus.request('svc.q', 1));
    await bus.close();
  });
});

/** A MetricsSink that keeps what it was given, as a backend would. */
class MemorySink implements MetricsSink {
  readonly values = new Map<string, number>();
  readonly names: string[] = [];
  #key(name: string, labels?: MetricLabels): string {
    return labels ? `${name}${JSON.stringify(labels)}` : name;
  }
  counter(name: string, _o: MetricOptions): CounterHandle {
    this.names.push(name);
    return { inc: (labels, n = 1) => void this.values.set(this.#key(name, labels), (this.values.get(this.#key(name, labels)) ?? 0) + n) };
  }
  gauge(name: string, _o: MetricOptions): GaugeHandle {
    this.names.push(name);
    return { set: (labels, v) => void this.values.set(this.#key(name, labels), v) };
  }
  histogram(name: string, _o: MetricOptions): HistogramHandle {
    this.names.push(name);
    return { observe: () => {} };
  }
}

describe('the metrics option', () => {
  it('records the bus counters, queue depths and latency into the sink', async () => {
    const sink = new MemorySink();
    const bus = new Bus({ metrics: sink, capacity: 2, overflow: 'wait' });
    bus.subscribe('m.ok', () => {});
    bus.subscribe('m.fail', () => {
      throw new Error('x');
    });
    for (let i = 0; i < 2; i++) bus.publish('m.ok', i, { priority: 'high' });
    bus.publish('m.fail', 1);
    bus.publish('m.nobody', 1);
    expect(bus.publish('m.ok', 1, { priority: 'high' })).toBe(false); // refused: 'high' is full
    await bus.drain();
    await bus.close(); // the last flush
    const s = bus.stats();
    const v = (k: string) => sink.values.get(k) ?? 0;
    expect(v('bus_events_published_total{"priority":"high"}')).toBe(2);
    expect(v('bus_events_published_total{"priority":"normal"}')).toBe(s.published - 2);
    expect(v('bus_events_delivered_total')).toBe(s.delivered);
    expect(v('bus_events_failed_total')).toBe(1);
    expect(v('bus_events_unrouted_total')).toBe(s.unrouted);
    expect(v('bus_events_dropped_total{"priority":"normal"}')).toBe(s.dropped);
    expect(v('bus_publish_refused_total')).toBe(1);
    expect(v('bus_events_in_flight')).toBe(0);
    expect(v('bus_events_queued{"priority":"normal"}')).toBe(0);
    expect(sink.names).toContain('bus_latency_seconds');
  });

  it('keeps working when the sink throws', async () => {
    const sink: MetricsSink = {
      counter: () => ({ inc: () => { throw new Error('sink down'); } }),
      gauge: () => { throw new Error('no gauges'); },
      histogram: () => ({ observe: () => {} }),
    };
    const bus = new Bus({ metrics: sink });
    let n = 0;
    bus.subscribe('m.x', () => void n++);
    bus.publish('m.x', 1);
    await bus.drain();
    await bus.close();
    expect(n).toBe(1);
  });
});

describe('refusals and dead letters', () => {
  it("a dead letter that finds its lane full under 'reject' is counted, and delivery goes on", async () => {
    const bus = new Bus({ capacity: 2, overflow: 'reject' });
    let ok = 0;
    bus.subscribe('d.fail', () => {
      bus.publish('d.ok', 2); // the lane is full again when this handler throws
      throw new Error('boom');
    });
    bus.subscribe('d.ok', () => void ok++);
    bus.publish('d.fail', 1);
    bus.publish('d.ok', 1);
    // The dead letter is refused with ERR_BUS_FULL, which must not escape the delivery
    // loop (it would be an uncaught exception), and is counted.
    await bus.drain();
    const s = bus.stats();
    expect(ok).toBe(2);
    expect(s.failed).toBe(1);
    expect(s.refused).toBe(1);
    addsUp(bus);
    await bus.close();
  });

  it("publish under 'wait' counts each refusal, publishAsync's waits are not refusals", async () => {
    const bus = new Bus({ capacity: 1, overflow: 'wait' });
    bus.subscribe('r.x', () => {});
    expect(bus.publish('r.x', 1)).toBe(true);
    expect(bus.publish('r.x', 2)).toBe(false);
    await bus.publishAsync('r.x', 3);
    await bus.drain();
    expect(bus.stats().refused).toBe(1);
    await bus.close();
  });

  it('publishAsync rejects with ERR_BUS_CLOSED when the bus closes while it waits', async () => {
    const bus = new Bus({ capacity: 1, overflow: 'wait' });
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    bus.subscribe('r.slow', () => gate);
    bus.publish('r.slow', 1); // taken by the handler, which waits at the gate
    await new Promise((r) => setImmediate(r));
    bus.publish('r.slow', 2); // fills the lane
    const waiting = bus.publishAsync('r.slow', 3);
    const closing = bus.close();
    await expectRejectCode(waiting, 'ERR_BUS_CLOSED');
    open();
    await closing;
    expect(bus.stats().published).toBe(2);
  });
});

describe('publish time', () => {
  it('the first publish after an idle spell is stamped now, not at the last delivery round', async () => {
    const bus = new Bus();
    const times: number[] = [];
    bus.subscribe('t.x', (ev) => void times.push(ev.time));
    bus.publish('t.x', 1);
    await bus.drain();
    await new Promise((r) => setTimeout(r, 50));
    const before = performance.timeOrigin + performance.now();
    bus.publish('t.x', 2);
    await bus.drain();
    expect(times[1]).toBeGreaterThanOrEqual(before);
    await bus.close();
  });
});

describe('delivery rounds', () => {
  it('delivers after the publisher\'s turn, and async handlers publishing to each other cannot starve timers', async () => {
    const bus = new Bus();
    const got: number[] = [];
    bus.subscribe('turn', (ev) => void got.push(ev.data as number));
    bus.publish('turn', 1);
    expect(got).toEqual([]); // never synchronously inside publish
    await Promise.resolve();
    await Promise.resolve();
    expect(got).toEqual([1]); // an idle bus delivers at the end of the publisher's turn
    let stop = false;
    let volleys = 0;
    bus.subscribe('ping', async () => {
      await null;
      volleys++;
      if (!stop) bus.publish('pong', 1);
    });
    bus.subscribe('pong', async () => {
      await null;
      if (!stop) bus.publish('ping', 1);
    });
    bus.publish('ping', 1);
    // Each volley is published after an await, outside any round: if every one got a
    // microtask round, this timer would never fire.
    await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await bus.drain();
    expect(volleys).toBeGreaterThan(64);
    await bus.close();
  });

  it('a round ends after about 1 ms, and the weighted cycle resumes where it stopped (no starvation)', async () => {
    const bus = new Bus();
    const order: string[] = [];
    let rounds = 0;
    let lastTurn = -1;
    let turn = 0;
    const ticker = setInterval(() => turn++, 0); // counts event-loop turns between rounds
    bus.subscribe('slow', (ev) => {
      if (turn !== lastTurn) {
        rounds++;
        lastTurn = turn;
      }
      order.push(ev.priority);
      const until = performance.now() + 0.05; // 50 us of work per event
      while (performance.now() < until);
    });
    for (let i = 0; i < 2000; i++) bus.publish('slow', i, { priority: 'critical' });
    for (let i = 0; i < 64; i++) bus.publish('slow', i, { priority: 'low' });
    await bus.drain();
    clearInterval(ticker);
    // 2,064 events of 50 us are ~100 ms of work: many rounds, not one of 16,384 events.
    expect(rounds).toBeGreaterThan(10);
    // low's 64 are served after the first 512 critical, not after all 2,000.
    expect(order.indexOf('low')).toBe(512);
    expect(order.lastIndexOf('critical')).toBeGreaterThan(512 + 64);
    await bus.close();
  });
});
