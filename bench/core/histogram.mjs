// Recording a latency from JS: myelin's native histogram (a JS-written shard, no N-API
// call per value) against prom-client's labelled Histogram.observe and Node's
// perf_hooks histogram.
import { createHistogram as nodeHistogram } from 'node:perf_hooks';
import client from 'prom-client';
import { HistogramRecorder, createHistogram } from '../../dist/esm/internal/histogram.js';
import { consume, done, measure, scaled } from '../lib.mjs';

const N = scaled(5_000_000);
const values = new Float64Array(4096);
for (let i = 0; i < values.length; i++) values[i] = 200 + ((i * 7919) % 50_000);

const hist = createHistogram();
const rec = new HistogramRecorder(hist);
measure('hist.record.js', 'ns/op', N, (n) => {
  for (let i = 0; i < n; i++) rec.record(values[i & 4095]);
});
consume(hist.snapshot().count);

const registry = new client.Registry();
const prom = new client.Histogram({ name: 'bench_latency', help: 'x', labelNames: ['method', 'status'], registers: [registry] });
const labels = { method: 'GET', status: '200' };
measure('promclient.observe.2labels', 'ns/op', scaled(1_000_000), (n) => {
  for (let i = 0; i < n; i++) prom.observe(labels, values[i & 4095] / 1e9);
});
consume((await registry.metrics()).length);

const nh = nodeHistogram();
measure('perf_hooks.record', 'ns/op', N, (n) => {
  for (let i = 0; i < n; i++) nh.record(values[i & 4095]);
});
consume(nh.count);
done();
