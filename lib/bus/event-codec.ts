// The record format for events crossing threads through a ByteRing. One format serves
// both directions: events to a worker, and publishes, failures and replies back.
//
//   0  u8  kind       1 event/publish, 2 failure, 3 reply
//   1  u8  priority   0 critical .. 3 low
//   2  u8  dataKind   0 undefined, 1 msgpack, 2 Uint8Array bytes, 3 Buffer bytes
//   3  u8  flags      1 has key, 2 has headers, 4 wants a reply, 8 data is JSON bytes
//   4  u16 subject bytes
//   6  u16 key bytes
//   8  f64 id
//   16 f64 time
//   24 u32 headers bytes (msgpack)
//   28 u32 data bytes
//   32 subject, key, headers, data
//
// Structured data goes through msgpackr (measured faster than JSON both ways here,
// bench/bus); bytes are copied once, straight into shared memory.
import { Packr } from 'msgpackr';
import { MyelinError } from '../errors.js';
import type { ByteRing } from './byte-ring.js';
import type { EventChunk } from './event-chunk.js';

export const KIND_EVENT = 1;
export const KIND_FAIL = 2;
export const KIND_REPLY = 3;
export const KIND_BATCH = 4;
const HEAD = 32;

// Functions would silently become undefined; refuse them like any other value that is
// not data (cycles and unsupported types already throw).
const writeFunction = (): never => {
  throw new TypeError('functions are not data');
};
const packr = new Packr({ useRecords: false, moreTypes: true, writeFunction });

export interface Encodable {
  kind: number;
  priority: number;
  subject: string;
  key: string | undefined;
  headers: Record<string, string> | undefined;
  data: unknown;
  id: number;
  time: number;
  wantsReply: boolean;
  /** The data is UTF-8 JSON bytes (a publish with contentType 'application/json'). */
  json?: boolean;
}

/** A decoded record has the same fields as the one encoded. */
export type Decoded = Encodable;

function pack(value: unknown, what: string): Uint8Array {
  try {
    return packr.pack(value);
  } catch (cause) {
    throw new MyelinError('ERR_INVALID_ARGUMENT', `${what} cannot cross to another thread: ${(cause as Error).message}`, { cause });
  }
}

interface Prepared {
  subjectBytes: number;
  keyBytes: number;
  headers: Uint8Array | undefined;
  dataKind: number;
  payload: Uint8Array | undefined;
  total: number;
}

/** Serialises what a record carries; throws as encodeRecord documents. */
function prepare(ring: ByteRing, r: Encodable): Prepared {
  const subjectBytes = Buffer.byteLength(r.subject);
  const keyBytes = r.key === undefined ? 0 : Buffer.byteLength(r.key);
  const headers = r.headers === undefined ? undefined : pack(r.headers, 'headers');
  let dataKind = 0;
  let payload: Uint8Array | undefined;
  const d = r.data;
  if (d === undefined) dataKind = 0;
  else if (d instanceof Uint8Array) {
    dataKind = Buffer.isBuffer(d) ? 3 : 2;
    payload = d;
  } else {
    dataKind = 1;
    payload = pack(d, `data for '${r.subject}'`);
  }
  const dataBytes = payload === undefined ? 0 : payload.byteLength;
  const headerBytes = headers === undefined ? 0 : headers.byteLength;
  const total = HEAD + subjectBytes + keyBytes + headerBytes + dataBytes;
  if (total > ring.maxRecord || subjectBytes > 0xffff || keyBytes > 0xffff) {
    throw new MyelinError('ERR_INVALID_ARGUMENT', `event for '${r.subject}' is ${total} bytes; a worker ring holds records up to ${ring.maxRecord} (raise ringBytes)`);
  }
  return { subjectBytes, keyBytes, headers, dataKind, payload, total };
}

/** Throws what encodeRecord would throw for `r`, without writing anything. */
export function checkRecord(ring: ByteRing, r: Encodable): void {
  prepare(ring, r);
}

/**
 * Encodes a record into the ring. Returns false when the ring has no room now; throws
 * ERR_INVALID_ARGUMENT for data that cannot be serialised or a record larger than the
 * ring can ever hold.
 */
export function encodeRecord(ring: ByteRing, r: Encodable): boolean {
  const { subjectBytes, keyBytes, headers, dataKind, payload, total } = prepare(ring, r);
  const dataBytes = payload === undefined ? 0 : payload.byteLength;
  const headerBytes = headers === undefined ? 0 : headers.byteLength;
  const at = ring.reserve(total);
  if (at < 0) return false;
  const v = ring.view;
  v.setUint8(at, r.kind);
  v.setUint8(at + 1, r.priority);
  v.setUint8(at + 2, dataKind);
  v.setUint8(at + 3, (r.key !== undefined ? 1 : 0) | (headers !== undefined ? 2 : 0) | (r.wantsReply ? 4 : 0) | (r.json === true ? 8 : 0));
  v.setUint16(at + 4, subjectBytes, true);
  v.setUint16(at + 6, keyBytes, true);
  v.setFloat64(at + 8, r.id, true);
  v.setFloat64(at + 16, r.time, true);
  v.setUint32(at + 24, headerBytes, true);
  v.setUint32(at + 28, dataBytes, true);
  let p = at + HEAD;
  p += ring.buf.write(r.subject, p, subjectBytes, 'utf8');
  if (r.key !== undefined) p += ring.buf.write(r.key, p, keyBytes, 'utf8');
  if (headers !== undefined) {
    ring.u8.set(headers, p);
    p += headerBytes;
  }
  if (payload !== undefined) ring.u8.set(payload, p);
  return true;
}

/** Decodes the record whose body starts at `at` (copying out of shared memory). */
export function decodeRecord(ring: ByteRing, at: number): Decoded {
  const v = ring.view;
  const kind = v.getUint8(at);
  const priority = v.getUint8(at + 1);
  const dataKind = v.getUint8(at + 2);
  const flags = v.getUint8(at + 3);
  const subjectBytes = v.getUint16(at + 4, true);
  const keyBytes = v.getUint16(at + 6, true);
  const id = v.getFloat64(at + 8, true);
  const time = v.getFloat64(at + 16, true);
  const headerBytes = v.getUint32(at + 24, true);
  const dataBytes = v.getUint32(at + 28, true);
  let p = at + HEAD;
  const subject = ring.buf.toString('utf8', p, p + subjectBytes);
  p += subjectBytes;
  let key: string | undefined;
  if (flags & 1) {
    key = ring.buf.toString('utf8', p, p + keyBytes);
    p += keyBytes;
  }
  let headers: Record<string, string> | undefined;
  if (flags & 2) {
    headers = packr.unpack(ring.u8.slice(p, p + headerBytes)) as Record<string, string>;
    p += headerBytes;
  }
  let data: unknown;
  // unpack from a private copy: msgpackr's native string extractor refuses views on a
  // SharedArrayBuffer, and the copy is one memcpy of the record's own bytes.
  if (dataKind === 1) data = packr.unpack(ring.u8.slice(p, p + dataBytes));
  else if (dataKind === 2) data = ring.u8.slice(p, p + dataBytes);
  else if (dataKind === 3) data = Buffer.from(ring.u8.slice(p, p + dataBytes).buffer);
  return { kind, priority, subject, key, headers, data, id, time, wantsReply: (flags & 4) !== 0, json: (flags & 8) !== 0 };
}

// ---------------------------------------------------------------- event batches
//
// Events to a worker travel as one record per delivery round:
//
//   0  u8  KIND_BATCH
//   4  u32 count
//   8  u32 packed bytes
//   12 one msgpack array of columns (packChunk below), then the byte payloads
//
// One pack on the main thread and one unpack in the worker per batch: the per-call
// overhead of the codec, not the bytes, dominated per-event records. Byte payloads
// (Uint8Array, Buffer, JSON bytes) stay out of msgpack: their data column holds the
// length, and the bytes are copied once, straight into the ring after the columns
// (msgpackr's typed-array extension cost more than the rest of the batch).
const BATCH_HEAD = 12;
const META_JSON = 8;
const META_BLOB = 16;
const META_BUFFER = 32;

/** A codec for one main->worker stream. Records (msgpackr `useRecords`, sequential)
 * define each object shape once per stream, which makes packing about 1.6x and
 * unpacking about 4x faster than plain maps here; the price is that packer and
 * unpacker must see the same messages in order, so a message packed but not sent
 * forces a reset (KIND_RESET) of both sides. */
export function createBatchCodec(): Packr {
  return new Packr({ useRecords: true, sequential: true, moreTypes: true, writeFunction });
}

/** A packed batch: the msgpack columns and the byte payloads that follow them. */
export interface PackedBatch {
  packed: Uint8Array;
  blobs: Uint8Array[] | null;
  /** The record body's size: header, columns and payloads. */
  size: number;
}

/**
 * Packs a chunk's events as columns; throws ERR_INVALID_ARGUMENT when some data cannot
 * cross. Layout: [subjectTable, subjectIndex[], meta[] (priority | 4 wants a reply |
 * 8 JSON bytes | 16 bytes payload | 32 a Buffer), ids[], timeBase, timeOffsetsUs[],
 * keys[] | null, headers[] | null, data[]]. Repeated subjects go once per batch, times
 * as small integers, and absent keys or headers cost nothing.
 */
export function packChunk(codec: Packr, c: EventChunk): PackedBatch {
  const n = c.n;
  const table: string[] = [];
  let index: Map<string, number> | undefined;
  const subjects = new Array<number>(n);
  const meta = new Array<number>(n);
  const offsets = new Array<number>(n);
  const data = new Array<unknown>(n);
  let blobs: Uint8Array[] | null = null;
  let blobBytes = 0;
  const timeBase = n > 0 ? c.times[0] : 0;
  let last: string | undefined;
  let lastIndex = 0;
  for (let i = 0; i < n; i++) {
    const subject = c.subjects[i];
    // runs of one subject (the common batch) skip the table lookup
    if (subject !== last) {
      index ??= new Map();
      let s = index.get(subject);
      if (s === undefined) {
        s = table.length;
        table.push(subject);
        index.set(subject, s);
      }
      last = subject;
      lastIndex = s;
    }
    subjects[i] = lastIndex;
    offsets[i] = Math.round((c.times[i] - timeBase) * 1000);
    let m = c.meta[i];
    // byte payloads (JSON bytes too) cross outside msgpack, after the columns
    const d = c.data[i];
    if (d instanceof Uint8Array) {
      m |= META_BLOB | (Buffer.isBuffer(d) ? META_BUFFER : 0);
      (blobs ??= []).push(d);
      blobBytes += d.byteLength;
      data[i] = d.byteLength;
    } else {
      data[i] = d;
    }
    meta[i] = m;
  }
  try {
    const packed = codec.pack([table, subjects, meta, c.ids, timeBase, offsets, c.keys, c.headers, data]);
    return { packed, blobs, size: BATCH_HEAD + packed.byteLength + blobBytes };
  } catch (cause) {
    throw new MyelinError('ERR_INVALID_ARGUMENT', `a batch of events cannot cross to another thread: ${(cause as Error).message}`, { cause });
  }
}

/** Checks one event's data alone (to find which event of a failed batch is at fault). */
export function checkCrossable(c: EventChunk, i: number): void {
  pack([c.data[i], c.headers?.[i] ?? null], `data for '${c.subjects[i]}'`);
}

export const KIND_RESET = 5;

/** Tells the worker to start a fresh unpacker (the main side started a fresh packer). */
export function writeReset(ring: ByteRing): boolean {
  const at = ring.reserve(8);
  if (at < 0) return false;
  ring.view.setUint8(at, KIND_RESET);
  return true;
}

/** Writes a packed batch as one record; false when the ring has no room now. */
export function writeBatch(ring: ByteRing, count: number, batch: PackedBatch): boolean {
  const total = batch.size;
  if (total > ring.maxRecord) {
    throw new MyelinError('ERR_INVALID_ARGUMENT', `a batch of ${count} events is ${total} bytes; a worker ring holds records up to ${ring.maxRecord} (raise ringBytes)`);
  }
  const at = ring.reserve(total);
  if (at < 0) return false;
  const { packed, blobs } = batch;
  ring.view.setUint8(at, KIND_BATCH);
  ring.view.setUint32(at + 4, count, true);
  ring.view.setUint32(at + 8, packed.byteLength, true);
  const u8 = ring.u8;
  u8.set(packed, at + BATCH_HEAD);
  if (blobs !== null) {
    let p = at + BATCH_HEAD + packed.byteLength;
    for (let k = 0; k < blobs.length; k++) {
      const b = blobs[k];
      u8.set(b, p);
      p += b.byteLength;
    }
  }
  return true;
}

/** A copy of a batch whose packed columns live in msgpackr's shared buffer (the payloads stay the caller's). */
export function keepBatch(batch: PackedBatch): PackedBatch {
  return { packed: batch.packed.slice(), blobs: batch.blobs, size: batch.size };
}

/** One decoded batch: its columns, read by index (a class, so a batch costs one object, not a closure per column). */
export class DecodedBatch {
  readonly count: number;
  constructor(
    readonly table: string[],
    readonly subjects: number[],
    readonly meta: number[],
    readonly ids: number[],
    readonly timeBase: number,
    readonly offsets: number[],
    readonly keys: Array<string | null> | null,
    readonly headerCol: Array<Record<string, string> | null> | null,
    readonly dataCol: unknown[],
  ) {
    this.count = ids.length;
  }
  subject(i: number): string {
    return this.table[this.subjects[i]];
  }
  priority(i: number): number {
    return this.meta[i] & 3;
  }
  wantsReply(i: number): boolean {
    return (this.meta[i] & 4) !== 0;
  }
  json(i: number): boolean {
    return (this.meta[i] & META_JSON) !== 0;
  }
  id(i: number): number {
    return this.ids[i];
  }
  time(i: number): number {
    return this.timeBase + this.offsets[i] / 1000;
  }
  key(i: number): string | undefined {
    return this.keys?.[i] ?? undefined;
  }
  headers(i: number): Record<string, string> | undefined {
    return this.headerCol?.[i] ?? undefined;
  }
  data(i: number): unknown {
    return this.dataCol[i];
  }
}

export function readBatch(codec: Packr, ring: ByteRing, at: number, length: number): DecodedBatch {
  // One private copy of the record (msgpackr's string extractor refuses views on a
  // SharedArrayBuffer); byte payloads are views into it.
  const body = ring.u8.slice(at + BATCH_HEAD, at + length);
  const packedBytes = ring.view.getUint32(at + 8, true);
  const [table, subjects, meta, ids, timeBase, offsets, keys, headers, data] = codec.unpack(body.subarray(0, packedBytes)) as [
    string[],
    number[],
    number[],
    number[],
    number,
    number[],
    Array<string | null> | null,
    Array<Record<string, string> | null> | null,
    unknown[],
  ];
  // Byte payloads follow the columns in event order; their data entries are lengths.
  let p = packedBytes;
  for (let i = 0; i < meta.length; i++) {
    const m = meta[i];
    if ((m & META_BLOB) === 0) continue;
    const len = data[i] as number;
    data[i] = (m & META_BUFFER) !== 0 ? Buffer.from(body.buffer, body.byteOffset + p, len) : body.subarray(p, p + len);
    p += len;
  }
  return new DecodedBatch(table, subjects, meta, ids, timeBase, offsets, keys, headers, data);
}

export function recordKind(ring: ByteRing, at: number): number {
  return ring.view.getUint8(at);
}
