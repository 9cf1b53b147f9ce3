// 1,000 patterns `tenant.<i>.orders.*` plus `tenant.*.audit.>`: myelin's Bus against
// EventEmitter2 with wildcards (its `*` and `**` are the same idea as `*` and `>`).
import EventEmitter2 from 'eventemitter2';
import { Bus } from '../../dist/esm/index.js';
import { consume, done, measure, measureAsync, scaled } from '../lib.mjs';

const N = scaled(1_000_000);
const subjects = [];
for (let i = 0; i < 4096; i++) subjects.push(i % 4 === 0 ? `tenant.${i % 1000}.audit.login.ok` : `tenant.${(i * 7) % 1000}.orders.created`);

{
  const ee = new EventEmitter2.EventEmitter2({ wildcard: true, delimiter: '.', maxListeners: 0 });
  let hits = 0;
  for (let i = 0; i < 1000; i++) ee.on(`tenant.${i}.orders.*`, () => hits++);
  ee.on('tenant.*.audit.**', () => hits++);
  measure('bus.wildcard.eventemitter2', 'events/s', N, (n) => {
    for (let i = 0; i < n; i++) ee.emit(subjects[i & 4095], { id: i });
  });
  consume(hits);
}
{
  const bus = new Bus({ capacity: 1 << 20 });
  let hits = 0;
  for (let i = 0; i < 1000; i++) bus.subscribe(`tenant.${i}.orders.*`, () => void hits++);
  bus.subscribe('tenant.*.audit.>', () => void hits++);
  await measureAsync('bus.wildcard.myelin', 'events/s', N, async (n) => {
    for (let i = 0; i < n; i++) {
      const s = subjects[i & 4095];
      const p = { id: i };
      if (!bus.publish(s, p)) await bus.publishAsync(s, p);
    }
    await bus.drain();
  });
  consume(hits);
  await bus.close();
}
done();
