// The JS side of the SPSC ring (native/src/queue/spsc_ring.h): the same protocol over
// the same SharedArrayBuffer, so a JS thread can produce to or consume from a ring a
// native thread or another JS thread uses, with no N-API call per item. Items are u64,
// handled here as (lo, hi) u32 pairs to stay clear of BigInt on the hot path.
//
// Waking: JS cannot wake a native thread parked on a futex (V8's Atomics.notify does
// not use the OS futex), so after publishing, a JS side that sees a parked native peer
// calls `wakePeer` (one N-API call, only when someone sleeps).
import { invalidArgument } from '../errors.js';
import { RingLayout as L } from './ring-layout.js';

export function ringBytes(capacity: number): number {
  checkCapacity(capacity);
  return L.HEADER_BYTES + capacity * 8;
}

function checkCapacity(capacity: number): void {
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > L.MAX_CAPACITY || (capacity & (capacity - 1)) !== 0) {
    throw invalidArgument(`ring capacity must be a power of two from 1 to 2^30, got ${String(capacity)}`);
  }
}

export class SpscRingView {
  readonly capacity: number;
  readonly buffer: SharedArrayBuffer;
  readonly #i32: Int32Array;
  readonly #slots: Uint32Array;
  readonly #mask: number;
  readonly #wakePeer: (() => void) | undefined;
  #cachedOther = 0;

  /** Maps a ring in `buffer`; with init, writes a fresh header (the buffer must be zeroed). */
  constructor(buffer: SharedArrayBuffer, capacity: number, init: boolean, wakePeer?: () => void) {
    checkCapacity(capacity);
    if (!(buffer instanceof SharedArrayBuffer)) throw invalidArgument('ring buffer must be a SharedArrayBuffer');
    if (buffer.byteLength < ringBytes(capacity)) {
      throw invalidArgument(`ring buffer needs ${ringBytes(capacity)} bytes, got ${buffer.byteLength}`);
    }
    this.buffer = buffer;
    this.capacity = capacity;
    this.#mask = capacity - 1;
    this.#i32 = new Int32Array(buffer, 0, L.HEADER_BYTES / 4);
    this.#slots = new Uint32Array(buffer, L.HEADER_BYTES, capacity * 2);
    this.#wakePeer = wakePeer;
    if (init) {
      Atomics.store(this.#i32, L.MAGIC, L.MAGIC_VALUE);
      Atomics.store(this.#i32, L.CAPACITY, capacity);
      Atomics.store(this.#i32, L.ITEM_SIZE, 8);
    } else if (
      Atomics.load(this.#i32, L.MAGIC) !== L.MAGIC_VALUE ||
      Atomics.load(this.#i32, L.CAPACITY) !== capacity ||
      Atomics.load(this.#i32, L.ITEM_SIZE) !== 8
    ) {
      throw invalidArgument('buffer does not hold a u64 ring of this capacity');
    }
  }

  size(): number {
    return (Atomics.load(this.#i32, L.WRITE) - Atomics.load(this.#i32, L.READ)) >>> 0;
  }

  get closed(): boolean {
    return Atomics.load(this.#i32, L.CLOSED) !== 0;
  }

  /** Producer: copies up to n (lo, hi) pairs from src; returns how many fit. */
  pushPairs(src: Uint32Array, n = src.length >>> 1): number {
    const i32 = this.#i32;
    const w = Atomics.load(i32, L.WRITE) >>> 0;
    let free = this.capacity - ((w - this.#cachedOther) >>> 0);
    if (free < n) {
      this.#cachedOther = Atomics.load(i32, L.READ) >>> 0;
      free = this.capacity - ((w - this.#cachedOther) >>> 0);
      if (free === 0) return 0;
    }
    const k = n < free ? n : free;
    const slots = this.#slots;
    const mask = this.#mask;
    for (let i = 0; i < k; i++) {
      const at = ((w + i) & mask) << 1;
      slots[at] = src[i << 1];
      slots[at + 1] = src[(i << 1) + 1];
    }
    Atomics.store(i32, L.WRITE, (w + k) | 0);
    // An RMW, mirroring EventCount::NotifyAll: orders the publish before the check.
    if (Atomics.add(i32, L.NOT_EMPTY_WAITERS, 0) !== 0) this.#wake(L.NOT_EMPTY_SEQ);
    return k;
  }

  /** Consumer: copies up to max pairs into dst; returns how many. */
  popPairs(dst: Uint32Array, max = dst.length >>> 1): number {
    const i32 = this.#i32;
    const r = Atomics.load(i32, L.READ) >>> 0;
    let avail = (this.#cachedOther - r) >>> 0;
    if (avail < max) {
      this.#cachedOther = Atomics.load(i32, L.WRITE) >>> 0;
      avail = (this.#cachedOther - r) >>> 0;
      if (avail === 0) return 0;
    }
    const k = max < avail ? max : avail;
    const slots = this.#slots;
    const mask = this.#mask;
    for (let i = 0; i < k; i++) {
      const at = ((r + i) & mask) << 1;
      dst[i << 1] = slots[at];
      dst[(i << 1) + 1] = slots[at + 1];
    }
    Atomics.store(i32, L.READ, (r + k) | 0);
    if (Atomics.add(i32, L.NOT_FULL_WAITERS, 0) !== 0) this.#wake(L.NOT_FULL_SEQ);
    return k;
  }

  /** Marks the ring closed (the producer will push no more). */
  markClosed(): void {
    Atomics.store(this.#i32, L.CLOSED, 1);
    this.#wake(L.NOT_EMPTY_SEQ);
    this.#wake(L.NOT_FULL_SEQ);
  }

  #wake(seqIndex: number): void {
    Atomics.add(this.#i32, seqIndex, 1);
    Atomics.notify(this.#i32, seqIndex); // JS waiters
    this.#wakePeer?.(); // native waiters sleep on the OS futex
  }
}
