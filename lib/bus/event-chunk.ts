// Events bound for one worker thread, kept as columns until they cross as one batch
// record (packChunk in lib/bus/event-codec.ts), and kept after that until the worker's
// DONE count settles them: a failure is reported (and dead-lettered) from these
// columns, so an event that took the publish-time path never needs an object of its
// own on the main thread.
//
// An event delivered through the lanes has a Ticket (tickets[i]) that the bus settles
// one by one; an event written at publish time (lib/bus/bus.ts #publishDirect) has
// none, and a DONE count settles any number of those with one call.
//
// Owner: the pool's slot (lib/bus/worker-pool.ts). Columns hold the caller's payloads
// by reference (byte payloads are copied once, into the ring, when the batch is
// written); nothing here is shared with another thread.
import { JsonBusEvent } from './json-event.js';
import { PRIORITIES } from './options.js';
import type { Ticket } from './ticket.js';
import type { BusEvent } from './types.js';

/** meta bits, the same as the batch record's (event-codec.ts): priority | 4 wants a reply | 8 JSON bytes. */
export const CHUNK_REPLY = 4;
export const CHUNK_JSON = 8;

export class EventChunk {
  n = 0;
  readonly subjects: string[] = [];
  readonly meta: number[] = [];
  readonly ids: number[] = [];
  readonly times: number[] = [];
  readonly data: unknown[] = [];
  keys: Array<string | null> | null = null;
  headers: Array<Record<string, string> | null> | null = null;
  /** The lane path's tickets, by index; null while every event came at publish time. */
  tickets: Array<Ticket | undefined> | null = null;
  /** Bit p set: some event has priority p. More than one bit: reorder before packing. */
  lanes = 0;

  push(
    subject: string,
    meta: number,
    id: number,
    time: number,
    key: string | undefined,
    headers: Record<string, string> | undefined,
    data: unknown,
    ticket: Ticket | undefined,
  ): void {
    const i = this.n++;
    this.subjects.push(subject);
    this.meta.push(meta);
    this.ids.push(id);
    this.times.push(time);
    this.data.push(data);
    this.lanes |= 1 << (meta & 3);
    if (key !== undefined) (this.keys ??= new Array<string | null>(i).fill(null)).push(key);
    else if (this.keys !== null) this.keys.push(null);
    if (headers !== undefined) (this.headers ??= new Array<Record<string, string> | null>(i).fill(null)).push(headers);
    else if (this.headers !== null) this.headers.push(null);
    if (ticket !== undefined) (this.tickets ??= new Array<Ticket | undefined>(i).fill(undefined)).push(ticket);
    else if (this.tickets !== null) this.tickets.push(undefined);
  }

  /** A new chunk with the events at `order` (indices into this one), in that order. */
  pick(order: ArrayLike<number>): EventChunk {
    const c = new EventChunk();
    for (let k = 0; k < order.length; k++) {
      const i = order[k];
      c.push(this.subjects[i], this.meta[i], this.ids[i], this.times[i], this.keys?.[i] ?? undefined, this.headers?.[i] ?? undefined, this.data[i], this.tickets?.[i]);
    }
    return c;
  }

  /** Events [from, to) as a new chunk. */
  slice(from: number, to: number): EventChunk {
    const order = new Array<number>(to - from);
    for (let k = 0; k < order.length; k++) order[k] = from + k;
    return this.pick(order);
  }

  /**
   * The same events with higher priorities first, as the lanes would have served them
   * had they all been queued together (stable within a priority). An event whose key
   * has an earlier event in this chunk ranks with the first of them, so no event
   * overtakes an earlier one of its key (the lanes' rule, lib/bus/bus.ts #enqueue).
   * Precondition: more than one priority present (`lanes` has two bits or more).
   */
  byPriority(): EventChunk {
    const n = this.n;
    const rank = new Uint8Array(n);
    const count = [0, 0, 0, 0];
    let held: Map<string, number> | undefined;
    for (let i = 0; i < n; i++) {
      let p = this.meta[i] & 3;
      const key = this.keys?.[i];
      if (key != null) {
        held ??= new Map();
        const h = held.get(key);
        if (h !== undefined) p = h;
        else held.set(key, p);
      }
      rank[i] = p;
      count[p]++;
    }
    const start = [0, count[0], count[0] + count[1], count[0] + count[1] + count[2]];
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[start[rank[i]]++] = i;
    return this.pick(order);
  }

  /** Event i as a handler would have seen it (for failure reports and dead letters). */
  event(i: number): BusEvent {
    const m = this.meta[i];
    const key = this.keys?.[i] ?? undefined;
    const headers = this.headers?.[i] ?? undefined;
    const priority = PRIORITIES[m & 3];
    if ((m & CHUNK_JSON) !== 0) return new JsonBusEvent(this.subjects[i], this.data[i] as Uint8Array, key, priority, headers, this.ids[i], this.times[i]);
    return { subject: this.subjects[i], data: this.data[i], key, priority, headers, id: this.ids[i], time: this.times[i] };
  }
}
