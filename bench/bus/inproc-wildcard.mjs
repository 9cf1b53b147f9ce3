// 1,000 patterns `tenant.<i>.orders.*` plus `tenant.*.audit.>`: myelin's Bus against
// EventEmitter2 with wildcards (its `*` and `**` are the same idea as `*` and `>`).
import EventEmitter2 from 'eventemitter2';
import { Bus } from '../../dist/esm/index.js';
import { consume, done, measure, measureAsync, scaled } from '../lib.mjs';

const N = scaled(1_000_000);
let last; // handlers keep the last event, as in inproc-exact.mjs
const subjects = [];
for (let i = 0; i < 4096; i++) subjects.push(i % 4 === 0 ? `tenant.${i % 1000}.audit.login.ok` : `tenant.${(i * 7) % 1000}.orders.created`);

{
  const ee = new EventEmitter2.EventEmitter2({ wildcard: true, delimiter: '.', maxListeners: 0 });
  let hits = 0;
  for (let i = 0; i < 1000; i++) ee.on(`tenant.${i}.orders.*`, (d) => ((last = d), hits++));
  ee.on('tenant.*.audit.**', (d) => ((last = d), hits++));
  measure('bus.wildcard.eventemitter2', 'events/s', N, (n) => {
    for (let i = 0; i < n; i++) ee.emit(subjects[i & 4095], { id: i });
  });
  consume(hits);
}
{
  const bus = new Bus({ capacity: 1 << 20 });
  let hits = 0;
  for (let i = 0; i < 1000; i++) bus.subscribe(`tenant.${i}.orders.*`, (ev) => void ((last = ev), hits++));
  bus.subscribe('tenant.*.audit.>', (ev) => void ((last = ev), hits++));
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
consume(last ? 1 : 0);
done();
