// One priority lane's queue: a ring of queued events kept as struct-of-arrays, so a
// queued event costs a few array slots (route, data, key, extra) and two float64s
// (id, time) — 48 B — and no object of its own until delivery. The ring grows by
// doubling, but never past the lane's capacity (so a full lane wastes nothing), and
// never shrinks.
import type { Reply } from './reply.js';
import type { Route } from './route-table.js';

export interface EventExtra {
  headers?: Record<string, string>;
  reply?: Reply;
  /** The data is UTF-8 JSON bytes, parsed on first read (lib/bus/json-event.ts). */
  json?: boolean;
}

const INITIAL = 1024;

export class LaneQueue {
  readonly capacity: number;
  size = 0;
  #head = 0; // index of the oldest event
  #len: number; // slots allocated
  route: Array<Route | undefined>;
  data: unknown[];
  key: Array<string | undefined>;
  extra: Array<EventExtra | undefined>;
  id: Float64Array;
  time: Float64Array;

  constructor(capacity: number) {
    this.capacity = capacity;
    const n = Math.min(INITIAL, capacity);
    this.#len = n;
    this.route = new Array<Route | undefined>(n).fill(undefined);
    this.data = new Array<unknown>(n).fill(undefined);
    this.key = new Array<string | undefined>(n).fill(undefined);
    this.extra = new Array<EventExtra | undefined>(n).fill(undefined);
    this.id = new Float64Array(n);
    this.time = new Float64Array(n);
  }

  get full(): boolean {
    return this.size >= this.capacity;
  }

  /** Slot index for a new tail event; the caller fills the arrays. Precondition: !full. */
  pushSlot(): number {
    if (this.size === this.#len) this.#grow();
    let i = this.#head + this.size;
    if (i >= this.#len) i -= this.#len;
    this.size++;
    return i;
  }

  /** Slot index of the oldest event. Precondition: size > 0. */
  headSlot(): number {
    return this.#head;
  }

  /** Forgets the oldest event (clearing references so payloads can be collected). */
  shift(): void {
    const i = this.#head;
    this.route[i] = undefined;
    this.data[i] = undefined;
    this.key[i] = undefined;
    this.extra[i] = undefined;
    this.#head = i + 1 === this.#len ? 0 : i + 1;
    this.size--;
  }

  #grow(): void {
    const n = Math.min(this.#len * 2, this.capacity);
    const route = new Array<Route | undefined>(n).fill(undefined);
    const data = new Array<unknown>(n).fill(undefined);
    const key = new Array<string | undefined>(n).fill(undefined);
    const extra = new Array<EventExtra | undefined>(n).fill(undefined);
    const id = new Float64Array(n);
    const time = new Float64Array(n);
    for (let k = 0; k < this.size; k++) {
      let i = this.#head + k;
      if (i >= this.#len) i -= this.#len;
      route[k] = this.route[i];
      data[k] = this.data[i];
      key[k] = this.key[i];
      extra[k] = this.extra[i];
      id[k] = this.id[i];
      time[k] = this.time[i];
    }
    this.route = route;
    this.data = data;
    this.key = key;
    this.extra = extra;
    this.id = id;
    this.time = time;
    this.#head = 0;
    this.#len = n;
  }
}
