// bus.shed(priority, on): the shed-load lever of the metrics layer's alert actions.
import { describe, expect, it } from 'vitest';
import { Bus } from '../lib/bus/bus.js';
import { addsUp, expectCode, expectRejectCode } from './helpers.js';

describe('Bus.shed', () => {
  it('drops new events of the shed lane and below, counted, while higher lanes flow', async () => {
    const bus = new Bus();
    const got: string[] = [];
    bus.subscribe('s.>', (ev) => {
      got.push(`${ev.priority}:${ev.data as number}`);
    });
    bus.shed('normal', true);
    expect(bus.publish('s.a', 1, { priority: 'low' })).toBe(true);
    expect(bus.publish('s.a', 2, { priority: 'normal' })).toBe(true);
    expect(bus.publish('s.a', 3, { priority: 'high' })).toBe(true);
    expect(bus.publish('s.a', 4, { priority: 'critical' })).toBe(true);
    await bus.drain();
    expect(got.sort()).toEqual(['critical:4', 'high:3']);
    let st = bus.stats();
    expect(st.shed).toBe(2);
    expect(st.dropped).toBe(2);
    expect(st.lanes.low.dropped).toBe(1);
    expect(st.lanes.normal.dropped).toBe(1);
    addsUp(bus);
    bus.shed('normal', false);
    bus.shed('low', true);
    bus.publish('s.a', 5, { priority: 'normal' });
    bus.publish('s.a', 6, { priority: 'low' });
    await bus.drain();
    expect(got).toContain('normal:5');
    expect(got).not.toContain('low:6');
    bus.shed('low', false);
    bus.publish('s.a', 7, { priority: 'low' });
    await bus.drain();
    expect(got).toContain('low:7');
    st = bus.stats();
    expect(st.shed).toBe(3);
    addsUp(bus);
    await bus.close();
  });

  it('a request on a shed lane fails fast with ERR_BUS_FULL', async () => {
    const bus = new Bus();
    bus.subscribe('math.add', (ev) => (ev.data as { a: number }).a + 1);
    bus.shed('low', true);
    await expectRejectCode(bus.request('math.add', { a: 1 }, { priority: 'low', timeoutMs: 5000 }), 'ERR_BUS_FULL');
    expect(await bus.request('math.add', { a: 1 }, { timeoutMs: 5000 })).toBe(2);
    await bus.close();
  });

  it('bad arguments throw ERR_INVALID_ARGUMENT', async () => {
    const bus = new Bus();
    expectCode(() => bus.shed('critical' as 'low', true), 'ERR_INVALID_ARGUMENT');
    expectCode(() => bus.shed('nope' as 'low', true), 'ERR_INVALID_ARGUMENT');
    expectCode(() => bus.shed('low', 1 as unknown as boolean), 'ERR_INVALID_ARGUMENT');
    await bus.close();
  });
});
