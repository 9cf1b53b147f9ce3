// The WebSocket event plane on the JS side: `pub` records become JSON-bytes bus events,
// `sub`s share one bus subscription per pattern, and each bus event for a pattern is
// serialized once and handed to the I/O threads as one fan-out record per thread
// (records.h), however many sockets get it.
import type { Bus } from '../bus/bus.js';
import type { Subscription } from '../bus/subscription.js';
import type { BusEvent, Priority } from '../bus/types.js';
import type { ByteRing } from '../bus/byte-ring.js';
import { MyelinError } from '../errors.js';
import type { InRecord, IoChannel } from './io-channel.js';
import { In, InFlag, NO_PRIORITY, Out, threadOf } from './records.js';

const PRIORITIES: Priority[] = ['critical', 'high', 'normal', 'low'];
const JSON_TYPE = 'application/json';

interface Target {
  conn: number;
  gen: number;
  /** `,"sub":"<id>"}` as bytes: what differs per socket. */
  suffix: Buffer;
}

interface PatternEntry {
  sub: Subscription;
  /** Targets by I/O thread, for one fan-out record per thread. */
  byThread: Target[][];
  count: number;
}

interface ConnState {
  gen: number;
  subs: Map<string, { pattern: string; target: Target }>;
}

export interface PlaneStats {
  subscriptions: number;
  patterns: number;
  eventsOut: number;
  refused: number;
}

/** What a /v1/events request accumulates until its end record. */
export interface EventsTally {
  accepted: number;
  refused: number;
  code: string | undefined;
}

export class EventPlane {
  readonly #bus: Bus;
  readonly #io: IoChannel;
  readonly #subjects: string[][];
  readonly #patterns = new Map<string, PatternEntry>();
  readonly #conns = new Map<number, ConnState>();
  /** Open /v1/events requests by conn. */
  readonly #tallies = new Map<number, EventsTally>();
  #eventsOut = 0;
  #refused = 0;
  #waiting = 0;
  #sample = 0;
  /** Records the ingress stage (I/O thread read -> bus publish) of one pub in 64. */
  onIngress: ((seconds: number) => void) | undefined;

  constructor(bus: Bus, io: IoChannel) {
    this.#bus = bus;
    this.#io = io;
    this.#subjects = Array.from({ length: io.threads }, () => []);
  }

  stats(): PlaneStats {
    let subscriptions = 0;
    for (const c of this.#conns.values()) subscriptions += c.subs.size;
    return { subscriptions, patterns: this.#patterns.size, eventsOut: this.#eventsOut, refused: this.#refused };
  }

  /** Publishes waiting for room under overflow 'wait'. */
  get waiting(): number {
    return this.#waiting;
  }

  // ---------------------------------------------------------------- ingress

  /** One ingress record of the event plane; false stops the drain (bus full under 'wait'). */
  onRecord(thread: number, ring: ByteRing, rec: InRecord): boolean {
    switch (rec.kind) {
      case In.PUB:
        return this.#pub(thread, ring, rec);
      case In.SUB:
        this.#sub(ring, rec);
        return true;
      case In.UNSUB:
        this.#unsub(rec.conn, rec.gen, ring.buf.toString('utf8', rec.idAt, rec.idAt + rec.idLen));
        return true;
      case In.REQ:
        this.#req(thread, ring, rec);
        return true;
      case In.WS_CLOSED:
        this.#closed(rec.conn, rec.gen);
        return true;
      case In.EVENTS_END:
        return true; // the gateway answers it (it owns HTTP)
      default:
        return true;
    }
  }

  #subject(thread: number, ring: ByteRing, rec: InRecord): string {
    const table = this.#subjects[thread];
    if (rec.subjectLen > 0) {
      const s = ring.buf.toString('utf8', rec.subjectAt, rec.subjectAt + rec.subjectLen);
      if (rec.subjectId !== 0) table[rec.subjectId] = s;
      return s;
    }
    return table[rec.subjectId];
  }

  #pub(thread: number, ring: ByteRing, rec: InRecord): boolean {
    const subject = this.#subject(thread, ring, rec);
    const data = Buffer.allocUnsafe(rec.dataLen);
    ring.buf.copy(data, 0, rec.dataAt, rec.dataAt + rec.dataLen);
    const key = rec.keyLen > 0 ? ring.buf.toString('utf8', rec.keyAt, rec.keyAt + rec.keyLen) : undefined;
    const opts =
      rec.priority === NO_PRIORITY
        ? key === undefined
          ? JSON_OPTS
          : { contentType: JSON_TYPE, key }
        : { contentType: JSON_TYPE, key, priority: PRIORITIES[rec.priority] };
    const fromHttp = (rec.flags & InFlag.HTTP) !== 0;
    let ok: boolean;
    try {
      ok = this.#bus.publish(subject, data, opts);
    } catch (err) {
      this.#refused++;
      const code = err instanceof MyelinError ? err.code : 'ERR_INTERNAL';
      if (fromHttp) {
        const t = this.#tally(rec.conn);
        t.refused++;
        t.code ??= code;
      } else {
        this.#sendError(rec.conn, rec.gen, undefined, code, (err as Error).message);
      }
      return true;
    }
    if (ok) {
      if (fromHttp) this.#tally(rec.conn).accepted++;
      if (this.onIngress !== undefined && (++this.#sample & 63) === 0) {
        // process.hrtime reads CLOCK_MONOTONIC, the clock the I/O thread stamped with.
        const nowUs = Number((process.hrtime.bigint() / 1000n) & 0xffffffffn);
        this.onIngress(((nowUs - rec.readUs) >>> 0) / 1e6);
      }
      return true;
    }
    // Overflow 'wait': keep the event, stop reading this thread's ring until it is in.
    // The ring fills behind us and the I/O thread stops reading sockets: backpressure
    // reaches the clients and nothing accepted is lost.
    this.#waiting++;
    this.#io.pause(thread);
    const conn = rec.conn;
    this.#bus.publishAsync(subject, data, opts).then(
      () => {
        if (fromHttp) this.#tally(conn).accepted++;
      },
      (err: unknown) => {
        this.#refused++;
        const code = err instanceof MyelinError ? err.code : 'ERR_INTERNAL';
        if (fromHttp) {
          const t = this.#tally(conn);
          t.refused++;
          t.code ??= code;
        }
      },
    ).finally(() => {
      this.#waiting--;
      this.#io.resume(thread);
    });
    return false;
  }

  #tally(conn: number): EventsTally {
    let t = this.#tallies.get(conn);
    if (!t) {
      t = { accepted: 0, refused: 0, code: undefined };
      this.#tallies.set(conn, t);
    }
    return t;
  }

  /** The tally of a finished /v1/events body (its end record arrived). */
  takeTally(conn: number): EventsTally {
    const t = this.#tally(conn);
    this.#tallies.delete(conn);
    return t;
  }

  #sub(ring: ByteRing, rec: InRecord): void {
    const pattern = ring.buf.toString('utf8', rec.subjectAt, rec.subjectAt + rec.subjectLen);
    const id = ring.buf.toString('utf8', rec.idAt, rec.idAt + rec.idLen);
    let conn = this.#conns.get(rec.conn);
    if (!conn || conn.gen !== rec.gen) {
      conn = { gen: rec.gen, subs: new Map() };
      this.#conns.set(rec.conn, conn);
    }
    if (conn.subs.has(id)) {
      this.#sendError(rec.conn, rec.gen, id, 'ERR_INVALID_ARGUMENT', `subscription id ${JSON.stringify(id)} is in use on this connection`);
      return;
    }
    let entry = this.#patterns.get(pattern);
    if (!entry) {
      const byThread: Target[][] = Array.from({ length: this.#io.threads }, () => []);
      let sub: Subscription;
      try {
        sub = this.#bus.subscribe(pattern, (ev: BusEvent) => this.#fanOut(pattern, ev));
      } catch (err) {
        const code = err instanceof MyelinError ? err.code : 'ERR_INTERNAL';
        this.#sendError(rec.conn, rec.gen, id, code, (err as Error).message);
        return;
      }
      entry = { sub, byThread, count: 0 };
      this.#patterns.set(pattern, entry);
    }
    const target: Target = { conn: rec.conn, gen: rec.gen, suffix: Buffer.from(`,"sub":${JSON.stringify(id)}}`) };
    entry.byThread[threadOf(rec.conn)].push(target);
    entry.count++;
    conn.subs.set(id, { pattern, target });
  }

  #unsub(connId: number, gen: number, id: string): void {
    const conn = this.#conns.get(connId);
    const s = conn && conn.gen === gen ? conn.subs.get(id) : undefined;
    if (!conn || !s) {
      this.#sendError(connId, gen, id, 'ERR_INVALID_ARGUMENT', `no subscription ${JSON.stringify(id)} on this connection`);
      return;
    }
    conn.subs.delete(id);
    this.#dropTarget(s.pattern, s.target);
  }

  #dropTarget(pattern: string, target: Target): void {
    const entry = this.#patterns.get(pattern);
    if (!entry) return;
    const list = entry.byThread[threadOf(target.conn)];
    const i = list.indexOf(target);
    if (i >= 0) {
      list[i] = list[list.length - 1];
      list.pop();
      entry.count--;
    }
    if (entry.count === 0) {
      this.#patterns.delete(pattern);
      entry.sub.unsubscribe();
    }
  }

  #closed(connId: number, gen: number): void {
    const conn = this.#conns.get(connId);
    if (!conn || conn.gen !== gen) return;
    this.#conns.delete(connId);
    for (const s of conn.subs.values()) this.#dropTarget(s.pattern, s.target);
  }

  #req(thread: number, ring: ByteRing, rec: InRecord): void {
    const subject = this.#subject(thread, ring, rec);
    const id = ring.buf.toString('utf8', rec.idAt, rec.idAt + rec.idLen);
    const text = ring.buf.toString('utf8', rec.dataAt, rec.dataAt + rec.dataLen);
    const key = rec.keyLen > 0 ? ring.buf.toString('utf8', rec.keyAt, rec.keyAt + rec.keyLen) : undefined;
    const { conn, gen } = rec;
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      this.#sendError(conn, gen, id, 'ERR_INVALID_ARGUMENT', '"data" is not valid JSON');
      return;
    }
    const opts = rec.priority === NO_PRIORITY ? { key } : { key, priority: PRIORITIES[rec.priority] };
    this.#bus.request(subject, data, opts).then(
      (reply) => {
        let body: string;
        try {
          body = `{"op":"reply","id":${JSON.stringify(id)},"data":${serialize(reply)}}`;
        } catch (err) {
          this.#sendError(conn, gen, id, 'ERR_INVALID_ARGUMENT', `the reply cannot be serialized: ${(err as Error).message}`);
          return;
        }
        this.#sendText(conn, gen, body);
      },
      (err: unknown) => {
        const code = err instanceof MyelinError ? err.code : 'ERR_HANDLER_FAILED';
        this.#sendError(conn, gen, id, code, (err as Error)?.message ?? String(err));
      },
    );
  }

  // ---------------------------------------------------------------- egress

  #fanOut(pattern: string, ev: BusEvent): void {
    const entry = this.#patterns.get(pattern);
    if (!entry || entry.count === 0) return;
    let prefix: Buffer;
    try {
      prefix = eventPrefix(ev);
    } catch {
      return; // data that cannot be serialized (a cycle): the handler failing would dead-letter it
    }
    const io = this.#io;
    for (let t = 0; t < entry.byThread.length; t++) {
      const targets = entry.byThread[t];
      if (targets.length === 0) continue;
      const padded = (prefix.length + 3) & ~3;
      const max = io.maxPayload(t);
      let i = 0;
      while (i < targets.length) {
        // As many targets as fit in one record.
        let bytes = padded;
        let j = i;
        while (j < targets.length) {
          const add = 12 + ((targets[j].suffix.length + 3) & ~3);
          if (bytes + add > max && j > i) break;
          bytes += add;
          j++;
        }
        const from = i;
        const to = j;
        io.write(t, Out.FANOUT, 0, 0, to - from, 0, bytes, (buf, at) => {
          prefix.copy(buf, at);
          let p = at + padded;
          for (let k = from; k < to; k++) {
            const tg = targets[k];
            buf.writeUInt32LE(tg.conn >>> 0, p);
            buf.writeUInt32LE(tg.gen >>> 0, p + 4);
            buf.writeUInt32LE(tg.suffix.length, p + 8);
            tg.suffix.copy(buf, p + 12);
            p += 12 + ((tg.suffix.length + 3) & ~3);
          }
        }, prefix.length);
        this.#eventsOut += to - from;
        i = j;
      }
    }
  }

  #sendText(conn: number, gen: number, text: string): void {
    const bytes = Buffer.from(text);
    const t = threadOf(conn);
    if (bytes.length > this.#io.maxPayload(t)) {
      this.#sendError(conn, gen, undefined, 'ERR_INVALID_ARGUMENT', 'message larger than the egress ring');
      return;
    }
    this.#io.write(t, Out.WS_TEXT, 0, 0, conn, gen, bytes.length, (buf, at) => bytes.copy(buf, at));
  }

  #sendError(conn: number, gen: number, id: string | undefined, code: string, message: string): void {
    const idPart = id === undefined ? '' : `"id":${JSON.stringify(id)},`;
    this.#sendText(conn, gen, `{"op":"error",${idPart}"code":${JSON.stringify(code)},"message":${JSON.stringify(message)}}`);
  }

  /** Unsubscribes everything (the gateway is closing). */
  close(): void {
    for (const e of this.#patterns.values()) e.sub.unsubscribe();
    this.#patterns.clear();
    this.#conns.clear();
  }
}

const JSON_OPTS = { contentType: JSON_TYPE };

function serialize(v: unknown): string {
  if (v instanceof Uint8Array) return JSON.stringify(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'));
  const s = JSON.stringify(v);
  return s === undefined ? 'null' : s;
}

/** `{"op":"event","subject":…,"data":…,"key":…,"id":…` — everything but the per-socket suffix. */
function eventPrefix(ev: BusEvent): Buffer {
  const head = `{"op":"event","subject":${JSON.stringify(ev.subject)},"data":`;
  const tail = `${ev.key === undefined ? '' : `,"key":${JSON.stringify(ev.key)}`},"id":"${ev.id}"`;
  if (ev.contentType === JSON_TYPE && ev.bytes) {
    // A JSON-bytes event goes out as it came in: never parsed here.
    const b = ev.bytes;
    const out = Buffer.allocUnsafe(Buffer.byteLength(head) + b.length + Buffer.byteLength(tail));
    let p = out.write(head, 0, 'utf8');
    out.set(b, p);
    p += b.length;
    out.write(tail, p, 'utf8');
    return out;
  }
  return Buffer.from(head + serialize(ev.data) + tail);
}
