// The in-memory event bus (shared/API.md "Bus").
//
// Flow: publish -> route (cached per subject, lib/bus/route-table.ts) -> one of four
// priority lanes (struct-of-arrays queues, lane-queue.ts) -> a delivery round that
// serves the lanes by weight and calls handlers: as a microtask at the end of the
// publisher's turn when the bus was idle, else on setImmediate (#schedule).
//
// Priorities: the drain serves up to 8:4:2:1 x 64 events from critical, high, normal
// and low, in that order, cycling, so higher lanes go first and, when every lane is
// busy, low still gets 1/15 of the deliveries: no lane starves. A round (one
// macrotask) ends after 16,384 events or 1 ms, and the next resumes the cycle where it
// stopped.
//
// Accounting: every accepted event is in exactly one of delivered, dropped, failed,
// queued (in a lane) or inFlight (taken from its lane, some delivery not settled), so
// published = delivered + dropped + failed + queued + inFlight at every moment. An
// event no subscription matches is dropped (and counted in `unrouted`). An event whose
// delivery to any subscription threw or rejected is failed, once, and each failed
// delivery is republished to `$DLQ.<subject>` with the error attached.
//
// Ordering: one lane is delivered in publish order; async deliveries of one key run one
// at a time per subscription, in order. An event whose key still has events queued in
// a lane joins that lane (whichever its priority), so no event overtakes an earlier
// one of its key; unkeyed events and other keys keep their priority.
import diagnostics from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { MyelinError, invalidArgument } from '../errors.js';
import { HistogramRecorder, latencyUs as latencyOf } from '../internal/histogram.js';
import { isMetricsSink, type MetricsSink } from '../internal/metrics-sink.js';
import { native, type NativeHistogram } from '../internal/native.js';
import { BusMetrics, MAX_PREFIXES, type PoolSample, type PrefixCounts, STAGE_SAMPLE_EVERY, StageSamples } from './bus-metrics.js';
import { type EventExtra, LaneQueue } from './lane-queue.js';
import {
  BATCH_KEYS,
  BUS_KEYS,
  DEFAULT_PUBLISH,
  PRIORITIES,
  PUBLISH_KEYS,
  type ParsedPublish,
  REQUEST_KEYS,
  SUBSCRIBE_KEYS,
  checkJsonData,
  checkOptions,
  describeType,
  parsePublishOptions,
} from './options.js';
import { describeError, isThenable } from './handler-result.js';
import { JsonBusEvent } from './json-event.js';
import { Reply } from './reply.js';
import { QueueGroup, type Route, RouteTable } from './route-table.js';
import { type DirectFn, type Handler, Subscription, type Tracker } from './subscription.js';
import { type SettleFn, Ticket } from './ticket.js';
import { ClusterBus, type ClusterHandle, type ClusterStats } from '../cluster/cluster-bus.js';
import { type PoolHost, WorkerPool, type WorkerPoolOptions } from './worker-pool.js';
import type { BatchItem, BusEvent, BusStats, Overflow, Priority, PublishOptions, SubscribeOptions } from './types.js';

const WEIGHT = [8, 4, 2, 1];
const ROUND = 64; // events per weight unit per round
const BUDGET = 16384; // events per macrotask before yielding to I/O
// ...and at most this long (ms): a round of slow handlers must not hold timers and
// sockets (and the events they would publish) back for longer. Checked every 64 events.
const ROUND_MS = 1;
const MICRO_ROUNDS = 64;
// With a metrics sink, one delivery in STAGE_SAMPLE_EVERY or fewer is timed for the stage
// histograms: two clock reads and the bookkeeping, ~250 ns on this class of VM, which at
// 1 in 128 was +3-4% CPU in a delivery-bound loop of ~50 ns events. So the stride
// adapts (#sampleNow): it doubles while timed deliveries come less than 0.25 ms apart
// and halves (down to STAGE_SAMPLE_EVERY) while they come more than 1 ms apart,
// keeping 1,000-4,000 timed deliveries a second, evenly spread, at any rate.
const MAX_STRIDE = 1 << 20;
const OVERFLOWS: readonly Overflow[] = ['wait', 'reject', 'drop-oldest', 'drop-newest'];

const publishChannel = diagnostics.channel('myelin:bus:publish');
const deliverChannel = diagnostics.channel('myelin:bus:deliver');
const failChannel = diagnostics.channel('myelin:bus:fail');

export interface BusOptions {
  /** Events buffered per priority lane (default 65536). */
  capacity?: number;
  overflow?: Overflow;
  /**
   * A cluster transport (lib/cluster/): `{ kind: 'nats', servers, stream? }` or
   * `{ kind: 'redis', url }`, and their options (lib/cluster/options.ts). Every call then
   * goes to the cluster bus, which carries events between processes on the engine.
   */
  transport?: undefined | { kind: 'nats' | 'redis'; [k: string]: unknown };
  /** A Metrics instance (or any MetricsSink): the bus's counters, queue depths and latency (lib/bus/bus-metrics.ts). */
  metrics?: MetricsSink;
}

/** The extra of a JSON-bytes event without headers: shared, never mutated. */
const JSON_EXTRA: EventExtra = Object.freeze({ json: true });

/** Parses a publish's options, and checks that JSON-bytes data is bytes. */
function parseFor(data: unknown, opts: PublishOptions, where: string, keys: ReadonlySet<string>): ParsedPublish {
  const o = parsePublishOptions(opts, where, keys);
  if (o.json) checkJsonData(data, where);
  return o;
}

/** The bus clock's scale: epoch milliseconds, fractional. */
function clock(): number {
  return performance.timeOrigin + performance.now();
}

export class Bus {
  readonly #lanes: LaneQueue[];
  readonly #overflow: Overflow;
  readonly #routes = new RouteTable();
  #nextSub = 1;
  #nextEvent = 1;
  #closed = false;
  #closing: Promise<void> | undefined;
  #scheduled = false;
  #blocked = false; // a lane stopped at an event some subscription cannot take yet
  readonly #stopped = [false, false, false, false];
  #running = false; // inside a delivery round
  #microRounds = MICRO_ROUNDS; // microtask rounds left in this event-loop turn
  #cycleLane = 0; // the weighted cycle's position: the lane being served...
  #cycleCredit = WEIGHT[0] * ROUND; // ...and how many more events it may take in this cycle
  // accounting
  #published = 0;
  #delivered = 0;
  #dropped = 0;
  /** Bit i: lane i sheds its new events (shed()); part of #dropped. */
  #shedMask = 0;
  #shed = 0;
  #failed = 0;
  #unrouted = 0;
  #inFlight = 0;
  #refused = 0; // publishes not accepted: lane full under 'wait' or 'reject'
  #metrics: BusMetrics | undefined;
  readonly #lanePublished = [0, 0, 0, 0];
  readonly #laneDropped = [0, 0, 0, 0];
  // the bus clock: performance.now() costs ~100 ns on this class of VM, so it is read
  // once per delivery round and once every 256 publishes, never per event.
  #now = performance.timeOrigin + performance.now();
  #ticks = 0;
  readonly #hist: NativeHistogram;
  readonly #latency: HistogramRecorder;
  #roomWaiters: Array<Array<() => void>> = [[], [], [], []];
  #drainWaiters: Array<() => void> = [];
  readonly #pools = new Set<WorkerPool>();
  #lastSubject: string | undefined;
  /** Keys with queued events: how many, and the one lane that holds them all. */
  readonly #keys = new Map<string, KeyState>();
  #lastRoute: Route | undefined;
  // Per subject prefix (first token), bounded: MAX_PREFIXES names, then 'other' (the
  // last slot). A route caches its index, so a publish pays one array increment.
  readonly #prefixIndex = new Map<string, number>();
  readonly #prefixes: PrefixCounts = {
    names: [],
    published: new Array<number>(MAX_PREFIXES + 1).fill(0),
    dropped: new Array<number>(MAX_PREFIXES + 1).fill(0),
    failed: new Array<number>(MAX_PREFIXES + 1).fill(0),
  };
  // The stage breakdown (metrics only): deliveries left until the next timed one.
  #sampleIn = Number.POSITIVE_INFINITY;
  /** A metrics sink is set: keep the per-prefix counts (a publish without one skips them). */
  #counting = false;
  #stages: StageSamples | undefined;
  #roundStart = 0;
  #nextPool = 0;
  readonly #poolIds = new Map<WorkerPool, string>();

  /** Set when the bus runs on a cluster transport: every public call goes there. */
  readonly #cluster: ClusterBus | undefined;

  constructor(opts: BusOptions = {}) {
    checkOptions(opts, 'Bus(options)', BUS_KEYS);
    const capacity = opts.capacity === undefined ? 65536 : opts.capacity;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 2 ** 30) {
      throw invalidArgument(`Bus(options): capacity must be an integer from 1 to 2^30, got ${String(capacity)}`);
    }
    const overflow = opts.overflow === undefined ? 'wait' : opts.overflow;
    if (!OVERFLOWS.includes(overflow)) {
      throw invalidArgument(`Bus(options): overflow must be one of ${OVERFLOWS.join(', ')}, got ${String(overflow)}`);
    }
    if (opts.metrics !== undefined && !isMetricsSink(opts.metrics)) {
      throw invalidArgument(`Bus(options): metrics must be a Metrics instance (or any object with counter, gauge and histogram factories), got ${describeType(opts.metrics)}`);
    }
    this.#overflow = overflow;
    if (opts.transport !== undefined) {
      // A cluster bus: the engine carries every event; this object only forwards.
      this.#cluster = new ClusterBus(opts.transport, capacity, overflow, opts.metrics);
      this.#lanes = [];
      this.#hist = undefined as unknown as NativeHistogram;
      this.#latency = undefined as unknown as HistogramRecorder;
      return;
    }
    this.#lanes = PRIORITIES.map(() => new LaneQueue(capacity));
    this.#hist = new (native().Histogram)();
    this.#latency = new HistogramRecorder(this.#hist);
    if (opts.metrics !== undefined) {
      this.#stages = new StageSamples();
      this.#sampleIn = STAGE_SAMPLE_EVERY;
      this.#counting = true;
      this.#metrics = new BusMetrics(opts.metrics, {
        stats: () => this.stats(),
        prefixes: this.#prefixes,
        stages: this.#stages,
        pools: () => this.#poolSamples(),
      });
    }
  }

  // ---------------------------------------------------------------- publishing

  /** Enqueues one event; false when it was not enqueued (full under 'wait', or dropped as newest). */
  publish(subject: string, data?: unknown, opts?: PublishOptions): boolean {
    if (this.#cluster !== undefined) return this.#cluster.publish(subject, data, opts);
    if (this.#closed) throw new MyelinError('ERR_BUS_CLOSED', `publish('${String(subject)}'): the bus is closed`);
    // A one-entry cache in front of the route table: hot loops publish one subject.
    let route = this.#lastRoute;
    if (subject !== this.#lastSubject || route === undefined || route.version !== this.#routes.version) {
      route = this.#route(subject, 'publish');
      this.#lastSubject = subject;
      this.#lastRoute = route;
    }
    const ok =
      opts === undefined
        ? this.#enqueue(route, data, 2, undefined, undefined)
        : this.#enqueueWith(route, data, parseFor(data, opts, 'publish', PUBLISH_KEYS));
    if (!ok && this.#overflow === 'wait') this.#refused++;
    return ok;
  }

  /**
   * Sheds load: while on, new events of `priority` and of every lower lane are dropped
   * as they are published (counted in `dropped` and `stats().shed`; publish returns
   * true, a request fails with ERR_BUS_FULL), so the higher lanes keep the capacity.
   * Events already queued are still delivered. The metrics layer's `shed-load` alert
   * action switches it on while the alert fires.
   */
  shed(priority: Exclude<Priority, 'critical'>, on: boolean): void {
    if (this.#cluster !== undefined) throw invalidArgument('shed(): load shedding by priority is an in-memory bus feature; a cluster transport has one outbox');
    const lane = PRIORITIES.indexOf(priority);
    if (lane < 1) throw invalidArgument(`shed(priority): priority must be 'high', 'normal' or 'low', got ${describeType(priority)}`);
    if (typeof on !== 'boolean') throw invalidArgument(`shed(priority, on): on must be a boolean, got ${describeType(on)}`);
    const bits = (0xf << lane) & 0xf;
    this.#shedMask = on ? this.#shedMask | bits : this.#shedMask & ~bits;
  }

  /** Resolves once the event is enqueued, waiting for room under overflow 'wait'. */
  publishAsync(subject: string, data?: unknown, opts?: PublishOptions): Promise<void> {
    if (this.#cluster !== undefined) return this.#cluster.publishAsync(subject, data, opts);
    let o: ParsedPublish;
    try {
      o = opts === undefined ? DEFAULT_PUBLISH : parseFor(data, opts, 'publishAsync', PUBLISH_KEYS);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#publishAsync(subject, data, o);
  }

  /** publishAsync with its options parsed (also what a worker's ctx.publishAsync ends in). */
  async #publishAsync(subject: string, data: unknown, o: ParsedPublish): Promise<void> {
    if (this.#closed) throw new MyelinError('ERR_BUS_CLOSED', `publishAsync('${String(subject)}'): the bus is closed`);
    let route = this.#route(subject, 'publishAsync');
    for (;;) {
      if (this.#enqueueWith(route, data, o)) return;
      if (this.#overflow !== 'wait') return; // dropped as newest: counted, not lost
      await this.#room(o.lane);
      if (this.#closed) throw new MyelinError('ERR_BUS_CLOSED', `publishAsync('${subject}'): the bus closed while waiting for room`);
      route = this.#route(subject, 'publishAsync'); // subscriptions may have changed meanwhile
    }
  }

  /** publish with its options parsed: a worker's ctx.publish, validated in the worker. */
  #publishParsed(subject: string, data: unknown, o: ParsedPublish): boolean {
    if (this.#closed) throw new MyelinError('ERR_BUS_CLOSED', `publish('${subject}'): the bus is closed`);
    const ok = this.#enqueueWith(this.#route(subject, 'publish'), data, o);
    if (!ok && this.#overflow === 'wait') this.#refused++;
    return ok;
  }

  /**
   * Enqueues the items in order and returns how many were enqueued. Nothing is
   * enqueued unless every item is valid (subject, priority, key, headers). Under
   * 'reject' the batch is all or nothing: ERR_BUS_FULL before any is enqueued when
   * the lanes cannot take all of it. Under 'wait' it stops at the first item whose
   * lane is full, so items[0..n) were enqueued and items[n..] were not.
   */
  publishBatch(items: ReadonlyArray<BatchItem>): number {
    if (this.#cluster !== undefined) return this.#cluster.publishBatch(items);
    if (this.#closed) throw new MyelinError('ERR_BUS_CLOSED', 'publishBatch: the bus is closed');
    if (!Array.isArray(items)) throw invalidArgument(`publishBatch(items): items must be an array, got ${describeType(items)}`);
    const n = items.length;
    const routes = new Array<Route>(n);
    const parsed = new Array<ParsedPublish>(n);
    for (let i = 0; i < n; i++) {
      const it = items[i];
      const where = `publishBatch: items[${i}]`;
      if (it === null || typeof it !== 'object') throw invalidArgument(`${where} must be an object, got ${describeType(it)}`);
      parsed[i] = parseFor(it.data, it, where, BATCH_KEYS);
      routes[i] = this.#route(it.subject, where);
    }
    if (this.#overflow === 'reject') this.#reserveBatch(routes, parsed);
    let done = 0;
    for (let i = 0; i < n; i++) {
      const o = parsed[i];
      if (this.#enqueueWith(routes[i], items[i].data, o)) done++;
      else if (this.#overflow === 'wait') {
        this.#refused += n - i;
        break;
      }
    }
    return done;
  }

  /** Under 'reject': throws ERR_BUS_FULL unless every lane has room for its share of the batch. */
  #reserveBatch(routes: Route[], parsed: ParsedPublish[]): void {
    const need = [0, 0, 0, 0];
    // The lane each item will join, keys' lowest lanes included (see #enqueue).
    const keyLane = new Map<string, number>();
    for (const o of parsed) {
      let lane = o.lane;
      if (o.key !== undefined) {
        const held = keyLane.get(o.key) ?? this.#keys.get(o.key)?.lane;
        if (held !== undefined) lane = held;
        keyLane.set(o.key, lane);
      }
      need[lane]++;
    }
    for (let l = 0; l < 4; l++) {
      const q = this.#lanes[l];
      if (need[l] > q.capacity - q.size) {
        this.#refused++;
        throw new MyelinError('ERR_BUS_FULL', `publishBatch: the ${PRIORITIES[l]} lane has room for ${q.capacity - q.size} events, the batch needs ${need[l]} (nothing was enqueued; ${routes.length} items)`);
      }
    }
  }

  #route(subject: string, where: string): Route {
    if (typeof subject !== 'string') throw invalidArgument(`${where}: subject must be a string, got ${describeType(subject)}`);
    try {
      return this.#routes.get(subject);
    } catch (err) {
      throw err instanceof MyelinError ? err : invalidArgument(`${where}: invalid subject '${subject}'`, err);
    }
  }

  #enqueueWith(route: Route, data: unknown, o: ParsedPublish): boolean {
    const extra = o.headers !== undefined ? { headers: o.headers, json: o.json } : o.json ? JSON_EXTRA : undefined;
    return this.#enqueue(route, data, o.lane, o.key, extra);
  }

  /** Puts one event in its lane, applying the overflow policy; false: not enqueued. */
  #enqueue(route: Route, data: unknown, lane: number, key: string | undefined, extra: EventExtra | undefined): boolean {
    const reply = extra?.reply;
    if (this.#shedMask !== 0 && ((this.#shedMask >>> lane) & 1) !== 0) {
      // Shedding: accepted and dropped at once, counted; a request fails fast.
      this.#published++;
      if (this.#counting) this.#prefixes.published[this.#routePrefix(route)]++;
      this.#lanePublished[lane]++;
      this.#dropped++;
      if (this.#counting) this.#prefixes.dropped[this.#routePrefix(route)]++;
      this.#laneDropped[lane]++;
      this.#shed++;
      reply?.abort(new MyelinError('ERR_BUS_FULL', `request to '${route.subject}' dropped: the ${PRIORITIES[lane]} lane is shedding load`));
      return true;
    }
    const solo = route.solo;
    if (solo !== undefined && solo.direct !== undefined && reply === undefined && this.#lanesEmpty() && !solo.closed && !deliverChannel.hasSubscribers) {
      if (this.#publishDirect(route, solo.direct, data, lane, key, extra)) return true;
    }
    let keyState: KeyState | undefined;
    if (key !== undefined) {
      // An event may not overtake an earlier event of its key, nor be overtaken by a
      // later one: while its key has events queued, it joins their lane (the weighted
      // cycle may serve any lane first, so two lanes would not keep their order).
      keyState = this.#keys.get(key);
      if (keyState !== undefined) lane = keyState.lane;
    }
    const q = this.#lanes[lane];
    if (q.size >= q.capacity) {
      switch (this.#overflow) {
        case 'wait':
          return false; // the caller counts a refusal; publishAsync waits instead
        case 'reject':
          this.#refused++;
          throw new MyelinError('ERR_BUS_FULL', `publish('${route.subject}'): the ${PRIORITIES[lane]} lane is full (${q.capacity} events)`);
        case 'drop-newest':
          this.#published++;
          if (this.#counting) this.#prefixes.published[this.#routePrefix(route)]++;
          this.#lanePublished[lane]++;
          this.#dropped++;
          if (this.#counting) this.#prefixes.dropped[this.#routePrefix(route)]++;
          this.#laneDropped[lane]++;
          reply?.abort(new MyelinError('ERR_BUS_FULL', `request to '${route.subject}' dropped: lane full`));
          return false;
        case 'drop-oldest': {
          const h = q.headSlot();
          q.extra[h]?.reply?.abort(new MyelinError('ERR_BUS_FULL', `request to '${q.route[h]?.subject}' dropped: lane full`));
          const oldKey = q.key[h];
          if (oldKey !== undefined) this.#keyLeft(oldKey);
          if (this.#counting) this.#prefixes.dropped[this.#routePrefix(q.route[h] as Route)]++;
          q.shift();
          this.#dropped++;
          this.#laneDropped[lane]++;
          break;
        }
      }
    }
    const i = q.pushSlot();
    q.route[i] = route;
    q.data[i] = data;
    q.key[i] = key;
    q.extra[i] = extra;
    q.id[i] = this.#nextEvent++;
    // The clock is read every 256 publishes, and by the first publish after the bus
    // went idle, whose cached time could be arbitrarily old: scheduling the next
    // round reads it (one clock read, not two, per round).
    if (!this.#scheduled) this.#schedule(true);
    else if (++this.#ticks >= 256) this.#tick();
    q.time[i] = this.#now;
    if (key !== undefined) {
      keyState ??= this.#keys.get(key); // a drop-oldest above may have removed it
      if (keyState === undefined) this.#keys.set(key, { lane, queued: 1 });
      else keyState.queued++;
    }
    this.#published++;
    if (this.#counting) this.#prefixes.published[this.#routePrefix(route)]++;
    this.#lanePublished[lane]++;
    if (publishChannel.hasSubscribers) publishChannel.publish({ subject: route.subject, data, key, priority: PRIORITIES[lane], id: q.id[i] });
    return true;
  }

  #lanesEmpty(): boolean {
    const l = this.#lanes;
    return l[0].size === 0 && l[1].size === 0 && l[2].size === 0 && l[3].size === 0;
  }

  /**
   * The publish-time path to a worker pool: a route whose only target is one pool
   * subscription hands the event to the pool now (lib/bus/worker-pool.ts #accept),
   * which packs it into a thread's next batch; no lane slot, event object or ticket.
   * Taken only while every lane is empty, so the event overtakes nothing: no event
   * of its key is queued (the key table tracks queued events only), no higher-priority
   * event waits, and a lane-path event for the pool has already been handed to it,
   * in order. The pool refuses (false) when its backlog is at its bound or it is
   * closing; the event then takes the lane path, where the overflow policy applies.
   * A batch with several priorities is written highest first (EventChunk.byPriority).
   * Accounting: published and in flight now; delivered or failed when the worker's
   * DONE count covers it (deliveredDirect, failDirect). Requests (replies) and a bus
   * with `myelin:bus:deliver` subscribers keep the lane path.
   */
  #publishDirect(route: Route, direct: DirectFn, data: unknown, lane: number, key: string | undefined, extra: EventExtra | undefined): boolean {
    // The clock: read once per publishing task (the first direct publish after the
    // task's microtasks ran) and every 256 publishes, as the lane path does per round.
    if (!this.#clockFresh) {
      this.#clockFresh = true;
      this.#tick();
      queueMicrotask(this.#clockStale);
    } else if (++this.#ticks >= 256) this.#tick();
    const id = this.#nextEvent;
    if (!direct(route.subject, data, key, extra?.headers, extra?.json === true, lane, id, this.#now)) return false;
    this.#nextEvent++;
    this.#published++;
    if (this.#counting) this.#prefixes.published[this.#routePrefix(route)]++;
    this.#lanePublished[lane]++;
    this.#inFlight++;
    if (publishChannel.hasSubscribers) publishChannel.publish({ subject: route.subject, data, key, priority: PRIORITIES[lane], id });
    return true;
  }

  #clockFresh = false;
  readonly #clockStale = (): void => {
    this.#clockFresh = false;
  };

  /** `n` events a pool took at publish time were handled. */
  #deliveredDirect(n: number): void {
    this.#delivered += n;
    this.#inFlight -= n;
    // a lane may be stopped at the pool's bound, which the worker just made room under
    if (this.#blocked && !this.#scheduled) this.#schedule();
    this.#checkDrained();
  }

  /** One event a pool took at publish time failed: counted and dead-lettered, as on the lane path. */
  #failDirect(ev: BusEvent, err: unknown): void {
    this.#inFlight--;
    this.#failed++;
    this.#fail(ev, err, undefined);
    if (this.#blocked && !this.#scheduled) this.#schedule();
    this.#checkDrained();
  }

  /** A queued event of `key` left its lane (delivered or dropped). */
  #keyLeft(key: string): void {
    const k = this.#keys.get(key);
    if (k !== undefined && --k.queued === 0) this.#keys.delete(key);
  }

  /** The per-prefix slot of a subject: its first token's, or 'other' (MAX_PREFIXES) once
   * MAX_PREFIXES tokens have a slot. */
  #prefixOf(subject: string): number {
    const dot = subject.indexOf('.');
    const token = dot < 0 ? subject : subject.slice(0, dot);
    let i = this.#prefixIndex.get(token);
    if (i === undefined) {
      const names = this.#prefixes.names;
      if (names.length >= MAX_PREFIXES) return MAX_PREFIXES;
      i = names.length;
      names.push(token);
      this.#prefixIndex.set(token, i);
    }
    return i;
  }

  #routePrefix(route: Route): number {
    const p = route.prefix;
    return p >= 0 ? p : (route.prefix = this.#prefixOf(route.subject));
  }

  #tick(): void {
    this.#ticks = 0;
    this.#now = performance.timeOrigin + performance.now();
  }

  /**
   * Schedules a delivery round. A publish that finds the bus idle (`soon`) gets its
   * round as a microtask, at the end of the publisher's own turn, instead of a whole
   * event-loop turn later; everything else (a round cut short, a publish from inside
   * a round, a settle that unblocks a lane) waits for setImmediate, so I/O always gets
   * its turn. Microtask rounds are limited to MICRO_ROUNDS per event-loop turn: async
   * handlers that publish to each other after an await would otherwise chain
   * microtask rounds forever and starve timers and sockets.
   */
  #schedule(soon = false): void {
    this.#scheduled = true;
    this.#tick();
    if (soon && !this.#running && this.#microRounds > 0) {
      if (this.#microRounds-- === MICRO_ROUNDS) setImmediate(this.#refill);
      queueMicrotask(this.#run);
    } else {
      setImmediate(this.#run);
    }
  }

  readonly #refill = (): void => {
    this.#microRounds = MICRO_ROUNDS;
  };

  #wakeRoomWaiters(): void {
    const all = this.#roomWaiters;
    this.#roomWaiters = [[], [], [], []];
    for (const w of all) for (const f of w) f();
  }

  #room(lane: number): Promise<void> {
    return new Promise((resolve) => this.#roomWaiters[lane].push(resolve));
  }

  // ---------------------------------------------------------------- delivery

  readonly #run = (): void => {
    this.#running = true;
    try {
      this.#round();
    } finally {
      this.#running = false;
    }
  };

  #round(): void {
    this.#scheduled = false;
    this.#blocked = false;
    this.#tick();
    this.#roundStart = this.#now;
    const lanes = this.#lanes;
    let budget = BUDGET;
    const roundEnd = this.#now + ROUND_MS;
    const stopped = this.#stopped; // lanes stopped at an event a subscription cannot take yet
    stopped[0] = stopped[1] = stopped[2] = stopped[3] = false;
    // The weighted cycle resumes where the last round stopped (a round cut short by
    // its budget or its time must not hand the next round back to 'critical', or a
    // busy higher lane would starve the lower ones).
    let l = this.#cycleLane;
    let credit = this.#cycleCredit;
    let idle = 0; // lanes in a row that delivered nothing: 4 ends the round
    while (budget > 0 && idle < 4) {
      const q = lanes[l];
      let served = 0;
      if (!stopped[l] && q.size > 0) {
        let n = Math.min(credit, q.size, budget);
        const priority = PRIORITIES[l];
        while (n-- > 0) {
          const i = q.headSlot();
          const route = q.route[i] as Route;
          const extra = q.extra[i];
          // A pool-only route: the event goes from its lane columns straight into the
          // pool's next batch, with no event object or ticket (see #publishDirect); a
          // pool at its bound stops the lane, as a full subscription does.
          const pool = route.solo;
          if (pool !== undefined && pool.direct !== undefined && !pool.closed && extra?.reply === undefined && !deliverChannel.hasSubscribers) {
            const key = q.key[i];
            if (!pool.direct(route.subject, q.data[i], key, extra?.headers, extra?.json === true, l, q.id[i], q.time[i])) {
              stopped[l] = true;
              this.#blocked = true;
              break;
            }
            if (key !== undefined) this.#keyLeft(key);
            q.shift();
            this.#inFlight++;
            budget--;
            served++;
            if ((budget & 63) === 0) {
              this.#tick();
              if (this.#now >= roundEnd) budget = n = 0;
            }
            continue;
          }
          // The common case gets a short path: one plain subscription with nothing in
          // flight or waiting, which can always take the event now.
          const targets = route.targets;
          let solo: Subscription | undefined;
          if (targets.length === 1) {
            const t = targets[0];
            if (!(t instanceof QueueGroup) && t.inflight === 0 && t.pending.length === 0 && t.full === undefined && !t.closed) solo = t;
          }
          if (solo === undefined && !this.#canTake(route)) {
            stopped[l] = true;
            this.#blocked = true;
            break;
          }
          if (solo !== undefined && extra === undefined && !deliverChannel.hasSubscribers) {
            // A run of plain events for one idle plain subscription: one tight loop.
            const taken = this.#deliverRun(q, l, route, solo, n + 1, budget, roundEnd);
            budget -= taken;
            served += taken;
            n -= taken - 1;
            if (this.#cut) {
              this.#cut = false;
              budget = n = 0;
            }
            continue;
          }
          const key = q.key[i];
          const time = q.time[i];
          const ev: BusEvent =
            extra?.json === true
              ? new JsonBusEvent(route.subject, q.data[i] as Uint8Array, key, priority, extra.headers, q.id[i], time)
              : {
                  subject: route.subject,
                  data: q.data[i],
                  key,
                  priority,
                  headers: extra?.headers,
                  id: q.id[i],
                  time,
                };
          if (key !== undefined) this.#keyLeft(key);
          q.shift();
          budget--;
          served++;
          if ((budget & 63) === 0) {
            this.#tick();
            if (this.#now >= roundEnd) budget = n = 0; // the rest waits for the next round
          }
          if (route.measure) {
            const lat = (this.#now - time) * 1e6;
            this.#latency.recordTrusted(lat > 0 ? lat : 0);
          }
          if (deliverChannel.hasSubscribers) deliverChannel.publish(ev);
          // Due a timed delivery: the first handler this event starts now is timed (one
          // parked behind a busy subscription is not; the next event is due instead).
          const timed = this.#stages !== undefined && --this.#sampleIn <= 0;
          if (solo === undefined) this.#dispatch(route, ev, extra, timed);
          else {
            const r = this.#invoke(solo, ev, extra, undefined, timed);
            if (r === OK) this.#delivered++;
            else if (r === FAILED) this.#failed++;
            else this.#inFlight++;
          }
        }
      }
      credit -= served;
      // Cut short with credit left on a lane that still has events: resume it next round.
      if (budget === 0 && credit > 0 && !stopped[l] && q.size > 0) break;
      idle = served > 0 ? 0 : idle + 1;
      l = (l + 1) & 3;
      credit = WEIGHT[l] * ROUND;
    }
    this.#cycleLane = l;
    this.#cycleCredit = credit;
    for (let l = 0; l < 4; l++) {
      const w = this.#roomWaiters[l];
      if (w.length > 0 && lanes[l].size < lanes[l].capacity) {
        this.#roomWaiters[l] = [];
        for (const f of w) f();
      }
    }
    if (!this.#scheduled && !this.#blocked && (lanes[0].size || lanes[1].size || lanes[2].size || lanes[3].size)) this.#schedule();
    this.#checkDrained();
  }

  /** Set by #deliverRun when the round's time ran out inside a run. */
  #cut = false;

  /**
   * Delivers the run of events at the head of lane `q` that share `route` and carry no
   * extra (headers, reply, JSON bytes), to `sub`, the route's one plain subscription,
   * idle when called: at most `max` events (>= 1; the head is known to qualify). Each
   * event still gets its own object (handlers may keep it: the bench does), but the
   * route's checks and the dispatch are paid once per run, and a handler that returns
   * undefined costs one call. Counts stay per event (a field increment each, no
   * measurable cost), so stats() read inside a handler is off by the event in hand
   * only, as on the general path. A handler that returns anything else goes through
   * #settleResult; one that went async ends the run (the subscription is no longer
   * idle, so the round's checks apply again). Returns how many events left the lane;
   * sets #cut when the round's time ran out.
   */
  #deliverRun(q: LaneQueue, l: number, route: Route, sub: Subscription, max: number, budget: number, roundEnd: number): number {
    const handler = sub.handler;
    const subject = route.subject;
    const priority = PRIORITIES[l];
    const measure = route.measure;
    const wantsReply = sub.keyAffinity ? false : undefined;
    const timing = this.#stages !== undefined;
    let taken = 0;
    while (taken < max) {
      const i = q.headSlot();
      // a handler may have unsubscribed, published a different event or attached a
      // diagnostics subscriber: each ends the run, the round's own path takes over
      if (taken > 0 && (q.size === 0 || q.route[i] !== route || q.extra[i] !== undefined || sub.closed || deliverChannel.hasSubscribers)) break;
      const key = q.key[i];
      const time = q.time[i];
      const ev: BusEvent = { subject, data: q.data[i], key, priority, headers: undefined, id: q.id[i], time };
      if (key !== undefined) this.#keyLeft(key);
      q.shift();
      taken++;
      if (((budget - taken) & 63) === 0) {
        this.#tick();
        if (this.#now >= roundEnd) {
          this.#cut = true;
          max = taken; // deliver this one, then stop
        }
      }
      if (measure) {
        const lat = (this.#now - time) * 1e6;
        this.#latency.recordTrusted(lat > 0 ? lat : 0);
      }
      let result: unknown;
      try {
        if (!timing || --this.#sampleIn > 0) result = wantsReply === undefined ? handler(ev) : handler(ev, false);
        else result = this.#timedCall(handler, ev, wantsReply);
      } catch (err) {
        this.#fail(ev, err, undefined);
        this.#failed++;
        continue;
      }
      if (result === undefined) {
        this.#delivered++;
        continue;
      }
      const r = this.#settleResult(sub, ev, undefined, undefined, result);
      if (r === OK) this.#delivered++;
      else {
        this.#inFlight++;
        break;
      }
    }
    return taken;
  }

  /**
   * Calls a handler and records the event's stages (a timed delivery): queue wait (publish
   * -> its round), dispatch (round -> handler start), handler (start -> return, or ->
   * settlement when it returns a native Promise; a worker pool's ticket, none).
   */
  #timedCall(handler: Handler, ev: BusEvent, wantsReply: false | undefined): unknown {
    const t0 = this.#sampleNow();
    let result: unknown;
    try {
      result = wantsReply === undefined ? handler(ev) : handler(ev, false);
    } catch (err) {
      this.#stageSample(ev.time, this.#roundStart, t0, clock());
      throw err;
    }
    this.#timedResult(ev, t0, result);
    return result;
  }

  /** Records a timed delivery whose handler started at t0 and returned `result`. */
  #timedResult(ev: BusEvent, t0: number, result: unknown): void {
    const start = this.#roundStart;
    if (result instanceof Promise) {
      const done = () => this.#stageSample(ev.time, start, t0, clock());
      result.then(done, done);
    } else if (!(result instanceof Ticket)) {
      this.#stageSample(ev.time, start, t0, clock());
    }
  }

  /** Starts the next sampling interval; the clock now. */
  #sampleNow(): number {
    const t = clock();
    const gap = t - this.#lastTimed;
    this.#lastTimed = t;
    if (gap < 0.25) {
      if (this.#stride < MAX_STRIDE) this.#stride *= 2;
    } else if (gap > 1 && this.#stride > STAGE_SAMPLE_EVERY) {
      this.#stride /= 2;
    }
    this.#sampleIn = this.#stride;
    return t;
  }

  /** Deliveries per timed one, and when the last was timed (bus clock, ms). */
  #stride = STAGE_SAMPLE_EVERY;
  #lastTimed = 0;

  /** One timed delivery's stages; times in epoch ms (the bus clock's scale). */
  #stageSample(time: number, start: number, t0: number, t1: number): void {
    const s = this.#stages;
    if (s === undefined) return;
    s.add(0, start > time ? (start - time) / 1000 : 0);
    s.add(1, t0 > start ? (t0 - start) / 1000 : 0);
    s.add(2, t1 > t0 ? (t1 - t0) / 1000 : 0);
  }

  /** Whether every target of a route can take one more delivery now. */
  #canTake(route: Route): boolean {
    const t = route.targets;
    for (let k = 0; k < t.length; k++) {
      const x = t[k];
      if (x instanceof QueueGroup) {
        for (const m of x.members) if (m.pending.length >= m.maxPending || m.full?.()) return false;
      } else if (x.pending.length >= x.maxPending || (x.full !== undefined && x.full())) {
        return false;
      }
    }
    return true;
  }

  #dispatch(route: Route, ev: BusEvent, extra: EventExtra | undefined, timed: boolean): void {
    const targets = route.targets;
    const reply = extra?.reply;
    if (targets.length === 0) {
      this.#dropped++;
      if (this.#counting) this.#prefixes.dropped[this.#routePrefix(route)]++;
      this.#unrouted++;
      reply?.abort(new MyelinError('ERR_NO_RESPONDERS', `no subscription serves '${ev.subject}'`));
      return;
    }
    let tracker: Tracker | undefined;
    let failed = false;
    let reached = 0;
    for (let k = 0; k < targets.length; k++) {
      const t = targets[k];
      const sub = t instanceof QueueGroup ? t.pick(ev.key) : t;
      // The route was resolved at publish time; a subscription that left since then
      // gets nothing more (a group passes the event to a member still there).
      if (sub === undefined || sub.closed) continue;
      reached++;
      reply?.expect();
      if (
        sub.pending.length > 0 ||
        sub.inflight >= sub.concurrency ||
        (ev.key !== undefined && sub.inflight > 0 && !sub.keyAffinity && sub.keysInFlight.has(ev.key))
      ) {
        tracker ??= { pending: 0, failed: false };
        tracker.pending++;
        sub.pending.push({ ev, tracker, extra });
        continue;
      }
      const r = this.#invoke(sub, ev, extra, tracker, timed);
      timed = false;
      if (r === FAILED) failed = true;
      else if (r !== OK) tracker = r;
    }
    if (reached === 0) reply?.abort(new MyelinError('ERR_NO_RESPONDERS', `no subscription serves '${ev.subject}'`));
    else reply?.release(); // the dispatcher's own hold: every delivery is counted now
    if (tracker === undefined) {
      if (failed) this.#failed++;
      else if (reached > 0) this.#delivered++;
      else {
        this.#dropped++;
        if (this.#counting) this.#prefixes.dropped[this.#routePrefix(route)]++;
        this.#unrouted++;
      }
    } else {
      if (failed) tracker.failed = true;
      this.#inFlight++;
    }
  }

  /**
   * Calls a handler. Returns OK or FAILED when it settled synchronously, or the tracker
   * (created if needed, its count raised) when it returned a promise.
   */
  #invoke(sub: Subscription, ev: BusEvent, extra: EventExtra | undefined, tracker: Tracker | undefined, timed = false): Tracker | typeof OK | typeof FAILED {
    let result: unknown;
    const t0 = timed ? this.#sampleNow() : 0;
    try {
      // A worker pool (keyAffinity) also learns whether the event wants a reply, so
      // replies cross back only for requests.
      result = sub.keyAffinity ? sub.handler(ev, extra?.reply !== undefined) : sub.handler(ev);
    } catch (err) {
      if (t0 !== 0) this.#stageSample(ev.time, this.#roundStart, t0, clock());
      this.#fail(ev, err, extra);
      return FAILED;
    }
    if (t0 !== 0) this.#timedResult(ev, t0, result);
    if (result === undefined) {
      extra?.reply?.answer(undefined);
      return OK;
    }
    return this.#settleResult(sub, ev, extra, tracker, result);
  }

  /** What #invoke does with a handler's result other than undefined. */
  #settleResult(sub: Subscription, ev: BusEvent, extra: EventExtra | undefined, tracker: Tracker | undefined, result: unknown): Tracker | typeof OK {
    if (result instanceof Ticket) {
      const tr = tracker ?? result;
      tr.pending++;
      sub.inflight++;
      result.sub = sub;
      result.tracker = tr;
      result.extra = extra;
      result.settle = this.#settleTicket;
      return tr;
    }
    if (!isThenable(result)) {
      extra?.reply?.answer(result);
      return OK;
    }
    const tr = tracker ?? { pending: 0, failed: false };
    tr.pending++;
    sub.inflight++;
    if (ev.key !== undefined && !sub.keyAffinity) sub.keysInFlight.add(ev.key);
    result.then(
      (value) => this.#settle(sub, ev, tr, extra, value, undefined, false),
      (err) => this.#settle(sub, ev, tr, extra, undefined, err, true),
    );
    return tr;
  }

  readonly #settleTicket: SettleFn = (t, value, err, isErr) =>
    this.#settle(t.sub as Subscription, t.ev, t.tracker as Tracker, t.extra, value, err, isErr);

  #settle(sub: Subscription, ev: BusEvent, tracker: Tracker, extra: EventExtra | undefined, value: unknown, err: unknown, isErr: boolean): void {
    sub.inflight--;
    if (ev.key !== undefined && !sub.keyAffinity) sub.keysInFlight.delete(ev.key);
    if (isErr) {
      tracker.failed = true;
      this.#fail(ev, err, extra);
    } else {
      extra?.reply?.answer(value);
    }
    this.#finish(tracker);
    this.#pump(sub);
    if (this.#blocked && !this.#scheduled) this.#schedule();
    sub.settled();
    this.#checkDrained();
  }

  #finish(tracker: Tracker): void {
    if (--tracker.pending === 0) {
      this.#inFlight--;
      if (tracker.failed) this.#failed++;
      else this.#delivered++;
    }
  }

  /** Starts waiting deliveries that now have a slot and a free key, in order. */
  #pump(sub: Subscription): void {
    const p = sub.pending;
    for (let k = 0; k < p.length && sub.inflight < sub.concurrency; ) {
      const { ev, tracker, extra } = p[k];
      if (ev.key !== undefined && sub.keysInFlight.has(ev.key)) {
        k++;
        continue;
      }
      p.splice(k, 1);
      // This entry was counted in tracker.pending when it was parked; an async start
      // counts itself again, so the parked count is released either way.
      if (this.#invoke(sub, ev, extra, tracker) === FAILED) tracker.failed = true;
      this.#finish(tracker);
    }
  }

  #fail(ev: BusEvent, err: unknown, extra: EventExtra | undefined): void {
    if (this.#counting) this.#prefixes.failed[this.#prefixOf(ev.subject)]++; // per failed delivery
    extra?.reply?.failed(err);
    if (failChannel.hasSubscribers) failChannel.publish({ event: ev, error: err });
    if (ev.subject.startsWith('$DLQ.')) return; // never dead-letter a dead letter
    const dlq = `$DLQ.${ev.subject}`;
    const route = this.#routes.get(dlq);
    // A JSON-bytes event is dead-lettered as its bytes (its JSON may be what failed).
    const event =
      ev instanceof JsonBusEvent
        ? { subject: ev.subject, data: ev.bytes, contentType: ev.contentType, key: ev.key, priority: ev.priority, headers: ev.headers, id: ev.id, time: ev.time }
        : { subject: ev.subject, data: ev.data, key: ev.key, priority: ev.priority, headers: ev.headers, id: ev.id, time: ev.time };
    const letter = { error: describeError(err, true), event };
    try {
      // A full lane refuses the dead letter like any publish: counted in `refused`
      // (the event itself is counted in `failed` either way).
      if (!this.#enqueue(route, letter, 2, ev.key, undefined) && this.#overflow === 'wait') this.#refused++;
    } catch {
      // ERR_BUS_FULL under 'reject', already counted; it must not escape the delivery loop
    }
  }

  // ---------------------------------------------------------------- subscribing

  subscribe(pattern: string, handler?: Handler, opts: SubscribeOptions = {}): Subscription {
    if (this.#cluster !== undefined) return this.#cluster.subscribe(pattern, handler, opts);
    if (this.#closed) throw new MyelinError('ERR_BUS_CLOSED', `subscribe('${pattern}'): the bus is closed`);
    if (typeof pattern !== 'string') throw invalidArgument(`subscribe: pattern must be a string, got ${typeof pattern}`);
    if (handler !== undefined && typeof handler !== 'function') throw invalidArgument('subscribe: handler must be a function');
    checkOptions(opts, 'subscribe', SUBSCRIBE_KEYS);
    const { queue, concurrency, signal } = opts;
    if (queue !== undefined && (typeof queue !== 'string' || queue === '')) throw invalidArgument('subscribe: queue must be a non-empty string');
    if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 2 ** 31)) {
      throw invalidArgument(`subscribe: concurrency must be an integer from 1 to 2^31, got ${String(concurrency)}`);
    }
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgument('subscribe: signal must be an AbortSignal');
    const sub = new Subscription(this.#nextSub++, pattern, handler, { queue, concurrency }, (s) => this.#routes.remove(s));
    this.#routes.add(sub);
    if (signal) {
      if (signal.aborted) sub.unsubscribe();
      else signal.addEventListener('abort', () => sub.unsubscribe(), { once: true });
    }
    return sub;
  }

  // ---------------------------------------------------------------- worker pools

  /**
   * Starts `threads` worker threads that each import `moduleUrl` and handle the events
   * of `subjects` with its default export `(event, ctx) => result` (lib/bus/worker-pool.ts).
   */
  workers(moduleUrl: string | URL, opts: WorkerPoolOptions): Promise<WorkerPool> {
    if (this.#cluster !== undefined) return this.#cluster.workers();
    if (this.#closed) return Promise.reject(new MyelinError('ERR_BUS_CLOSED', 'workers: the bus is closed'));
    const host: PoolHost = {
      histogramId: this.#hist.id,
      subscribe: (pattern, handler, { keyAffinity, ...o }) => {
        const sub = this.subscribe(pattern, handler, o);
        sub.keyAffinity = keyAffinity === true;
        return sub;
      },
      publish: (subject, data, o) => this.#publishParsed(subject, data, o),
      publishAsync: (subject, data, o) => this.#publishAsync(subject, data, o),
      overflow: this.#overflow,
      deliveredDirect: (n) => this.#deliveredDirect(n),
      failDirect: (ev, err) => this.#failDirect(ev, err),
    };
    return WorkerPool.start(host, moduleUrl, opts).then((pool) => {
      this.#pools.add(pool);
      this.#poolIds.set(pool, String(this.#nextPool++));
      return pool;
    });
  }

  /** Each pool's figures for the metrics flush (utilisation, restarts). */
  #poolSamples(): PoolSample[] {
    const out: PoolSample[] = [];
    for (const p of this.#pools) out.push({ id: this.#poolIds.get(p) ?? '?', threads: p.threads, busyMs: p.busyMs(), restarts: p.stats().restarts });
    return out;
  }

  // ---------------------------------------------------------------- request/reply

  /**
   * Publishes `data` to `subject` and resolves with the first reply: the first value
   * other than `undefined` that a handler returns. A handler that returns `undefined`
   * has not replied (as a NATS subscriber that does not respond); when every handler
   * that got the event has finished without a reply, the request resolves with
   * `undefined`, or rejects with ERR_HANDLER_FAILED if one of them failed (lib/bus/reply.ts).
   */
  request<T = unknown>(subject: string, data?: unknown, opts?: PublishOptions & { timeoutMs?: number; signal?: AbortSignal }): Promise<T> {
    if (this.#cluster !== undefined) return this.#cluster.request<T>(subject, data, opts);
    let route: Route;
    let parsed: ParsedPublish;
    let timeoutMs: number;
    let signal: AbortSignal | undefined;
    try {
      if (this.#closed) throw new MyelinError('ERR_BUS_CLOSED', `request('${String(subject)}'): the bus is closed`);
      route = this.#route(subject, 'request');
      const o = opts === undefined ? {} : opts;
      parsed = parseFor(data, o, 'request', REQUEST_KEYS);
      timeoutMs = o.timeoutMs === undefined ? 5000 : o.timeoutMs;
      if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || timeoutMs > 2 ** 31 - 1) {
        throw invalidArgument(`request: timeoutMs must be a number from 1 to 2^31-1, got ${String(timeoutMs)}`);
      }
      signal = o.signal;
      if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgument(`request: signal must be an AbortSignal, got ${describeType(signal)}`);
    } catch (err) {
      return Promise.reject(err);
    }
    if (route.targets.length === 0) return Promise.reject(new MyelinError('ERR_NO_RESPONDERS', `request('${subject}'): no subscription serves this subject`));
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const onAbort = () => finish(undefined, new MyelinError('ERR_ABORTED', `request('${subject}') aborted`, { cause: signal?.reason }));
      const timer = setTimeout(() => finish(undefined, new MyelinError('ERR_REQUEST_TIMEOUT', `request('${subject}'): no reply within ${timeoutMs} ms`)), timeoutMs);
      const finish = (value: unknown, err?: unknown) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err !== undefined) reject(err);
        else resolve(value as T);
      };
      if (signal) {
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
      }
      const extra: EventExtra = { headers: parsed.headers, json: parsed.json, reply: new Reply(subject, finish) };
      try {
        const ok = this.#enqueue(route, data, parsed.lane, parsed.key, extra);
        if (!ok && this.#overflow === 'wait') {
          this.#refused++;
          finish(undefined, new MyelinError('ERR_BUS_FULL', `request('${subject}'): the lane is full`));
        }
      } catch (err) {
        finish(undefined, err);
      }
    });
  }

  // ---------------------------------------------------------------- lifecycle

  /** Resolves when every queued event has been delivered and every delivery settled. */
  drain(): Promise<void> {
    if (this.#cluster !== undefined) return this.#cluster.drain();
    if (this.#idle()) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #idle(): boolean {
    const l = this.#lanes;
    return this.#inFlight === 0 && l[0].size === 0 && l[1].size === 0 && l[2].size === 0 && l[3].size === 0;
  }

  #checkDrained(): void {
    if (this.#drainWaiters.length === 0 || !this.#idle()) return;
    const w = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const f of w) f();
  }

  /** Stops accepting events (ERR_BUS_CLOSED), delivers what is queued, then ends every
   * subscription. Idempotent: later calls return the same promise. */
  close(): Promise<void> {
    if (this.#cluster !== undefined) return this.#cluster.close();
    if (this.#closing) return this.#closing;
    this.#closed = true;
    // publishAsync calls waiting for room can never be accepted now: release them
    // (they reject with ERR_BUS_CLOSED) rather than keep them until the drain ends.
    this.#wakeRoomWaiters();
    this.#closing = (async () => {
      await this.drain();
      await Promise.all([...this.#pools].map((p) => p.close()));
      for (const sub of [...this.#routes.subscriptions()]) sub.unsubscribe();
      this.#metrics?.close(); // a last flush, while the histogram is still open
      this.#latency.close();
      this.#hist.close();
    })();
    return this.#closing;
  }

  get closed(): boolean {
    return this.#cluster !== undefined ? this.#cluster.closed : this.#closed;
  }

  /**
   * Resolves once the bus can carry events: at once in memory; on a cluster transport
   * once connected (rejects with ERR_TRANSPORT_UNAVAILABLE when the engine could not be
   * reached within connectTimeoutMs). Publishing before then is fine: events wait in
   * the outbox.
   */
  get ready(): Promise<void> {
    return this.#cluster !== undefined ? this.#cluster.ready : Promise.resolve();
  }

  /** The cluster services (node registry, configuration, load signals); undefined in memory. */
  get cluster(): ClusterHandle | undefined {
    return this.#cluster?.cluster;
  }

  stats(): BusStats & { transport?: ClusterStats['transport'] } {
    if (this.#cluster !== undefined) return this.#cluster.stats();
    const lanes = {} as BusStats['lanes'];
    let queued = 0;
    for (let l = 0; l < 4; l++) {
      const q = this.#lanes[l];
      queued += q.size;
      lanes[PRIORITIES[l]] = { published: this.#lanePublished[l], queued: q.size, dropped: this.#laneDropped[l], capacity: q.capacity };
    }
    const latencyUs = latencyOf(this.#hist, this.#closing !== undefined);
    return {
      published: this.#published,
      delivered: this.#delivered,
      dropped: this.#dropped,
      failed: this.#failed,
      queued,
      inFlight: this.#inFlight,
      unrouted: this.#unrouted,
      refused: this.#refused,
      shed: this.#shed,
      subscriptions: this.#routes.size,
      lanes,
      latencyUs,
    };
  }
}

interface KeyState {
  lane: number;
  queued: number;
}

const OK = 0 as const;
const FAILED = 1 as const;
