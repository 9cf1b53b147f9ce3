// Recording into a native HDR histogram from JS without an N-API call per value: the
// thread takes one exclusive shard (a Float64Array over native memory, released by a
// finalizer) and writes the layout that native/src/hist/histogram.h draws at its top:
//   [0] count  [1] sum  [2] min (starts +Inf)  [3] max (starts 0)  [4 + i] counts[i]
// The native side merges every shard on read (snapshot()). One writer per shard, so
// plain stores suffice; the reader tolerates a torn view across fields (never within
// one 8-byte value).
import { invalidArgument } from '../errors.js';
import { native, type NativeHistogram, type NativeHistogramSnapshot } from './native.js';

/** Mirrors native/src/hist/histogram.h; test/histogram.test.ts checks they agree. */
export const HistLayout = {
  SUB_BUCKET_HALF_COUNT_MAGNITUDE: 10,
  SUB_BUCKET_COUNT: 2048,
  BUCKET_COUNT: 32,
  COUNTS_LEN: 33 * 1024,
  SHARD_DOUBLES: 4 + 33 * 1024,
  HIGHEST_TRACKABLE: 3_600_000_000_000,
} as const;

const HIGHEST = HistLayout.HIGHEST_TRACKABLE;
const TWO32 = 4294967296;

/** The counts index of an integer value in [0, HIGHEST]; the same math as CountsIndex(). */
export function countsIndex(v: number): number {
  if (v < 2048) return v;
  if (v < 2147483648) {
    const b = 21 - Math.clz32(v); // floor(log2 v) - 10
    return (b << 10) + (v >>> b);
  }
  const log2 = v < TWO32 ? 31 : 63 - Math.clz32(Math.floor(v / TWO32));
  const b = log2 - 10;
  return b * 1024 + Math.floor(v / 2 ** b);
}

export class HistogramRecorder {
  readonly #hist: NativeHistogram;
  #shard: Float64Array;

  constructor(hist: NativeHistogram) {
    this.#hist = hist;
    this.#shard = hist.acquireShard();
  }

  /** Records a value in nanoseconds (fractions truncated; above 1 h clamps to 1 h). */
  record(value: number): void {
    if (!(value >= 0)) throw invalidArgument(`histogram value must be a non-negative number, got ${String(value)}`);
    this.recordTrusted(value);
  }

  /** record() without the argument check, for callers whose values are known
   * non-negative finite numbers (the bus's own latencies). */
  recordTrusted(value: number): void {
    const v = value > HIGHEST ? HIGHEST : Math.floor(value);
    const s = this.#shard;
    // Field order is part of the contract: count, sum, min, max, then the bucket
    // (a concurrent reader scans only buckets between min's and max's index).
    s[0]++;
    s[1] += v;
    if (v < s[2]) s[2] = v;
    if (v > s[3]) s[3] = v;
    s[4 + countsIndex(v)]++;
  }

  snapshot(): NativeHistogramSnapshot {
    return this.#hist.snapshot();
  }

  /** Gives the shard back; records after close() are discarded. */
  close(): void {
    this.#hist.releaseShard(this.#shard);
    this.#shard = new Float64Array(0);
  }
}

/** A histogram shared by every thread that attaches to its id. */
export function createHistogram(): NativeHistogram {
  return new (native().Histogram)();
}
