import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { HistLayout, HistogramRecorder, countsIndex, createHistogram } from '../lib/internal/histogram.js';
import { native } from '../lib/internal/native.js';
import { expectCode } from './helpers.js';
import { testAddon, testAddonPath, type TestHistogram } from './native-test-build.js';

const addon = native();

/** A histogram of the test build, which has recordNative (the shipping addon does not). */
function createTestHistogram(): TestHistogram {
  return new (testAddon().Histogram)();
}

describe('Histogram binding and JS recorder', () => {
  it('mirrors the native layout', () => {
    const l = addon.histogramLayout;
    expect(l.subBucketHalfCountMagnitude).toBe(HistLayout.SUB_BUCKET_HALF_COUNT_MAGNITUDE);
    expect(l.subBucketCount).toBe(HistLayout.SUB_BUCKET_COUNT);
    expect(l.bucketCount).toBe(HistLayout.BUCKET_COUNT);
    expect(l.countsLen).toBe(HistLayout.COUNTS_LEN);
    expect(l.shardDoubles).toBe(HistLayout.SHARD_DOUBLES);
    expect(l.highestTrackable).toBe(HistLayout.HIGHEST_TRACKABLE);
  });

  it('computes the same bucket as native code for values across the whole range', () => {
    // Record each probe once natively and once from JS into two histograms; every
    // percentile must agree, which holds only if both sides picked the same index.
    const probes = [0, 1, 2, 1023, 1024, 2047, 2048, 2049, 4095, 4096, 123_456, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 12345, 3_600_000_000_000];
    for (const v of probes) {
      const a = createTestHistogram();
      const b = createHistogram();
      a.recordNative(v);
      const rec = new HistogramRecorder(b);
      rec.record(v);
      const sa = a.snapshot();
      const sb = b.snapshot();
      expect(sb.p50, `value ${v}`).toBe(sa.p50);
      expect(sb.max).toBe(sa.max);
      expect(sb.count).toBe(1);
      rec.close();
    }
    // Index math bounds: monotonic and inside the counts array.
    let last = -1;
    for (let v = 0; v < 1e13; v = v < 4096 ? v + 1 : Math.floor(v * 1.01)) {
      const i = countsIndex(Math.min(v, HistLayout.HIGHEST_TRACKABLE));
      expect(i).toBeGreaterThanOrEqual(last);
      expect(i).toBeLessThan(HistLayout.COUNTS_LEN);
      last = i;
    }
  });

  it('reports percentiles within 0.1% on a known distribution', () => {
    const h = createHistogram();
    const rec = new HistogramRecorder(h);
    for (let v = 1; v <= 100_000; v++) rec.record(v);
    const s = h.snapshot();
    expect(s.count).toBe(100_000);
    expect(s.min).toBe(1);
    expect(s.max).toBe(100_000);
    expect(s.sum).toBe((100_000 * 100_001) / 2);
    expect(Math.abs(s.p50 - 50_000) / 50_000).toBeLessThan(0.001);
    expect(Math.abs(s.p99 - 99_000) / 99_000).toBeLessThan(0.001);
    expect(h.valueAtPercentile(100)).toBe(100_000);
    expectCode(() => h.valueAtPercentile(101), 'ERR_INVALID_ARGUMENT');
    h.reset();
    expect(h.snapshot().count).toBe(0);
  });

  it('merges native threads, JS shards and workers on read', async () => {
    const h = createTestHistogram();
    h.recordNative(500, 100_000, 4);
    const rec = new HistogramRecorder(h);
    for (let i = 0; i < 1000; i++) rec.record(7);
    // The worker loads the same build: histogram ids are per shared object.
    const w = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const a = require(workerData.addonPath);
       const h = a.Histogram.attach(workerData.id);
       const s = h.acquireShard();
       for (let i = 0; i < 2500; i++) { s[4 + 9]++; s[0]++; s[1] += 9; s[2] = Math.min(s[2], 9); s[3] = Math.max(s[3], 9); }
       h.releaseShard(s);
       parentPort.postMessage('done');`,
      { eval: true, workerData: { addonPath: testAddonPath, id: h.id } },
    );
    await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await w.terminate();
    const s = h.snapshot();
    expect(s.count).toBe(400_000 + 1000 + 2500);
    expect(s.min).toBe(7);
    expect(s.max).toBe(500);
    expect(s.sum).toBe(400_000 * 500 + 7000 + 2500 * 9);
  });

  it('rejects bad values and bad ids, and hands out at most 64 shards', () => {
    const h = createHistogram();
    const rec = new HistogramRecorder(h);
    expectCode(() => rec.record(-1), 'ERR_INVALID_ARGUMENT');
    expectCode(() => rec.record(NaN), 'ERR_INVALID_ARGUMENT');
    rec.record(Infinity); // clamps to 1 h
    expect(h.snapshot().max).toBe(HistLayout.HIGHEST_TRACKABLE);
    const t = createTestHistogram();
    expectCode(() => t.recordNative(-5), 'ERR_INVALID_ARGUMENT');
    expectCode(() => t.recordNative(NaN), 'ERR_INVALID_ARGUMENT');
    expectCode(() => t.recordNative(1, 1, 65), 'ERR_INVALID_ARGUMENT');
    t.close();
    expectCode(() => addon.Histogram.attach(987_654), 'ERR_NOT_FOUND');
    const shards: Float64Array[] = [];
    try {
      for (;;) shards.push(h.acquireShard());
    } catch (err) {
      expect((err as { code: string }).code).toBe('ERR_FULL');
    }
    expect(shards.length).toBe(63); // the recorder above holds one
    for (const s of shards) h.releaseShard(s);
    h.releaseShard(shards[0]); // twice: nothing happens
    expect(shards[0].length).toBe(0); // detached
    h.close();
    expectCode(() => h.snapshot(), 'ERR_CLOSED');
  });
});
