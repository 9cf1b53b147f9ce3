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
const utf8 = new TextDecoder();

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
  if (m.enc === Encoding.Json) data = JSON.parse(utf8.decode(d.payload));
  else if (m.enc === Encoding.Bytes) data = Buffer.from(d.payload.buffer, d.payload.byteOffset, d.payload.byteLength);
  return { subject: d.subject, data, key: m.key, priority, headers: m.headers, id, time: m.time, redelivered: d.deliveries > 1, deliveries: d.deliveries };
}

/** Field names of a stream entry (Redis). `s` is read too: entries another tool wrote with a plain subject field. */
export const F = { meta: 'm', key: 'k', headers: 'h', subject: 's', data: 'd' } as const;

/**
 * A Redis stream entry's metadata and subject, packed in one field `m`:
 * `<enc><lane><userId 0|1> <time> <subject>[ <id>]`. Subjects hold no whitespace, so
 * the spaces split it unambiguously; the id (which may hold spaces) comes last and
 * only when the caller gave it (Redis dedupes only those; the bus's own ids would be
 * bytes on every entry for nothing). Few fields matter: each is an argument to encode
 * on XADD and a pair to decode on read.
 */
export function packMeta(m: WireMeta, subject: string): string {
  return m.userId ? `${m.enc}${m.lane}1 ${m.time} ${subject} ${m.id}` : `${m.enc}${m.lane}0 ${m.time} ${subject}`;
}

/** The entry fields after `m` and `d`: `k` and `h` only when the event has a key or headers. */
export function extraFields(m: WireMeta): string[] | undefined {
  if (m.key === undefined && m.headers === undefined) return undefined;
  const out: string[] = [];
  if (m.key !== undefined) out.push(F.key, m.key);
  if (m.headers !== undefined) out.push(F.headers, JSON.stringify(m.headers));
  return out;
}

/** Reads packMeta's field back (and `k`, `h`); missing or malformed parts take neutral values (an entry another tool wrote). */
export function unpackMeta(packed: string | undefined, key: string | undefined, h: string | undefined): { subject: string | undefined; meta: WireMeta } {
  const p = packed ?? '';
  const a = p.indexOf(' ');
  const b = a < 0 ? -1 : p.indexOf(' ', a + 1);
  const c = b < 0 ? -1 : p.indexOf(' ', b + 1);
  const ok = a === 3;
  const enc = ok ? p.charCodeAt(0) - 48 : Encoding.Bytes;
  const lane = ok ? p.charCodeAt(1) - 48 : 2;
  const time = ok && b > a ? Number(p.slice(a + 1, b)) : NaN;
  let headers: Record<string, string> | undefined;
  if (h !== undefined) {
    try {
      headers = JSON.parse(h) as Record<string, string>;
    } catch {
      headers = undefined;
    }
  }
  return {
    subject: ok && b > a ? p.slice(b + 1, c < 0 ? p.length : c) : undefined,
    meta: {
      enc: (enc >= 0 && enc <= 3 ? enc : Encoding.Bytes) as Encoding,
      lane: lane >= 0 && lane <= 3 ? lane : 2,
      key,
      headers,
      id: c < 0 ? '' : p.slice(c + 1),
      userId: ok && p.charCodeAt(2) === 49,
      time: time > 0 ? time : Date.now(),
    },
  };
}
