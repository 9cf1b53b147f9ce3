// The delivery round's run loop (lib/bus/bus.ts #deliverRun): consecutive plain events
// of one route to one idle plain subscription go through one tight loop. These tests
// change the subscription's state from inside that loop, which is where it could go
// wrong: a throw, a promise, an unsubscribe, a re-entrant publish, a kept event.
import { describe, expect, it } from 'vitest';
import { Bus, type BusEvent } from '../lib/index.js';
import { addsUp } from './helpers.js';

const N = 1000;

function publishAll(bus: Bus, n = N, subject = 'a.b'): void {
  for (let i = 0; i < n; i++) expect(bus.publish(subject, i)).toBe(true);
}

describe('bus run loop', () => {
  it('hands every handler its own event object, in order, with its fields', async () => {
    const bus = new Bus();
    const seen: BusEvent[] = [];
    bus.subscribe('a.b', (ev) => {
      seen.push(ev);
    });
    publishAll(bus);
    await bus.drain();
    expect(seen.map((e) => e.data)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(new Set(seen).size).toBe(N); // no object reused: handlers may keep events
    expect(new Set(seen.map((e) => e.id)).size).toBe(N);
    for (const e of seen) expect(e).toMatchObject({ subject: 'a.b', priority: 'normal', key: undefined, headers: undefined });
    expect(bus.stats()).toMatchObject({ published: N, delivered: N, failed: 0, queued: 0, inFlight: 0 });
    expect(bus.stats().latencyUs.count).toBe(N);
    await bus.close();
  });

  it('a handler that throws mid-run fails that event only and the run goes on', async () => {
    const bus = new Bus();
    const seen: number[] = [];
    const dead: unknown[] = [];
    bus.subscribe('a.b', (ev) => {
      seen.push(ev.data as number);
      if ((ev.data as number) % 10 === 3) throw new Error(`bad ${String(ev.data)}`);
    });
    bus.subscribe('$DLQ.a.b', (ev) => {
      dead.push((ev.data as { event: { data: unknown } }).event.data);
    });
    publishAll(bus);
    await bus.drain();
    expect(seen).toHaveLength(N);
    expect(dead).toEqual(seen.filter((v) => v % 10 === 3));
    const s = bus.stats();
    expect(s.failed).toBe(N / 10);
    expect(s.published).toBe(N + N / 10); // each failure published a dead letter...
    expect(s.delivered).toBe(N - N / 10 + N / 10); // ...delivered to the $DLQ subscriber
    addsUp(bus);
    await bus.close();
  });

  it('a handler that goes async mid-run holds the rest behind it (concurrency 1, in order)', async () => {
    const bus = new Bus();
    const order: string[] = [];
    bus.subscribe('a.b', (ev) => {
      const v = ev.data as number;
      order.push(`start ${v}`);
      if (v === 5) {
        return new Promise<void>((resolve) =>
          setTimeout(() => {
            order.push('end 5');
            resolve();
          }, 5),
        );
      }
      return undefined;
    });
    publishAll(bus, 10);
    await bus.drain();
    expect(order).toEqual([...[0, 1, 2, 3, 4, 5].map((v) => `start ${v}`), 'end 5', ...[6, 7, 8, 9].map((v) => `start ${v}`)]);
    expect(bus.stats()).toMatchObject({ delivered: 10, inFlight: 0 });
    await bus.close();
  });

  it('a handler that returns a value mid-run is delivered, and the run goes on', async () => {
    const bus = new Bus();
    let n = 0;
    bus.subscribe('a.b', (ev) => {
      n++;
      return ev.data; // not a reply (no request), still a settled sync delivery
    });
    publishAll(bus);
    await bus.drain();
    expect(n).toBe(N);
    expect(bus.stats()).toMatchObject({ delivered: N, inFlight: 0, failed: 0 });
    await bus.close();
  });

  it('an unsubscribe mid-run stops deliveries there; the rest count as dropped', async () => {
    const bus = new Bus();
    let n = 0;
    const sub = bus.subscribe('a.b', () => {
      if (++n === 100) sub.unsubscribe();
    });
    publishAll(bus);
    await bus.drain();
    expect(n).toBe(100);
    expect(bus.stats()).toMatchObject({ published: N, delivered: 100, dropped: N - 100, unrouted: N - 100 });
    addsUp(bus);
    await bus.close();
  });

  it('a re-entrant publish to the same subject is delivered after what was queued, in order', async () => {
    const bus = new Bus();
    const seen: unknown[] = [];
    bus.subscribe('a.b', (ev) => {
      seen.push(ev.data);
      if (typeof ev.data === 'number' && ev.data < 3) bus.publish('a.b', `again ${ev.data}`);
    });
    publishAll(bus, 5);
    await bus.drain();
    expect(seen).toEqual([0, 1, 2, 3, 4, 'again 0', 'again 1', 'again 2']);
    addsUp(bus);
    await bus.close();
  });

  it('a run ends at an event of another route, with headers or a key, each delivered as usual', async () => {
    const bus = new Bus();
    const seen: string[] = [];
    bus.subscribe('a.b', (ev) => {
      seen.push(`${String(ev.data)}${ev.headers ? '+h' : ''}${ev.key ? `@${ev.key}` : ''}`);
    });
    bus.subscribe('c.d', (ev) => {
      seen.push(`c${String(ev.data)}`);
    });
    bus.publish('a.b', 0);
    bus.publish('a.b', 1, { headers: { x: 'y' } });
    bus.publish('a.b', 2);
    bus.publish('c.d', 3);
    bus.publish('a.b', 4, { key: 'k' });
    bus.publish('a.b', 5, { key: 'k' });
    bus.publish('a.b', 6);
    await bus.drain();
    expect(seen).toEqual(['0', '1+h', '2', 'c3', '4@k', '5@k', '6']);
    expect(bus.stats()).toMatchObject({ published: 7, delivered: 7 });
    await bus.close();
  });

  it('stats() read inside a handler is off by at most the event in hand', async () => {
    const bus = new Bus();
    const gaps: number[] = [];
    bus.subscribe('a.b', () => {
      const s = bus.stats();
      gaps.push(s.published - (s.delivered + s.dropped + s.failed + s.queued + s.inFlight));
    });
    publishAll(bus, 200);
    await bus.drain();
    expect(new Set(gaps)).toEqual(new Set([1]));
    addsUp(bus);
    await bus.close();
  });
});
