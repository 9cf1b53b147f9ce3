// Where a metric's values live, and how a recording reaches them: a few typed-array
// operations, no N-API call and no allocation once a label set is resolved
// (shared/DESIGN.md "Metrics on the hot path").
//
// ======================================= LAYOUT =======================================
// A Family (one metric) keeps its series in pages: each page is a Float64Array over its
// own SharedArrayBuffer holding PAGE_SERIES series of `stride` doubles. Series i lives in
// pages[i >>> PAGE_SHIFT] at offset (i & PAGE_MASK) * stride. Pages never move or grow,
// so a bound handle keeps (page, offset) for the life of the family.
//
//   counter, gauge   stride 1   [0] value
//   histogram        stride B+2 [0..B-1] count of observations in (bounds[i-1], bounds[i]]
//                               [B]     count above the last bound (+Inf bucket only; NaN too)
//                               [B+1]   sum of observations
//   (B = bounds.length; bucket counts are stored per bucket, made cumulative on read, and
//   the _count is their total, so `+Inf` bucket = `_count` holds in every read.)
//
// Threads: every slot has exactly one writer thread. A worker thread records into pages
// of its own (lib/metrics/worker.ts) that it shares with the main thread once per new
// series; the main thread adds them on read. Plain stores suffice: aligned 8-byte
// loads and stores do not tear on x86-64 or AArch64, and a reader that sees a bucket
// increment before the matching sum increment is off by one observation for one scrape.
// ======================================================================================
import { invalidArgument } from '../errors.js';
import type { MetricLabels } from '../internal/metrics-sink.js';
import type { MetricType } from './types.js';

export const PAGE_SHIFT = 7;
export const PAGE_SERIES = 1 << PAGE_SHIFT;
export const PAGE_MASK = PAGE_SERIES - 1;

/** The label value every label of the overflow series carries (a valid label value; the
 * `__` reservation applies to label names only). A recording that passes this value
 * itself lands in the overflow series too. */
export const OVERFLOW_VALUE = '__overflow__';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function checkMetricName(name: unknown, what: string): asserts name is string {
  if (typeof name !== 'string' || !METRIC_NAME.test(name)) {
    throw invalidArgument(`${what}: metric name must match [a-zA-Z_:][a-zA-Z0-9_:]*, got ${JSON.stringify(name)}`);
  }
}

export function checkLabelNames(names: unknown, type: MetricType, what: string): readonly string[] {
  if (names === undefined) return [];
  if (!Array.isArray(names)) throw invalidArgument(`${what}: labelNames must be an array of strings`);
  const seen = new Set<string>();
  for (const n of names) {
    if (typeof n !== 'string' || !LABEL_NAME.test(n)) throw invalidArgument(`${what}: label name must match [a-zA-Z_][a-zA-Z0-9_]*, got ${JSON.stringify(n)}`);
    if (n.startsWith('__')) throw invalidArgument(`${what}: label names starting with __ are reserved, got ${JSON.stringify(n)}`);
    if (type === 'histogram' && n === 'le') throw invalidArgument(`${what}: a histogram cannot have a label named le (its bucket label)`);
    if (seen.has(n)) throw invalidArgument(`${what}: label name ${JSON.stringify(n)} given twice`);
    seen.add(n);
  }
  return Object.freeze([...names] as string[]);
}

export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

export function checkBuckets(buckets: unknown, what: string): Float64Array {
  if (buckets === undefined) return Float64Array.from(DEFAULT_BUCKETS);
  if (!Array.isArray(buckets)) throw invalidArgument(`${what}: buckets must be an array of ascending finite numbers`);
  const list = buckets[buckets.length - 1] === Number.POSITIVE_INFINITY ? buckets.slice(0, -1) : buckets; // +Inf is implicit
  if (list.length > 1000) throw invalidArgument(`${what}: at most 1,000 buckets, got ${list.length}`);
  for (let i = 0; i < list.length; i++) {
    const b = list[i];
    if (typeof b !== 'number' || !Number.isFinite(b)) throw invalidArgument(`${what}: bucket bounds must be finite numbers, got ${String(b)}`);
    if (i > 0 && !(b > list[i - 1])) throw invalidArgument(`${what}: bucket bounds must be strictly ascending, got ${String(list[i - 1])} then ${String(b)}`);
  }
  return Float64Array.from(list as number[]);
}

/** Where a recording lands: a page and the offset of its series. */
export interface Slot {
  page: Float64Array;
  off: number;
}

export interface FamilyShape {
  name: string;
  type: MetricType;
  help: string;
  labelNames: readonly string[];
  bounds?: Float64Array;
}

/** Called when a recording folds into the overflow series (once per recording). */
export type FoldHook = (family: Family) => void;

export class Family {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly labelNames: readonly string[];
  /** Histogram upper bounds (without +Inf); empty for counters and gauges. */
  readonly bounds: Float64Array;
  readonly stride: number;
  readonly maxSeries: number;
  /** Label values per series, well-formed UTF-16 (lone surrogates replaced). */
  readonly labelValues: string[][] = [];
  readonly pages: Float64Array[] = [];
  /** Slots other threads record into, per series (lib/metrics/worker.ts); read as a sum. */
  readonly foreign: Slot[][] = [];
  /** Rendered `{a="x",b="y"` (no closing brace) per series, filled by the exposition. */
  readonly labelText: (string | undefined)[] = [];
  /** Called for every page this family allocates (worker threads share theirs). */
  onPage: ((index: number, page: Float64Array) => void) | undefined;
  /** Called for every series this family creates (worker threads announce theirs). */
  onSeries: ((index: number) => void) | undefined;
  readonly #keys = new Map<string, number>();
  readonly #fold: FoldHook;
  #overflow = -1;
  #count = 0;
  /** Whether the last resolve() folded a new label set into the overflow series. */
  lastFolded = false;

  constructor(shape: FamilyShape, maxSeries: number, fold: FoldHook) {
    this.name = shape.name;
    this.type = shape.type;
    this.help = shape.help;
    this.labelNames = shape.labelNames;
    this.bounds = shape.bounds ?? new Float64Array(0);
    this.stride = shape.type === 'histogram' ? this.bounds.length + 2 : 1;
    this.maxSeries = maxSeries;
    this.#fold = fold;
    if (this.labelNames.length === 0) this.#create([]);
  }

  get seriesCount(): number {
    return this.#count;
  }

  /** Same name, type, labels and buckets: creating it again returns the same instrument. */
  sameShape(s: FamilyShape): boolean {
    if (s.type !== this.type || s.labelNames.length !== this.labelNames.length) return false;
    for (let i = 0; i < s.labelNames.length; i++) if (s.labelNames[i] !== this.labelNames[i]) return false;
    const b = s.bounds ?? new Float64Array(0);
    if (b.length !== this.bounds.length) return false;
    for (let i = 0; i < b.length; i++) if (b[i] !== this.bounds[i]) return false;
    return true;
  }

  slot(i: number): Slot {
    return { page: this.pages[i >>> PAGE_SHIFT], off: (i & PAGE_MASK) * this.stride };
  }

  /**
   * The series index of a label set, created when new, or the overflow series when the
   * family is full (and then `fold` is called: the recording is counted as folded).
   * Throws ERR_INVALID_ARGUMENT when the labels are not exactly the label names.
   */
  resolve(labels: MetricLabels | undefined, what: string, countFold = true): number {
    this.lastFolded = false;
    const names = this.labelNames;
    const n = names.length;
    if (n === 0) {
      if (labels !== undefined && labels !== null) {
        if (typeof labels !== 'object') throw invalidArgument(`${what}: labels must be an object or undefined, got ${typeof labels}`);
        for (const k in labels) throw invalidArgument(`${what}: ${this.name} has no labels, got ${JSON.stringify(k)}`);
      }
      return 0;
    }
    if (labels === null || typeof labels !== 'object') throw invalidArgument(`${what}: ${this.name} needs labels ${names.join(', ')}`);
    let given = 0;
    for (const _k in labels) given++;
    if (given !== n) throw invalidArgument(`${what}: ${this.name} takes exactly the labels ${names.join(', ')}, got ${Object.keys(labels).join(', ') || 'none'}`);
    let key = '';
    const values = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      const v = (labels as Record<string, unknown>)[names[i]];
      let s: string;
      if (typeof v === 'string') s = v.isWellFormed() ? v : v.toWellFormed();
      else if (typeof v === 'number' && Number.isFinite(v)) s = String(v);
      else throw invalidArgument(`${what}: label ${names[i]} of ${this.name} must be a string or a finite number, got ${v === undefined ? 'nothing' : typeof v}`);
      values[i] = s;
      // Length-prefixed, so no value can make two label sets share a key.
      key += `${s.length}:${s}`;
    }
    return this.resolveValues(values, key, countFold);
  }

  /** resolve() for label values already checked (and made well-formed); `key` as resolve() builds it. */
  resolveValues(values: string[], key: string, countFold: boolean): number {
    const hit = this.#keys.get(key);
    if (hit !== undefined) return hit;
    let overflow = true;
    for (let i = 0; i < values.length; i++) if (values[i] !== OVERFLOW_VALUE) overflow = false;
    if (!overflow && this.#count < this.maxSeries - 1) {
      const i = this.#create(values);
      this.#keys.set(key, i);
      return i;
    }
    if (!overflow) {
      this.lastFolded = true;
      if (countFold) this.#fold(this);
    }
    return this.overflowIndex();
  }

  /** The series of exactly these label values, without creating it. */
  find(values: readonly string[]): number | undefined {
    return this.#keys.get(seriesKey(values)) ?? (this.labelNames.length === 0 ? 0 : undefined);
  }

  /** The overflow series, created on first use (it counts toward maxSeries). */
  overflowIndex(): number {
    if (this.#overflow < 0) {
      const values = this.labelNames.map(() => OVERFLOW_VALUE);
      this.#overflow = this.#create(values);
      this.#keys.set(seriesKey(values), this.#overflow);
    }
    return this.#overflow;
  }

  /** Whether `i` is the overflow series. */
  isOverflow(i: number): boolean {
    return i === this.#overflow;
  }

  #create(values: string[]): number {
    const i = this.#count;
    if ((i & PAGE_MASK) === 0) {
      const page = new Float64Array(new SharedArrayBuffer(PAGE_SERIES * this.stride * 8));
      this.pages.push(page);
      this.onPage?.(this.pages.length - 1, page);
    }
    this.labelValues.push(values);
    this.foreign.push([]);
    this.labelText.push(undefined);
    this.#count = i + 1;
    this.onSeries?.(i);
    return i;
  }

  /** Adds another thread's slot to series `i` (read as part of its sum). */
  addForeign(i: number, slot: Slot): void {
    this.foreign[i].push(slot);
  }

  /** Counter or gauge value of series `i`, this thread's and every other's. */
  value(i: number): number {
    const { page, off } = this.slot(i);
    let v = page[off];
    for (const f of this.foreign[i]) v += f.page[f.off];
    return v;
  }

  /** Histogram series `i`: per-bucket counts (non-cumulative, +Inf last) and the sum, into `out` (length B+2). */
  readHistogram(i: number, out: Float64Array): void {
    const { page, off } = this.slot(i);
    const w = this.stride;
    for (let k = 0; k < w; k++) out[k] = page[off + k];
    for (const f of this.foreign[i]) for (let k = 0; k < w; k++) out[k] += f.page[f.off + k];
  }
}

/** The map key of a label set: length-prefixed values, so no two sets share one. */
export function seriesKey(values: readonly string[]): string {
  let key = '';
  for (const s of values) key += `${s.length}:${s}`;
  return key;
}

// ------------------------------------------------------------------ bound handles
// One class per kind, monomorphic: the hot path is a type check, a store and (for the
// overflow series only) a call that counts the fold.

export class BoundCounter {
  readonly #page: Float64Array;
  readonly #off: number;
  readonly #folded: (() => void) | undefined;
  constructor(slot: Slot, folded: (() => void) | undefined) {
    this.#page = slot.page;
    this.#off = slot.off;
    this.#folded = folded;
  }
  inc(n?: number): void {
    if (n === undefined) n = 1;
    else if (typeof n !== 'number' || !(n >= 0) || n === Number.POSITIVE_INFINITY) throw badIncrement(n);
    this.#page[this.#off] += n;
    if (this.#folded !== undefined) this.#folded();
  }
}

export class BoundGauge {
  readonly #page: Float64Array;
  readonly #off: number;
  readonly #folded: (() => void) | undefined;
  constructor(slot: Slot, folded: (() => void) | undefined) {
    this.#page = slot.page;
    this.#off = slot.off;
    this.#folded = folded;
  }
  set(v: number): void {
    if (typeof v !== 'number') throw badGaugeValue(v);
    this.#page[this.#off] = v;
    if (this.#folded !== undefined) this.#folded();
  }
  inc(n?: number): void {
    if (n === undefined) n = 1;
    else if (typeof n !== 'number') throw badGaugeValue(n);
    this.#page[this.#off] += n;
    if (this.#folded !== undefined) this.#folded();
  }
  dec(n?: number): void {
    if (n === undefined) n = 1;
    else if (typeof n !== 'number') throw badGaugeValue(n);
    this.#page[this.#off] -= n;
    if (this.#folded !== undefined) this.#folded();
  }
}

export class BoundHistogram {
  readonly #page: Float64Array;
  readonly #off: number;
  readonly #bounds: Float64Array;
  readonly #folded: (() => void) | undefined;
  constructor(slot: Slot, bounds: Float64Array, folded: (() => void) | undefined) {
    this.#page = slot.page;
    this.#off = slot.off;
    this.#bounds = bounds;
    this.#folded = folded;
  }
  observe(v: number): void {
    if (typeof v !== 'number') throw badObservation(v);
    const b = this.#bounds;
    const nb = b.length;
    let i = 0;
    if (nb <= 16) {
      // NaN compares false with every bound, so it lands in +Inf (index nb).
      while (i < nb && !(v <= b[i])) i++;
    } else if (v === v) {
      let hi = nb;
      while (i < hi) {
        const mid = (i + hi) >>> 1;
        if (v <= b[mid]) hi = mid;
        else i = mid + 1;
      }
    } else {
      i = nb;
    }
    const p = this.#page;
    const o = this.#off;
    p[o + i]++;
    p[o + nb + 1] += v;
    if (this.#folded !== undefined) this.#folded();
  }
}

export function badIncrement(n: unknown): Error {
  return invalidArgument(`counter increment must be a finite number >= 0, got ${typeof n === 'number' ? String(n) : typeof n}`);
}

export function badGaugeValue(v: unknown): Error {
  return invalidArgument(`gauge value must be a number, got ${typeof v}`);
}

export function badObservation(v: unknown): Error {
  return invalidArgument(`histogram observation must be a number, got ${typeof v}`);
}
