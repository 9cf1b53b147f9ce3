// Recording cost, 2 labels: a myelin histogram observe and counter inc through a
// pre-bound handle against prom-client's labelled observe and child inc (anchors,
// same process, same values).
import client from 'prom-client';
import { Metrics } from '../../dist/esm/index.js';
import { consume, done, measure, scaled } from '../lib.mjs';

const N = scaled(5_000_000);
const values = new Float64Array(4096);
for (let i = 0; i < values.length; i++) values[i] = (200 + ((i * 7919) % 50_000)) / 1e6;
const labels = { method: 'GET', status: '200' };

const m = new Metrics({ system: false });
const h = m.histogram('bench_latency_seconds', { help: 'x', labelNames: ['method', 'status'] }).bind(labels);
measure('metrics.observe.bound', 'ns/op', N, (n) => {
  for (let i = 0; i < n; i++) h.observe(values[i & 4095]);
});
const hu = m.histogram('bench_latency_seconds', { help: 'x', labelNames: ['method', 'status'] });
measure('metrics.observe.labels', 'ns/op', scaled(1_000_000), (n) => {
  for (let i = 0; i < n; i++) hu.observe(labels, values[i & 4095]);
});
const c = m.counter('bench_requests_total', { help: 'x', labelNames: ['method', 'status'] }).bind(labels);
measure('metrics.inc.bound', 'ns/op', N, (n) => {
  for (let i = 0; i < n; i++) c.inc();
});
consume(m.value('myelin_bench_requests_total'));

const registry = new client.Registry();
const ph = new client.Histogram({ name: 'bench_latency', help: 'x', labelNames: ['method', 'status'], registers: [registry] });
measure('promclient.observe.2labels', 'ns/op', scaled(1_000_000), (n) => {
  for (let i = 0; i < n; i++) ph.observe(labels, values[i & 4095]);
});
const pc = new client.Counter({ name: 'bench_requests_total', help: 'x', labelNames: ['method', 'status'], registers: [registry] }).labels(labels);
measure('promclient.inc.child', 'ns/op', scaled(2_000_000), (n) => {
  for (let i = 0; i < n; i++) pc.inc();
});
consume((await registry.metrics()).length);
m.close();
done();
