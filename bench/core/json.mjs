// Top-level field extraction from 1 KiB JSON events: JSON.parse (the anchor, which
// builds the whole object) against myelin's simdjson extractor called from JS, one
// document per call and 256 per call.
import { native } from '../../dist/esm/internal/native.js';
import { consume, done, measure, scaled } from '../lib.mjs';

const enc = new TextEncoder();
const docs = [];
for (let i = 0; i < 1000; i++) {
  const base = {
    op: 'pub',
    subject: `tenant.${i % 97}.orders.created`,
    key: `user-${i}`,
    priority: ['low', 'normal', 'high', 'critical'][i % 4],
    headers: { 'trace-id': `${i}-abcdef0123456789`, source: 'bench' },
    data: { id: i, items: [] },
  };
  let s = JSON.stringify(base);
  while (s.length < 1000) {
    base.data.items.push({ sku: `SKU-${i}-${base.data.items.length}`, qty: i % 7, price: 12.5, note: 'lorem ipsum dolor' });
    s = JSON.stringify(base);
  }
  docs.push(s);
}
const bytes = docs.map((d) => enc.encode(d));
const totalBytes = bytes.reduce((a, b) => a + b.length, 0);
const avg = totalBytes / docs.length;
process.stderr.write(`  ${docs.length} events, ${avg.toFixed(0)} B average\n`);

const N = scaled(200_000);
const toMBs = (docsPerSec) => (docsPerSec * avg) / 1e6;

function mbResult(name, fn, n = N) {
  // measure() reports docs/s; convert to MB/s in the RESULT by re-emitting.
  const orig = console.log;
  let line;
  console.log = (s) => (line = s);
  measure(name, 'docs/s', n, fn);
  console.log = orig;
  const r = JSON.parse(line.slice('RESULT '.length));
  console.log(line);
  console.log(`RESULT ${JSON.stringify({ ...r, metric: 'MB/s', median: toMBs(r.median), min: toMBs(r.min), max: toMBs(r.max) })}`.replace(`"${name}"`, `"${name}.mbs"`));
}

mbResult('json.parse.1k', (n) => {
  let s = 0;
  for (let i = 0; i < n; i++) s += JSON.parse(docs[i % 1000]).subject.length;
  consume(s);
});

const { JsonExtractor } = native();
const x = new JsonExtractor(['subject', 'key', 'priority']);
const out = new Uint32Array(9);
mbResult('json.extract.1k.js', (n) => {
  let s = 0;
  for (let i = 0; i < n; i++) {
    x.extract(bytes[i % 1000], out);
    s += out[1];
  }
  consume(s);
});

// 256 documents per crossing, packed in one buffer.
const batch = 256;
const packed = [];
for (let b = 0; b < 1000; b += batch) {
  const slice = bytes.slice(b, b + batch);
  const len = slice.reduce((a, d) => a + d.length, 0);
  const buf = new Uint8Array(len);
  const offsets = new Uint32Array(slice.length);
  const lengths = new Uint32Array(slice.length);
  let at = 0;
  slice.forEach((d, i) => {
    buf.set(d, at);
    offsets[i] = at;
    lengths[i] = d.length;
    at += d.length;
  });
  packed.push({ buf, offsets, lengths, out: new Uint32Array(slice.length * 9), statuses: new Int32Array(slice.length) });
}
mbResult('json.extract.1k.js.batch', (n) => {
  let s = 0;
  let d = 0;
  for (let i = 0; d < n; i++) {
    const p = packed[i % packed.length];
    s += x.extractBatch(p.buf, p.offsets, p.lengths, p.out, p.statuses);
    d += p.offsets.length;
  }
  consume(s);
});
done();
