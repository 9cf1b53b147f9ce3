// The JS end of the gateway's rings (native/src/queue/byte_ring.h draws the protocol):
// per I/O thread one ingress ring (records from the I/O thread) and one egress ring
// (records to it). One wake-up per batch each way:
//   - the I/O thread calls onWake(thread) (a thread-safe function) only when this side
//     said it was idle (CONSUMER_SLEEPING = 1); we drain everything, then say so again;
//   - we call server.wake(thread) (an eventfd write) only when the I/O thread said it
//     sleeps, once per flush, at the end of the JS turn that wrote records.
// Egress records that do not fit wait here, in order, until the I/O thread frees room
// and wakes us (it swaps PRODUCER_WAITING).
import { ByteRing, R } from '../bus/byte-ring.js';
import { IN_HEADER, OUT_HEADER } from './records.js';

/** One ingress record, decoded enough to dispatch; byte ranges index `ring.buf`. */
export interface InRecord {
  kind: number;
  priority: number;
  flags: number;
  conn: number;
  gen: number;
  subjectId: number;
  /** CLOCK_MONOTONIC µs (u32, wraps) when the I/O thread read the bytes. */
  readUs: number;
  /** Offsets into ring.buf of the four variable fields. */
  subjectAt: number;
  subjectLen: number;
  idAt: number;
  idLen: number;
  keyAt: number;
  keyLen: number;
  dataAt: number;
  dataLen: number;
}

/** Returns false to stop draining this thread now (the record is consumed either way). */
export type RecordHandler = (thread: number, ring: ByteRing, rec: InRecord) => boolean;

interface Pending {
  bytes: Buffer; // a whole egress record (header included)
}

export class IoChannel {
  readonly threads: number;
  readonly ingress: ByteRing[];
  readonly egress: ByteRing[];
  #wake: (thread: number) => void = () => {};
  #handler: RecordHandler;
  #dirty = new Set<number>();
  #flushScheduled = false;
  #overflow: Pending[][];
  #paused: boolean[];
  #rec: InRecord = {
    kind: 0, priority: 0, flags: 0, conn: 0, gen: 0, subjectId: 0, readUs: 0,
    subjectAt: 0, subjectLen: 0, idAt: 0, idLen: 0, keyAt: 0, keyLen: 0, dataAt: 0, dataLen: 0,
  };

  constructor(threads: number, ingressBytes: number, egressBytes: number, handler: RecordHandler) {
    this.threads = threads;
    this.ingress = [];
    this.egress = [];
    this.#overflow = [];
    this.#paused = [];
    for (let t = 0; t < threads; t++) {
      const inRing = ByteRing.create(ingressBytes);
      // Idle from the start: the I/O thread's first publish wakes us.
      Atomics.store(inRing.i32, R.CONSUMER_SLEEPING, 1);
      this.ingress.push(inRing);
      this.egress.push(ByteRing.create(egressBytes));
      this.#overflow.push([]);
      this.#paused.push(false);
    }
    this.#handler = handler;
  }

  /** The memory the native server maps: one {ingress, egress} per thread. */
  ringViews(): Array<{ ingress: Uint8Array; egress: Uint8Array }> {
    return this.ingress.map((r, t) => ({ ingress: new Uint8Array(r.sab), egress: new Uint8Array(this.egress[t].sab) }));
  }

  setWaker(wake: (thread: number) => void): void {
    this.#wake = wake;
  }

  /** Stops draining a thread's ingress (the bus is full under 'wait'); resume() restarts it. */
  pause(thread: number): void {
    this.#paused[thread] = true;
  }

  resume(thread: number): void {
    this.#paused[thread] = false;
    this.drain(thread);
  }

  /** The I/O thread woke us (or we resume): flush held egress, then drain ingress. */
  drain(thread: number): void {
    if (this.#overflow[thread].length > 0) this.#flushOverflow(thread);
    if (this.#paused[thread]) return;
    const ring = this.ingress[thread];
    const i32 = ring.i32;
    const view = ring.view;
    const rec = this.#rec;
    let n = 0;
    for (;;) {
      let off = ring.next();
      if (off < 0) {
        // Announce idleness, then look again: a record published in between is seen
        // here, or its producer sees the flag and wakes us.
        Atomics.store(i32, R.CONSUMER_SLEEPING, 1);
        off = ring.next();
        if (off < 0) break;
        Atomics.store(i32, R.CONSUMER_SLEEPING, 0);
      }
      const len = ring.length;
      if (len >= IN_HEADER) {
        rec.kind = view.getUint8(off);
        rec.priority = view.getUint8(off + 1);
        rec.flags = view.getUint16(off + 2, true);
        rec.conn = view.getUint32(off + 4, true);
        rec.gen = view.getUint32(off + 8, true);
        rec.subjectId = view.getUint32(off + 12, true);
        rec.subjectLen = view.getUint16(off + 16, true);
        rec.idLen = view.getUint16(off + 18, true);
        rec.keyLen = view.getUint32(off + 20, true);
        rec.dataLen = view.getUint32(off + 24, true);
        rec.readUs = view.getUint32(off + 28, true);
        rec.subjectAt = off + IN_HEADER;
        rec.idAt = rec.subjectAt + rec.subjectLen;
        rec.keyAt = rec.idAt + rec.idLen;
        rec.dataAt = rec.keyAt + rec.keyLen;
        let go = true;
        try {
          go = this.#handler(thread, ring, rec);
        } finally {
          ring.advance();
        }
        if (!go) {
          this.#releaseIngress(thread);
          return;
        }
      } else {
        ring.advance();
      }
      // Hand room back to the I/O thread now and then, not only at the end.
      if (++n === 256) {
        n = 0;
        this.#releaseIngress(thread);
      }
    }
    this.#releaseIngress(thread);
  }

  #releaseIngress(thread: number): void {
    const ring = this.ingress[thread];
    ring.release();
    if (Atomics.exchange(ring.i32, R.PRODUCER_WAITING, 0) !== 0) this.#wake(thread);
  }

  // ------------------------------------------------------------------ egress

  /**
   * Writes an egress record of `payloadBytes` for `thread`: the header here, the
   * payload through `fill(buf, at)`, into the ring or, when it is full, into a buffer
   * that waits here in order. `lengthField` is the header's length (a fan-out record
   * puts its prefix length there; its targets follow).
   */
  write(
    thread: number,
    kind: number,
    flags: number,
    code: number,
    conn: number,
    gen: number,
    payloadBytes: number,
    fill: (buf: Buffer, at: number) => void,
    lengthField = payloadBytes,
  ): void {
    const ring = this.egress[thread];
    const total = OUT_HEADER + payloadBytes;
    let at = -1;
    if (this.#overflow[thread].length === 0 && total <= ring.maxRecord) at = ring.reserve(total);
    if (at >= 0) {
      writeHeader(ring.buf, at, kind, flags, code, conn, gen, lengthField);
      fill(ring.buf, at + OUT_HEADER);
    } else {
      const b = Buffer.allocUnsafe(total);
      writeHeader(b, 0, kind, flags, code, conn, gen, lengthField);
      fill(b, OUT_HEADER);
      this.#overflow[thread].push({ bytes: b });
      Atomics.store(ring.i32, R.PRODUCER_WAITING, 1);
      // Room may have appeared between the failed reserve and the flag.
      this.#flushOverflow(thread);
    }
    this.#dirty.add(thread);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flush);
    }
  }

  /** Largest payload one egress record can carry. */
  maxPayload(thread: number): number {
    return this.egress[thread].maxRecord - OUT_HEADER;
  }

  #flushOverflow(thread: number): void {
    const q = this.#overflow[thread];
    const ring = this.egress[thread];
    let i = 0;
    for (; i < q.length; i++) {
      const b = q[i].bytes;
      if (b.length > ring.maxRecord) continue; // cannot happen: writers split to maxPayload
      const at = ring.reserve(b.length);
      if (at < 0) break;
      b.copy(ring.buf, at);
    }
    if (i > 0) {
      q.splice(0, i);
      this.#dirty.add(thread);
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        queueMicrotask(this.#flush);
      }
    }
    if (q.length > 0) Atomics.store(ring.i32, R.PRODUCER_WAITING, 1);
  }

  /** Egress records waiting in JS because the ring was full. */
  get queued(): number {
    let n = 0;
    for (const q of this.#overflow) n += q.length;
    return n;
  }

  #flush = (): void => {
    this.#flushScheduled = false;
    for (const t of this.#dirty) {
      const ring = this.egress[t];
      ring.publish();
      if (Atomics.exchange(ring.i32, R.CONSUMER_SLEEPING, 0) !== 0) this.#wake(t);
    }
    this.#dirty.clear();
  };

  /** Publishes pending egress records now (close paths). */
  flushNow(): void {
    this.#flush();
  }
}

function writeHeader(b: Buffer, at: number, kind: number, flags: number, code: number, conn: number, gen: number, len: number): void {
  b[at] = kind;
  b[at + 1] = flags;
  b.writeUInt16LE(code, at + 2);
  b.writeUInt32LE(conn >>> 0, at + 4);
  b.writeUInt32LE(gen >>> 0, at + 8);
  b.writeUInt32LE(len >>> 0, at + 12);
}
