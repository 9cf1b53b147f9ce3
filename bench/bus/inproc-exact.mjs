// In-process, exact subject, one subscriber, a fresh small object per event: myelin's
// Bus (queued, prioritised, counted) against synchronous emit in eventemitter3 and
// node:events.
import { EventEmitter } from 'node:events';
import EE3 from 'eventemitter3';
import { Bus } from '../../dist/esm/index.js';
import { consume, done, measure, measureAsync, scaled } from '../lib.mjs';

const N = scaled(5_000_000);
// Every handler keeps the last event it saw, as a real handler keeps or forwards what
// it receives; without that, V8 can scalar-replace the event object in a synchronous
// emit and the anchor stops measuring an event bus.
let last;

{
  const ee = new EE3();
  let sum = 0;
  ee.on('orders.created', (d) => {
    last = d;
    sum += d.qty;
  });
  measure('bus.inproc.ee3', 'events/s', N, (n) => {
    for (let i = 0; i < n; i++) ee.emit('orders.created', { id: i, kind: 'order', qty: 2 });
  });
  consume(sum);
}
{
  const ee = new EventEmitter();
  let sum = 0;
  ee.on('orders.created', (d) => {
    last = d;
    sum += d.qty;
  });
  measure('bus.inproc.node_events', 'events/s', N, (n) => {
    for (let i = 0; i < n; i++) ee.emit('orders.created', { id: i, kind: 'order', qty: 2 });
  });
  consume(sum);
}
{
  const bus = new Bus({ capacity: 1 << 20 });
  let sum = 0;
  bus.subscribe('orders.created', (ev) => {
    last = ev;
    sum += ev.data.qty;
  });
  await measureAsync('bus.inproc.myelin', 'events/s', N, async (n) => {
    for (let i = 0; i < n; i++) {
      const p = { id: i, kind: 'order', qty: 2 };
      if (!bus.publish('orders.created', p)) await bus.publishAsync('orders.created', p);
    }
    await bus.drain();
  });
  consume(sum);
  await bus.close();
}
consume(last ? 1 : 0);
done();

