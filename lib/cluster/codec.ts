// Event data to payload bytes and back, and event metadata to a flat field list and
// back (the form Redis stream entries take; NATS headers carry the same names).
//
// Objects are encoded once, as JSON (readable by any engine tool and any client);
// JSON-bytes events and raw bytes go to the wire as they are, without a copy.
import { invalidArgument } from '../errors.js';
import { JsonBusEvent } from '../bus/json-event.js';
import { PRIORITIES } from '../bus/options.js';
import type { BusEvent } from '../bus/types.js';
import { type Delivery, Encoding, type WireMeta } from './transport.js';

const EMPTY = new Uint8Array(0);

/** The event's data as payload bytes. Throws ERR_INVALID_ARGUMENT for data JSON cannot carry. */
export function encodeData(data: unknown, json: boolean, where: string): { enc: Encoding; payload: Uint8Array; text?: string } {
  if (json) return { enc: Encoding.JsonBytes, payload: data as Uint8Array };
  if (data === undefined) return { enc: Encoding.None, payload: EMPTY };
  if (data instanceof Uint8Array) return { enc: Encoding.Bytes, payload: data };
  let text: string | undefined;
  try {
    text = JSON.stringify(data);
  } catch (err) {
    throw invalidArgument(`${where}: data cannot be serialised for the transport (${(err as Error).message}); send JSON-compatible values or bytes`, err);
  }
  if (text === undefined) throw invalidArgument(`${where}: data of type ${typeof data} cannot be serialised for the transport; send JSON-compatible values or bytes`);
  return { enc: Encoding.Json, payload: EMPTY, text };
}

/** The handler's event for one delivery. Decoding errors surface when `data` is read (JSON bytes) or here (bus-encoded JSON). */
export function toEvent(d: Delivery, id: number): BusEvent & { redelivered: boolean; deliveries: number } {
  const m = d.meta;
  const priority = PRIORITIES[m.lane] ?? 'normal';
  if (m.enc === Encoding.JsonBytes) {
    const ev = new JsonBusEvent(d.subject, d.payload, m.key, priority, m.headers, id, m.time) as unknown as BusEvent & { redelivered: boolean; deliveries: number };
    Object.defineProperty(ev, 'redelivered', { value: d.deliveries > 1, enumerable: true });
    Object.defineProperty(ev, 'deliveries', { value: d.deliveries, enumerable: true });
    return ev;
  }
  let data: unknown;
  if (m.enc === Encoding.Json) data = JSON.parse(Buffer.from(d.payload.buffer, d.payload.byteOffset, d.payload.byteLength).toString('utf8'));
  else if (m.enc === Encoding.Bytes) data = Buffer.from(d.payload.buffer, d.payload.byteOffset, d.payload.byteLength);
  return { subject: d.subject, data, key: m.key, priority, headers: m.headers, id, time: m.time, redelivered: d.deliveries > 1, deliveries: d.deliveries };
}

/** Field names of a stream entry (Redis). */
export const F = { meta: 'm', key: 'k', headers: 'h', subject: 's', data: 'd' } as const;

/**
 * The metadata as a flat list of field names and values (a Redis stream entry's
 * fields): one packed field `m` = `<enc><lane><userId 0|1>:<time>:<id>` (the id last:
 * it may hold ':'), then `k` and `h` only when the event has a key or headers. Few
 * fields matter: each is an argument to encode on XADD and a pair to decode on read.
 */
export function metaFields(m: WireMeta): string[] {
  const packed = `${m.enc}${m.lane}${m.userId ? 1 : 0}:${m.time}:${m.id}`;
  if (m.key === undefined && m.headers === undefined) return [F.meta, packed];
  const out = [F.meta, packed];
  if (m.key !== undefined) out.push(F.key, m.key);
  if (m.headers !== undefined) out.push(F.headers, JSON.stringify(m.headers));
  return out;
}

/** Reads metaFields' output back; missing or malformed fields take neutral values (an entry written by another tool). */
export function readMeta(get: (name: string) => string | undefined): WireMeta {
  const packed = get(F.meta) ?? '';
  const a = packed.indexOf(':');
  const b = a < 0 ? -1 : packed.indexOf(':', a + 1);
  const enc = a >= 3 ? packed.charCodeAt(0) - 48 : Encoding.Bytes;
  const lane = a >= 3 ? packed.charCodeAt(1) - 48 : 2;
  const time = b > a ? Number(packed.slice(a + 1, b)) : NaN;
  const h = get(F.headers);
  let headers: Record<string, string> | undefined;
  if (h !== undefined) {
    try {
      headers = JSON.parse(h) as Record<string, string>;
    } catch {
      headers = undefined;
    }
  }
  return {
    enc: (enc >= 0 && enc <= 3 ? enc : Encoding.Bytes) as Encoding,
    lane: lane >= 0 && lane <= 3 ? lane : 2,
    key: get(F.key),
    headers,
    id: b > a ? packed.slice(b + 1) : '',
    userId: a >= 3 && packed.charCodeAt(2) === 49,
    time: time > 0 ? time : Date.now(),
  };
}
