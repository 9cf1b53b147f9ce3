// Recording into a native HDR histogram from JS without an N-API call per value: the
// thread takes one exclusive shard (a Float64Array over native memory, released by a
// finalizer) and writes the layout that native/src/hist/histogram.h draws at its top:
//   [0] count  [1] sum  [2] min (starts +Inf)  [3] max (starts 0)  [4 + i] counts[i]
// The native side merges every shard on read (snapshot()). One writer per shard, so
// plain stores suffice; the reader tolerates a torn view across fields (never within
// one 8-byte value).
//
// Where the addon cannot load (ERR_NATIVE_UNAVAILABLE), createLocalHistogram() gives a
// pure-JS histogram with the same shard layout, counts and percentiles, so that a
// recorder (the AIClient's overhead) works unchanged; it cannot be shared across threads.
import { MyelinError, invalidArgument } from '../errors.js';
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

/** A bus's stats().latencyUs: the histogram's nanoseconds as microseconds; zeros once it is closing (its memory may be gone). */
export function latencyUs(hist: Pick<NativeHistogram, 'snapshot'>, closing: boolean): { p50: number; p99: number; p999: number; max: number; count: number } {
  if (closing) return { p50: 0, p99: 0, p999: 0, max: 0, count: 0 };
  const s = hist.snapshot();
  return { p50: s.p50 / 1000, p99: s.p99 / 1000, p999: s.p999 / 1000, max: s.max / 1000, count: s.count };
}

/** What a recorder needs of a histogram: a shard of its own, and a merged read. */
export type ShardedHistogram = Pick<NativeHistogram, 'acquireShard' | 'releaseShard' | 'snapshot'>;

export class HistogramRecorder {
  readonly #hist: ShardedHistogram;
  #shard: Float64Array;

  constructor(hist: ShardedHistogram) {
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

/** The highest value that maps to counts index `i`; HighestEquivalent() in histogram.h. */
function highestEquivalent(i: number): number {
  const bucketPlusOne = i >>> HistLayout.SUB_BUCKET_HALF_COUNT_MAGNITUDE;
  if (bucketPlusOne === 0) return i;
  const bucket = bucketPlusOne - 1;
  const lowest = ((i & 1023) + 1024) * 2 ** bucket;
  return lowest + 2 ** bucket - 1;
}

/** The next double toward 0 (C's nextafter(p, 0) for p > 0). */
function oneUlpDown(p: number): number {
  const f = new Float64Array([p]);
  new BigInt64Array(f.buffer)[0] -= 1n;
  return f[0];
}

/**
 * The pure-JS stand-in for the native histogram, for one thread: shards are plain
 * Float64Arrays in the native layout, a released shard's counts are kept, and
 * snapshot() merges them with the native percentile rule (HdrHistogram's: the highest
 * value equivalent to the first index whose cumulative count reaches p% of the count,
 * clamped to max).
 */
export class JsHistogram implements ShardedHistogram {
  readonly #live = new Set<Float64Array>();
  readonly #released = JsHistogram.#emptyShard();

  static #emptyShard(): Float64Array {
    const s = new Float64Array(HistLayout.SHARD_DOUBLES);
    s[2] = Number.POSITIVE_INFINITY;
    return s;
  }

  acquireShard(): Float64Array {
    const s = JsHistogram.#emptyShard();
    this.#live.add(s);
    return s;
  }

  releaseShard(shard: Float64Array): void {
    if (!this.#live.delete(shard)) return;
    JsHistogram.#merge(this.#released, shard);
  }

  snapshot(): NativeHistogramSnapshot {
    const m = JsHistogram.#emptyShard();
    JsHistogram.#merge(m, this.#released);
    for (const s of this.#live) JsHistogram.#merge(m, s);
    let count = 0;
    for (let i = 4; i < m.length; i++) count += m[i];
    const max = m[3];
    const at = (p: number): number => {
      if (count === 0) return 0;
      const target = Math.min(count, Math.max(1, Math.ceil((oneUlpDown(p) / 100) * count)));
      let seen = 0;
      for (let i = 0; i < HistLayout.COUNTS_LEN; i++) {
        seen += m[4 + i];
        if (seen >= target) return Math.min(highestEquivalent(i), max);
      }
      return max;
    };
    // `mean` as the native snapshot also gives it (histogram_wrap.cc), though its type omits it.
    const snap: NativeHistogramSnapshot & { mean: number } = {
      count,
      sum: m[1],
      min: count === 0 ? 0 : m[2],
      max: count === 0 ? 0 : max,
      mean: count === 0 ? 0 : m[1] / count,
      p50: at(50),
      p90: at(90),
      p99: at(99),
      p999: at(99.9),
    };
    return snap;
  }

  static #merge(into: Float64Array, from: Float64Array): void {
    into[0] += from[0];
    into[1] += from[1];
    if (from[2] < into[2]) into[2] = from[2];
    if (from[3] > into[3]) into[3] = from[3];
    for (let i = 4; i < from.length; i++) if (from[i] !== 0) into[i] += from[i];
  }
}

/**
 * A histogram recorded and read in this thread only: the native one when the addon
 * loads, else (ERR_NATIVE_UNAVAILABLE) a JsHistogram. Any other failure is thrown.
 */
export function createLocalHistogram(): ShardedHistogram {
  try {
    return createHistogram();
  } catch (err) {
    if (err instanceof MyelinError && err.code === 'ERR_NATIVE_UNAVAILABLE') return new JsHistogram();
    throw err;
  }
}
