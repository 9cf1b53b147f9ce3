// A subscription: its pattern, handler, queue group and the bookkeeping for async
// handlers (in-flight count, keys in flight, events waiting for a slot). The Bus owns
// the delivery loop; this class owns per-subscription state and the iterator form.
import { MyelinError } from '../errors.js';
import type { EventExtra } from './lane-queue.js';
import type { BusEvent } from './types.js';

/** Tracks one event across its deliveries: settles once every delivery settled. */
export interface Tracker {
  pending: number;
  failed: boolean;
}

export interface PendingDelivery {
  ev: BusEvent;
  tracker: Tracker;
  extra: EventExtra | undefined;
}

export type DirectFn = (
  subject: string,
  data: unknown,
  key: string | undefined,
  headers: Record<string, string> | undefined,
  json: boolean,
  lane: number,
  id: number,
  time: number,
) => boolean;

export type Handler = (event: BusEvent, wantsReply?: boolean) => unknown;

export class Subscription implements AsyncIterable<BusEvent> {
  readonly id: number;
  readonly pattern: string;
  readonly queue: string | undefined;
  readonly concurrency: number;
  readonly handler: Handler;
  /** Async deliveries started and not settled. */
  inflight = 0;
  /** Keys with a delivery in flight (per-key order for async handlers). */
  readonly keysInFlight = new Set<string>();
  /** Deliveries waiting for a slot or for their key; bounded by maxPending. */
  readonly pending: PendingDelivery[] = [];
  readonly maxPending: number;
  closed = false;
  /** Ordering comes from key affinity downstream (a worker pool), not from the bus. */
  keyAffinity = false;
  /** When set and true, the bus holds events in their lanes (downstream backpressure). */
  full: (() => boolean) | undefined;
  /** A worker pool's publish-time path (lib/bus/worker-pool.ts #accept): takes an event
   * without an event object or a ticket; false sends it through the lanes instead. */
  direct: DirectFn | undefined;
  /**
   * Resolves once the subscription exists where events are routed: at once in memory;
   * on a cluster transport, once the engine-side subscription (a durable consumer or
   * consumer group for a queue group) exists (lib/cluster/cluster-bus.ts).
   */
  get ready(): Promise<void> {
    return this.#ready;
  }
  set ready(p: Promise<void>) {
    this.#ready = p;
  }
  #ready: Promise<void> = Promise.resolve();
  #drainWaiters: Array<() => void> = [];
  #detach: () => void;
  #iter: EventIterator | undefined;

  constructor(
    id: number,
    pattern: string,
    handler: Handler | undefined,
    opts: { queue?: string; concurrency?: number; maxPending?: number },
    detach: (sub: Subscription) => void,
  ) {
    this.id = id;
    this.pattern = pattern;
    this.queue = opts.queue;
    this.concurrency = opts.concurrency ?? 1;
    this.maxPending = opts.maxPending ?? Math.max(64, this.concurrency * 4);
    this.#detach = () => detach(this);
    if (handler) {
      this.handler = handler;
    } else {
      const iter = new EventIterator(this);
      this.#iter = iter;
      this.handler = (ev) => iter.offer(ev);
    }
  }

  get busy(): boolean {
    return this.inflight > 0 || this.pending.length > 0;
  }

  /** Stops routing new events here; deliveries already taken still finish. Idempotent. */
  unsubscribe(): void {
    if (this.closed) return;
    this.closed = true;
    this.#detach();
    this.#iter?.end();
    if (!this.busy) this.settled();
  }

  /** Unsubscribes, then resolves once pending and in-flight deliveries have settled. */
  drain(): Promise<void> {
    this.unsubscribe();
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Called by the bus whenever this subscription may have gone idle. */
  settled(): void {
    if (this.busy || this.#drainWaiters.length === 0) return;
    const w = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const f of w) f();
  }

  [Symbol.asyncIterator](): AsyncIterator<BusEvent> {
    if (!this.#iter) throw new MyelinError('ERR_INVALID_ARGUMENT', 'a subscription with a handler is not iterable; subscribe without one');
    return this.#iter;
  }
}

/**
 * The async-iterator form: the subscription's handler resolves when the consumer has
 * taken the event, so with concurrency 1 the bus hands over one event at a time and
 * the rest wait in the subscription's bounded pending list, then in the bus lanes
 * (backpressure, never an unbounded buffer). `break` (return()) unsubscribes.
 */
class EventIterator implements AsyncIterator<BusEvent> {
  readonly #sub: Subscription;
  #offered: { ev: BusEvent; taken: () => void } | undefined;
  #waiting: ((r: IteratorResult<BusEvent>) => void) | undefined;
  #done = false;

  constructor(sub: Subscription) {
    this.#sub = sub;
  }

  offer(ev: BusEvent): Promise<void> {
    // After the consumer left (break, unsubscribe, close), deliveries still parked in
    // the subscription settle at once instead of waiting for a next() that never comes.
    if (this.#done) return Promise.resolve();
    return new Promise((taken) => {
      if (this.#waiting) {
        const w = this.#waiting;
        this.#waiting = undefined;
        taken();
        w({ value: ev, done: false });
      } else {
        this.#offered = { ev, taken };
      }
    });
  }

  end(): void {
    this.#done = true;
    const o = this.#offered;
    this.#offered = undefined;
    o?.taken();
    if (this.#waiting) {
      const w = this.#waiting;
      this.#waiting = undefined;
      w({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<BusEvent>> {
    const o = this.#offered;
    if (o) {
      this.#offered = undefined;
      o.taken();
      return Promise.resolve({ value: o.ev, done: false });
    }
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  /** `break` lands here: unsubscribe, which ends the iterator (end() above). */
  return(): Promise<IteratorResult<BusEvent>> {
    this.#sub.unsubscribe();
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }
}
