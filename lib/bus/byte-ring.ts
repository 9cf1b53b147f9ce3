// A single-producer single-consumer ring of variable-length byte records in a
// SharedArrayBuffer, for JS threads on both ends (the main thread and a worker pool
// thread). One crossing per batch: the producer writes records and publishes the
// write index once; the consumer reads everything available and publishes the read
// index once; a sleeping side is woken with Atomics.notify only when it said it sleeps.
//
// Layout (Int32Array indices; x4 for bytes, so each group sits on its own line):
//   [0]   WRITE    bytes written (u32, wraps)         producer's line
//   [16]  READ     bytes consumed (u32, wraps)        consumer's line
//   [32]  DATA_SEQ bumped by the producer to wake a sleeping consumer
//   [33]  CONSUMER_SLEEPING
//   [48]  ROOM_SEQ bumped by the consumer to wake a producer waiting for room
//   [49]  PRODUCER_WAITING
//   [64]  DONE     records the consumer has finished (u32, wraps); its own line
//   [80]  CLOSED
//   [88]  BUSY     milliseconds the consumer spent handling records (u32, wraps; the
//                  worker's utilisation, read by the pool at metrics flushes)
//   byte 384: records: [u32 length][body, padded to 8 bytes]; 0xffffffff = wrap to 0
export const RING_HEADER_BYTES = 384;
export const R = {
  WRITE: 0,
  READ: 16,
  DATA_SEQ: 32,
  CONSUMER_SLEEPING: 33,
  ROOM_SEQ: 48,
  PRODUCER_WAITING: 49,
  DONE: 64,
  CLOSED: 80,
  BUSY: 88,
} as const;
const WRAP = 0xffffffff;

export class ByteRing {
  readonly sab: SharedArrayBuffer;
  readonly capacity: number; // bytes of record space, power of two
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
  readonly view: DataView;
  readonly buf: Buffer;
  readonly #mask: number;
  /** Producer: our write offset (not yet published while a batch is open). */
  #w: number;
  /** Consumer: our read offset. */
  #r: number;
  #cachedRead = 0;
  #cachedWrite = 0;

  static create(capacity: number): ByteRing {
    if (!Number.isInteger(capacity) || capacity < 1024 || (capacity & (capacity - 1)) !== 0 || capacity > 2 ** 30) {
      throw new RangeError(`ring capacity must be a power of two from 1 KiB to 1 GiB, got ${capacity}`);
    }
    return new ByteRing(new SharedArrayBuffer(RING_HEADER_BYTES + capacity));
  }

  constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.capacity = sab.byteLength - RING_HEADER_BYTES;
    this.#mask = this.capacity - 1;
    this.i32 = new Int32Array(sab, 0, RING_HEADER_BYTES / 4);
    this.u8 = new Uint8Array(sab, RING_HEADER_BYTES, this.capacity);
    this.view = new DataView(sab, RING_HEADER_BYTES, this.capacity);
    this.buf = Buffer.from(sab, RING_HEADER_BYTES, this.capacity);
    this.#w = Atomics.load(this.i32, R.WRITE) >>> 0;
    this.#r = Atomics.load(this.i32, R.READ) >>> 0;
  }

  /** Largest record body that can ever fit. */
  get maxRecord(): number {
    return (this.capacity >>> 1) - 8;
  }

  // ------------------------------------------------------------------ producer

  /**
   * Reserves room for a record body of `bytes` and returns the body's byte offset in
   * u8/view/buf, or -1 when the ring is full now. The record becomes visible at commit().
   */
  reserve(bytes: number): number {
    const need = 4 + bytes;
    const padded = (need + 7) & ~7;
    const w = this.#w;
    const off = w & this.#mask;
    const tail = this.capacity - off;
    const total = padded <= tail ? padded : tail + padded; // wrap marker skips the tail
    if (((this.#w - this.#cachedRead) >>> 0) + total > this.capacity) {
      this.#cachedRead = Atomics.load(this.i32, R.READ) >>> 0;
      if (((this.#w - this.#cachedRead) >>> 0) + total > this.capacity) return -1;
    }
    let at = off;
    if (padded > tail) {
      this.view.setUint32(off, WRAP, true);
      this.#w = (this.#w + tail) >>> 0;
      at = 0;
    }
    this.view.setUint32(at, bytes, true);
    this.#w = (this.#w + padded) >>> 0;
    return at + 4;
  }

  /** Publishes every record reserved so far without waking the consumer (wake() or commit() does). */
  publish(): void {
    Atomics.store(this.i32, R.WRITE, this.#w | 0);
  }

  /** Publishes every record reserved since the last commit; wakes a sleeping consumer. */
  commit(): void {
    Atomics.store(this.i32, R.WRITE, this.#w | 0);
    if (Atomics.load(this.i32, R.CONSUMER_SLEEPING) !== 0) {
      Atomics.add(this.i32, R.DATA_SEQ, 1);
      Atomics.notify(this.i32, R.DATA_SEQ);
    }
  }

  /** Bytes the consumer has not read yet (from the producer's view). */
  get used(): number {
    return (this.#w - (Atomics.load(this.i32, R.READ) >>> 0)) >>> 0;
  }

  // ------------------------------------------------------------------ consumer

  /** Offset of the next record body and its length, or -1 when none is published. */
  next(): number {
    let r = this.#r;
    if (r === this.#cachedWrite) {
      this.#cachedWrite = Atomics.load(this.i32, R.WRITE) >>> 0;
      if (r === this.#cachedWrite) return -1;
    }
    let off = r & this.#mask;
    let len = this.view.getUint32(off, true);
    if (len === WRAP) {
      r = (r + (this.capacity - off)) >>> 0;
      this.#r = r;
      off = 0;
      len = this.view.getUint32(0, true);
    }
    this.#len = len;
    return off + 4;
  }

  #len = 0;
  /** Length of the body next() returned. */
  get length(): number {
    return this.#len;
  }

  /** Consumes the record next() returned (not yet published to the producer). */
  advance(): void {
    this.#r = (this.#r + ((4 + this.#len + 7) & ~7)) >>> 0;
  }

  /** Publishes the read position; wakes a producer waiting for room. */
  release(): void {
    Atomics.store(this.i32, R.READ, this.#r | 0);
    if (Atomics.load(this.i32, R.PRODUCER_WAITING) !== 0) {
      Atomics.add(this.i32, R.ROOM_SEQ, 1);
      Atomics.notify(this.i32, R.ROOM_SEQ);
    }
  }

  /**
   * Consumer: resolves when data may be available (or the ring closed, or woken by
   * wake()). Announces sleep, re-checks, then waits asynchronously so the thread's
   * event loop keeps running.
   */
  async waitForData(more?: () => boolean): Promise<void> {
    const i32 = this.i32;
    const seq = Atomics.load(i32, R.DATA_SEQ);
    Atomics.store(i32, R.CONSUMER_SLEEPING, 1);
    // Re-check after announcing sleep: a producer that published before it is seen
    // here; one after it sees the flag and bumps DATA_SEQ. `more` adds the caller's own
    // condition (the pool also watches the DONE counter), checked the same way.
    if ((Atomics.load(i32, R.WRITE) >>> 0) === this.#r && Atomics.load(i32, R.CLOSED) === 0 && !more?.()) {
      const w = Atomics.waitAsync(i32, R.DATA_SEQ, seq);
      if (w.async) await w.value;
    }
    Atomics.store(i32, R.CONSUMER_SLEEPING, 0);
  }

  /** Wakes a consumer sleeping in waitForData (for a reason outside the ring). */
  wake(): void {
    if (Atomics.load(this.i32, R.CONSUMER_SLEEPING) !== 0) {
      Atomics.add(this.i32, R.DATA_SEQ, 1);
      Atomics.notify(this.i32, R.DATA_SEQ);
    }
  }

  close(): void {
    Atomics.store(this.i32, R.CLOSED, 1);
    Atomics.add(this.i32, R.DATA_SEQ, 1);
    Atomics.notify(this.i32, R.DATA_SEQ);
  }

  get closed(): boolean {
    return Atomics.load(this.i32, R.CLOSED) !== 0;
  }
}
