// bus.workers(moduleUrl, opts): worker threads fed through shared-memory rings.
//
// Each thread has two ByteRings: events main -> worker, and failures, replies and
// publishes worker -> main. A worker handles its events in order and advances a DONE
// counter in its ring's header; the main thread settles that many deliveries from the
// front of the thread's in-flight FIFO, so there is one wake-up per batch, never a
// postMessage per event.
//
// Routing: the same key always goes to the same thread (hash of the key); a keyless
// event goes to the thread with the fewest events in flight. A pool subscribes to its
// subjects as one subscription per subject (queue group `opts.queue` if given).
//
// Publishes from workers (ctx.publish, ctx.publishAsync in lib/bus/worker-main.ts)
// come back as records on the return ring and enter the bus here, in the order each
// worker made them. A worker validates subjects and options itself, so those errors
// throw in the worker. What only the bus can decide (a full lane, a closed bus) comes
// back to the worker: ctx.publish is fire-and-forget, so its refusal is counted
// (bus.stats().refused, pool.stats().publishRefused) and reported on the
// `myelin:bus:worker-publish-refused` diagnostics channel; ctx.publishAsync waits for
// room like bus.publishAsync and learns its outcome from an acknowledgement the pool
// posts back (one message per batch of outcomes). While a worker's publishAsync waits,
// that worker's later publishes queue behind it, so its publishes keep their order.
// A DONE count never covers an event whose failure, reply or publishes have not yet
// reached the return ring, so when bus.drain() resolves every worker publish made by
// a settled delivery is already in the bus.
//
// Faults: when a worker exits or crashes, every event in flight on it is failed
// (dead-lettered by the bus with the exit code) and a new worker takes its place with
// fresh rings; events that had not reached its ring go to the new worker. A thread
// whose module keeps failing to load is not restarted more than 5 times a minute.
import diagnostics from 'node:diagnostics_channel';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { MyelinError, invalidArgument } from '../errors.js';
import { native, packageRoot } from '../internal/native.js';
import { ByteRing, R } from './byte-ring.js';
import type { Packr } from 'msgpackr';
import { CHUNK_JSON, CHUNK_REPLY, EventChunk } from './event-chunk.js';
import {
  KIND_EVENT,
  KIND_FAIL,
  KIND_REPLY,
  checkCrossable,
  createBatchCodec,
  decodeRecord,
  packChunk,
  keepBatch,
  type PackedBatch,
  writeBatch,
  writeReset,
} from './event-codec.js';
import { JsonBusEvent } from './json-event.js';
import { Ticket } from './ticket.js';
import { type ParsedPublish, WORKERS_KEYS, checkOptions, checkSubject, describeType } from './options.js';
import { hashKey } from './route-table.js';
import type { Subscription } from './subscription.js';
import type { BusEvent, Overflow, SubscribeOptions } from './types.js';
import type { Decoded } from './event-codec.js';

export interface WorkerPoolOptions {
  /** Threads to start (default: available cores). */
  threads?: number;
  /** Subject patterns this pool serves. */
  subjects: string | string[];
  /** Queue group to join, so the pool shares events with other members. */
  queue?: string;
  /** Pin thread i to allowed CPU i mod n. */
  pin?: boolean;
  /** Bytes per ring, a power of two (default 4 MiB); records up to half of it. */
  ringBytes?: number;
}

/** What the pool needs from its bus (kept narrow so the pool does not own the bus). */
export interface PoolHost {
  /** The bus's latency histogram, which workers record into at handler start. */
  histogramId: number;
  subscribe(pattern: string, handler: (ev: BusEvent, wantsReply?: boolean) => unknown, opts: SubscribeOptions & { keyAffinity?: boolean }): Subscription;
  /** bus.publish and bus.publishAsync for options a worker has already validated (parsePublishOptions). */
  publish(subject: string, data: unknown, opts: ParsedPublish): boolean;
  publishAsync(subject: string, data: unknown, opts: ParsedPublish): Promise<void>;
  readonly overflow: Overflow;
  /** `n` events written at publish time (Subscription.direct) were handled. */
  deliveredDirect(n: number): void;
  /** One event written at publish time failed (`ev` rebuilt from the pool's columns). */
  failDirect(ev: BusEvent, err: unknown): void;
}

/** A worker publish's outcome, posted back for ctx.publishAsync: [seq] or [seq, code, message]. */
export type PublishAck = [number] | [number, string, string];

const refusedChannel = diagnostics.channel('myelin:bus:worker-publish-refused');

const BATCH_MAX = 1024; // events per batch record
const PRIORITY_NUMBER: Record<string, number> = { critical: 0, high: 1, normal: 2, low: 3 };

interface Slot {
  index: number;
  worker: Worker;
  ring: ByteRing;
  ret: ByteRing;
  /** Batches written to the ring, oldest first; DONE counts their events off. */
  fifo: EventChunk[];
  /** fifo[head] is the oldest batch with events not settled, from its event `pos`. */
  head: number;
  pos: number;
  /** Events written to the ring and not settled. */
  inflight: number;
  done: number;
  /** Events waiting for room in the ring, in batches of up to BATCH_MAX (the last one fills). */
  backlog: EventChunk[];
  /** Events in backlog and staged. */
  waiting: number;
  failures: Map<number, unknown>;
  replies: Map<number, unknown>;
  alive: boolean;
  exited: Promise<number>;
  restarts: number[];
  pinned: string;
  commitQueued: boolean;
  /** This thread's stream codec (records are defined once per stream). */
  codec: Packr;
  /** The codec lost sync (a packed batch was dropped): send KIND_RESET first. */
  resetPending: boolean;
  /** A packed batch that did not fit yet; sent before anything else. */
  staged: { packed: PackedBatch; chunk: EventChunk } | undefined;
  /** This worker's publishes waiting behind a ctx.publishAsync that waits for room. */
  parked: Decoded[];
  /** Outcomes for ctx.publishAsync calls, posted in one message per flush. */
  acks: PublishAck[];
  /** The microtask that writes the backlog after a delivery round (made once per slot). */
  flush: () => void;
}

/** A publish record's options, as the worker validated them. */
function publishOptions(rec: Decoded): ParsedPublish {
  return { lane: rec.priority, key: rec.key, headers: rec.headers, json: rec.json === true };
}

/** Flags that load or resolve modules (loaders, conditions), with their values. */
const MODULE_FLAGS = /^(--import|--require|-r|--loader|--experimental-loader|--conditions|-C|--enable-source-maps|--no-warnings|--no-deprecation|--experimental-[a-z-]+|--no-experimental-[a-z-]+)(=|$)/;
const FLAGS_WITH_VALUE = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader', '--conditions', '-C']);

/**
 * The flags a worker thread starts with: the process's own (so loaders such as tsx
 * apply to handler modules), less --input-type (a `node --input-type=module -e`
 * process cannot start a worker from a file with it); with `moduleFlagsOnly`, just the
 * module-loading ones.
 */
function workerExecArgv(moduleFlagsOnly: boolean): string[] {
  const argv = process.execArgv;
  const out: string[] = [];
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    if (a.startsWith('--input-type')) continue;
    if (moduleFlagsOnly && !MODULE_FLAGS.test(a)) continue;
    out.push(a);
    if (moduleFlagsOnly && FLAGS_WITH_VALUE.has(a) && k + 1 < argv.length) out.push(argv[++k]);
  }
  return out;
}

const WORKER_MAIN = () => join(packageRoot(), 'dist', 'esm', 'bus', 'worker-main.js');

export class WorkerPool {
  readonly threads: number;
  readonly #host: PoolHost;
  readonly #moduleUrl: string;
  readonly #opts: WorkerPoolOptions;
  readonly #ringBytes: number;
  readonly #slots: Slot[] = [];
  readonly #subs: Subscription[] = [];
  #closing: Promise<void> | undefined;
  #failedWorkers = 0;
  #publishRefused = 0;
  /** Events in every slot's backlog (not yet in a ring): bounded by #limit. */
  #waiting = 0;
  readonly #limit: number;
  /** Events written at publish time and not settled; close() waits for them. */
  #direct = 0;
  #directIdle: Array<() => void> = [];
  #loadError: unknown;
  readonly #cpus: number[];

  private constructor(host: PoolHost, moduleUrl: string, opts: WorkerPoolOptions) {
    this.#host = host;
    this.#moduleUrl = moduleUrl;
    this.#opts = opts;
    this.threads = opts.threads ?? availableParallelism();
    this.#ringBytes = opts.ringBytes ?? 4 * 1024 * 1024;
    this.#cpus = opts.pin ? native().cpuInfo().allowed : [];
    this.#limit = this.threads * 16384;
  }

  static async start(host: PoolHost, moduleUrl: string | URL, opts: WorkerPoolOptions): Promise<WorkerPool> {
    // Every option is checked before any thread starts: a bad one must not leave
    // threads behind (they would keep the process alive).
    checkOptions(opts, 'workers(url, options)', WORKERS_KEYS);
    const url = moduleUrl instanceof URL ? moduleUrl.href : moduleUrl;
    if (typeof url !== 'string' || url === '') throw invalidArgument(`workers(url): url must be a module URL or path, got ${describeType(url)}`);
    const resolved = /^[a-z]+:/i.test(url) ? url : pathToFileURL(url).href;
    const subjects = typeof opts.subjects === 'string' ? [opts.subjects] : opts.subjects;
    if (!Array.isArray(subjects) || subjects.length === 0) throw invalidArgument('workers: subjects must be a pattern or a non-empty array of patterns');
    for (const pattern of subjects) checkSubject(pattern, true, 'workers: subjects');
    const threads = opts.threads === undefined ? availableParallelism() : opts.threads;
    if (!Number.isInteger(threads) || threads < 1 || threads > 1024) throw invalidArgument(`workers: threads must be an integer from 1 to 1024, got ${String(threads)}`);
    const rb = opts.ringBytes === undefined ? 4 * 1024 * 1024 : opts.ringBytes;
    if (!Number.isInteger(rb) || rb < 4096 || rb > 2 ** 30 || (rb & (rb - 1)) !== 0) {
      throw invalidArgument(`workers: ringBytes must be a power of two from 4 KiB to 1 GiB, got ${String(rb)}`);
    }
    if (opts.queue !== undefined && (typeof opts.queue !== 'string' || opts.queue === '')) throw invalidArgument('workers: queue must be a non-empty string');
    if (opts.pin !== undefined && typeof opts.pin !== 'boolean') throw invalidArgument(`workers: pin must be a boolean, got ${describeType(opts.pin)}`);
    const pool = new WorkerPool(host, resolved, { ...opts, threads, subjects });
    try {
      await Promise.all(Array.from({ length: threads }, (_, i) => pool.#spawn(i)));
      for (const pattern of subjects) {
        const sub = host.subscribe(pattern, (ev, wantsReply) => pool.#deliver(ev, wantsReply === true), { queue: opts.queue, concurrency: 2 ** 31, keyAffinity: true });
        // Events wait in the bus lanes (bounded, counted as queued) rather than in an
        // unbounded backlog here once every thread's ring is full.
        sub.full = () => pool.#waiting >= pool.#limit;
        sub.direct = (subject, data, key, headers, json, lane, id, time) => pool.#accept(subject, data, key, headers, json, lane, id, time);
        pool.#subs.push(sub);
      }
    } catch (err) {
      // A thread failed to start, or the bus refused a subscription (closed meanwhile):
      // undo everything started so far.
      for (const sub of pool.#subs) sub.unsubscribe();
      pool.#closing = Promise.resolve();
      await pool.#terminateAll();
      throw err;
    }
    return pool;
  }

  /** Starts (or restarts) thread i; resolves once its module loaded. */
  #spawn(i: number): Promise<void> {
    const ring = ByteRing.create(this.#ringBytes);
    const ret = ByteRing.create(this.#ringBytes);
    const cpu = this.#cpus.length ? this.#cpus[i % this.#cpus.length] : -1;
    const workerData = { moduleUrl: this.#moduleUrl, ring: ring.sab, ret: ret.sab, index: i, cpu, histogramId: this.#host.histogramId };
    let worker: Worker;
    try {
      // Without execArgv a worker inherits the process's flags as Node sees fit; only
      // --input-type needs taking out (see workerExecArgv).
      const inherit = !process.execArgv.some((a) => a.startsWith('--input-type'));
      worker = new Worker(WORKER_MAIN(), { execArgv: inherit ? undefined : workerExecArgv(false), workerData });
    } catch (err) {
      // Per-process and V8 flags (--max-semi-space-size, --single-threaded-gc, ...)
      // make Worker throw: keep only the flags a module graph needs.
      if ((err as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err;
      worker = new Worker(WORKER_MAIN(), { execArgv: workerExecArgv(true), workerData });
    }
    const prev = this.#slots[i];
    if (prev !== undefined) this.#busyRetired += Atomics.load(prev.ring.i32, R.BUSY) >>> 0;
    const slot: Slot = {
      index: i,
      worker,
      ring,
      ret,
      fifo: [],
      head: 0,
      pos: 0,
      inflight: 0,
      done: 0,
      backlog: prev ? prev.backlog : [],
      waiting: prev ? prev.waiting : 0,
      failures: new Map(),
      replies: new Map(),
      alive: true,
      exited: new Promise((resolve) => worker.once('exit', resolve)),
      restarts: prev ? prev.restarts : [],
      pinned: 'UNPINNED',
      commitQueued: false,
      codec: createBatchCodec(),
      resetPending: false,
      staged: undefined,
      parked: [],
      acks: [],
      flush: () => {
        slot.commitQueued = false;
        this.#flushBacklog(slot);
      },
    };
    this.#slots[i] = slot;
    const ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (m: { ready?: boolean; pinned?: string; error?: { message: string } }) => {
        if (m.ready) {
          slot.pinned = m.pinned ?? 'UNPINNED';
          resolve();
        } else if (m.error) {
          this.#loadError = m.error;
          reject(new MyelinError('ERR_INVALID_ARGUMENT', `worker module ${this.#moduleUrl} failed: ${m.error.message}`, { cause: m.error }));
        }
      });
      worker.once('error', (err) => reject(new MyelinError('ERR_INVALID_ARGUMENT', `worker ${i} failed to start: ${err.message}`, { cause: err })));
      worker.once('exit', (code) => reject(new MyelinError('ERR_INVALID_ARGUMENT', `worker ${i} exited with code ${code} before it was ready`)));
    });
    worker.once('exit', (code) => this.#onExit(slot, code));
    void this.#pumpReturns(slot);
    return ready;
  }

  // ------------------------------------------------------------------ delivery

  #pick(key: string | undefined): Slot {
    const slots = this.#slots;
    if (key !== undefined) return slots[hashKey(key) % slots.length];
    let best = slots[0];
    let load = best.inflight + best.waiting;
    for (let k = 1; k < slots.length; k++) {
      const s = slots[k];
      const l = s.inflight + s.waiting;
      if (l < load) {
        best = s;
        load = l;
      }
    }
    return best;
  }

  /** Adds an event to its slot's open batch, written after the current task (one batch and at most one wake-up per task). */
  #push(slot: Slot, subject: string, meta: number, id: number, time: number, key: string | undefined, headers: Record<string, string> | undefined, data: unknown, ticket: Ticket | undefined): void {
    const b = slot.backlog;
    let chunk = b.length > 0 ? b[b.length - 1] : undefined;
    if (chunk === undefined || chunk.n >= BATCH_MAX) b.push((chunk = new EventChunk()));
    chunk.push(subject, meta, id, time, key, headers, data, ticket);
    slot.waiting++;
    this.#waiting++;
    if (!slot.commitQueued && slot.alive) {
      // The bus delivers a round, and a publisher publishes a burst, synchronously:
      // this microtask runs right after either.
      slot.commitQueued = true;
      queueMicrotask(slot.flush);
    }
  }

  /** The lane path: the bus delivers `ev` and settles the returned ticket. */
  #deliver(ev: BusEvent, wantsReply: boolean): Ticket {
    const t = new Ticket(ev);
    const json = ev instanceof JsonBusEvent;
    const meta = PRIORITY_NUMBER[ev.priority] | (wantsReply ? CHUNK_REPLY : 0) | (json ? CHUNK_JSON : 0);
    this.#push(this.#pick(ev.key), ev.subject, meta, ev.id, ev.time, ev.key, ev.headers, json ? ev.bytes : ev.data, t);
    return t;
  }

  /**
   * The publish-time path (Subscription.direct): takes the event straight into a
   * slot's batch, with no event object or ticket, unless the pool is closing or its
   * backlog is at its bound; then the bus queues the event in its lane instead, where
   * the overflow policy applies. The bus counts the event in flight; DONE counts
   * settle it through host.deliveredDirect and host.failDirect.
   */
  #accept(subject: string, data: unknown, key: string | undefined, headers: Record<string, string> | undefined, json: boolean, lane: number, id: number, time: number): boolean {
    if (this.#waiting >= this.#limit || this.#closing !== undefined) return false;
    this.#push(this.#pick(key), subject, lane | (json ? CHUNK_JSON : 0), id, time, key, headers, data, undefined);
    this.#direct++;
    return true;
  }

  /** Settles event i of a chunk as failed: its ticket, or through the bus for a publish-time event. */
  #failOne(c: EventChunk, i: number, err: unknown): void {
    const t = c.tickets?.[i];
    if (t !== undefined) t.reject(err);
    else {
      this.#directSettled(1);
      this.#host.failDirect(c.event(i), err);
    }
  }

  #directSettled(n: number): void {
    this.#direct -= n;
    if (this.#direct === 0 && this.#directIdle.length > 0) {
      const w = this.#directIdle;
      this.#directIdle = [];
      for (const f of w) f();
    }
  }

  /** `n` events left the slot's backlog (written, or failed before they could be). */
  #unwait(slot: Slot, n: number): void {
    slot.waiting -= n;
    this.#waiting -= n;
  }

  /** Writes waiting deliveries into the slot's ring as batch records, as far as room allows. */
  #flushBacklog(slot: Slot): void {
    if (!slot.alive) return;
    const ring = slot.ring;
    const backlog = slot.backlog;
    let wrote = false;
    for (;;) {
      if (slot.resetPending) {
        if (!writeReset(ring)) break;
        slot.resetPending = false;
        wrote = true;
      }
      if (slot.staged) {
        // Packed earlier but the ring was full: these exact bytes go next, or the
        // worker's decoder would fall out of step with ours.
        if (!writeBatch(ring, slot.staged.chunk.n, slot.staged.packed)) break;
        this.#written(slot, slot.staged.chunk);
        slot.staged = undefined;
        wrote = true;
      }
      if (backlog.length === 0) break;
      let chunk = backlog.shift() as EventChunk;
      // Events of several priorities in one batch go highest first, as the lanes would
      // have served them (events written at publish time never met the lanes).
      if ((chunk.lanes & (chunk.lanes - 1)) !== 0) chunk = chunk.byPriority();
      let packed: PackedBatch;
      try {
        packed = packChunk(slot.codec, chunk);
      } catch {
        this.#resync(slot);
        // Some event cannot cross threads: fail those alone, put the rest back.
        const bad = chunk;
        const good: number[] = [];
        for (let i = 0; i < bad.n; i++) {
          try {
            checkCrossable(bad, i);
            good.push(i);
          } catch (err) {
            this.#unwait(slot, 1);
            queueMicrotask(() => this.#failOne(bad, i, err));
          }
        }
        if (good.length > 0) backlog.unshift(bad.pick(good));
        continue;
      }
      if (packed.size > ring.maxRecord) {
        this.#resync(slot);
        if (chunk.n > 1) {
          const half = chunk.n >> 1; // too big as one record: smaller batches
          backlog.unshift(chunk.slice(0, half), chunk.slice(half, chunk.n));
          continue;
        }
        const big = chunk;
        const err = new MyelinError('ERR_INVALID_ARGUMENT', `event for '${big.subjects[0]}' is ${packed.size} bytes; a worker ring holds records up to ${ring.maxRecord} (raise ringBytes)`);
        this.#unwait(slot, 1);
        queueMicrotask(() => this.#failOne(big, 0, err));
        continue;
      }
      if (writeBatch(ring, chunk.n, packed)) {
        this.#written(slot, chunk);
        wrote = true;
        continue;
      }
      // The ring is full. pack() returned a view of msgpackr's shared output buffer,
      // which the next pack by any encoder overwrites: keep a copy until it is written.
      slot.staged = { packed: keepBatch(packed), chunk };
      break;
    }
    if (wrote) ring.commit();
  }

  #written(slot: Slot, chunk: EventChunk): void {
    slot.fifo.push(chunk);
    slot.inflight += chunk.n;
    this.#unwait(slot, chunk.n);
  }

  /** A packed batch was dropped: both ends start fresh codecs. */
  #resync(slot: Slot): void {
    slot.codec = createBatchCodec();
    slot.resetPending = true;
  }

  /** The main thread's loop for one thread: returns, DONE counts, backlog. */
  async #pumpReturns(slot: Slot): Promise<void> {
    const { ring, ret } = slot;
    while (slot.alive || slot.head < slot.fifo.length) {
      // DONE first, then the records: the worker commits an event's records before its
      // DONE count covers it, so every failure, reply and publish of the events counted
      // here is read below, before they settle.
      const done = Atomics.load(ring.i32, R.DONE) >>> 0;
      for (let at = ret.next(); at >= 0; at = ret.next()) {
        const rec = decodeRecord(ret, at);
        ret.advance();
        if (rec.kind === KIND_FAIL) slot.failures.set(rec.id, rec.data);
        else if (rec.kind === KIND_REPLY) slot.replies.set(rec.id, rec.data);
        else if (rec.kind === KIND_EVENT) this.#workerPublish(slot, rec);
      }
      ret.release();
      let n = (done - slot.done) >>> 0;
      slot.done = done;
      let ok = 0; // publish-time events handled: settled with one call below
      const { failures, replies } = slot;
      while (n > 0 && slot.head < slot.fifo.length) {
        const c = slot.fifo[slot.head];
        const from = slot.pos;
        const to = Math.min(c.n, from + n);
        const tickets = c.tickets;
        if (tickets === null && failures.size === 0) ok += to - from;
        else {
          for (let i = from; i < to; i++) {
            const id = c.ids[i];
            const t = tickets?.[i];
            if (failures.size > 0 && failures.has(id)) {
              const info = failures.get(id) as { name: string; message: string; stack?: string; code?: string };
              failures.delete(id);
              this.#failOne(c, i, Object.assign(new Error(info.message), info));
            } else if (t === undefined) ok++;
            else if (replies.size > 0 && replies.has(id)) {
              const value = replies.get(id);
              replies.delete(id);
              t.resolve(value);
            } else t.resolve();
          }
        }
        n -= to - from;
        slot.inflight -= to - from;
        if (to === c.n) {
          slot.fifo[slot.head++] = undefined as unknown as EventChunk;
          slot.pos = 0;
        } else slot.pos = to;
      }
      if (slot.head > 64 && slot.head * 2 > slot.fifo.length) {
        slot.fifo = slot.fifo.slice(slot.head);
        slot.head = 0;
      }
      if (ok > 0) {
        this.#directSettled(ok);
        this.#host.deliveredDirect(ok);
      }
      this.#flushBacklog(slot);
      if (!slot.alive) break;
      await ret.waitForData(() => (Atomics.load(ring.i32, R.DONE) >>> 0) !== slot.done);
    }
  }

  // ------------------------------------------------------------------ publishes from workers

  /** A publish record from a worker (rec.wantsReply: a ctx.publishAsync, rec.id its sequence number). */
  #workerPublish(slot: Slot, rec: Decoded): void {
    if (slot.parked.length > 0 || rec.wantsReply) {
      slot.parked.push(rec);
      if (slot.parked.length === 1) void this.#drainParked(slot);
      return;
    }
    this.#publishNow(slot, rec);
  }

  /** ctx.publish: enqueued now, or refused (counted and reported). */
  #publishNow(slot: Slot, rec: Decoded): void {
    let accepted: boolean;
    try {
      // false under 'drop-newest' means dropped and counted by the bus, as for any publish
      accepted = this.#host.publish(rec.subject, rec.data, publishOptions(rec)) || this.#host.overflow !== 'wait';
    } catch (err) {
      this.#refuse(slot, rec, err);
      return;
    }
    if (!accepted) this.#refuse(slot, rec, new MyelinError('ERR_BUS_FULL', `ctx.publish('${rec.subject}') from worker ${slot.index}: the lane is full`));
  }

  /** Publishes a worker's queued records in order; a ctx.publishAsync waits for room. */
  async #drainParked(slot: Slot): Promise<void> {
    const parked = slot.parked;
    while (parked.length > 0) {
      const rec = parked[0];
      if (!rec.wantsReply) this.#publishNow(slot, rec);
      else {
        try {
          await this.#host.publishAsync(rec.subject, rec.data, publishOptions(rec));
          this.#ack(slot, [rec.id]);
        } catch (err) {
          this.#refuse(slot, rec, err);
        }
      }
      parked.shift();
    }
  }

  #refuse(slot: Slot, rec: Decoded, err: unknown): void {
    this.#publishRefused++;
    const code = err instanceof MyelinError ? err.code : 'ERR_INTERNAL';
    const message = err instanceof Error ? err.message : String(err);
    if (refusedChannel.hasSubscribers) refusedChannel.publish({ subject: rec.subject, worker: slot.index, code, message });
    if (rec.wantsReply) this.#ack(slot, [rec.id, code, message]);
  }

  #ack(slot: Slot, ack: PublishAck): void {
    slot.acks.push(ack);
    if (slot.acks.length === 1) {
      queueMicrotask(() => {
        const acks = slot.acks;
        slot.acks = [];
        if (slot.alive) slot.worker.postMessage({ acks });
      });
    }
  }

  // ------------------------------------------------------------------ faults

  #onExit(slot: Slot, code: number): void {
    if (this.#slots[slot.index] !== slot) return;
    slot.alive = false;
    if (slot.staged) {
      // never reached the ring: the replacement thread gets them
      slot.backlog.unshift(slot.staged.chunk);
      slot.staged = undefined;
    }
    slot.ret.close();
    // Whatever is still in flight on this thread may or may not have run: fail it.
    const { fifo, head, pos } = slot;
    slot.fifo = [];
    slot.head = slot.pos = slot.inflight = 0;
    for (let k = head; k < fifo.length; k++) {
      const c = fifo[k];
      for (let i = k === head ? pos : 0; i < c.n; i++) {
        this.#failOne(c, i, new MyelinError('ERR_WORKER_EXITED', `worker ${slot.index} exited with code ${code} while handling '${c.subjects[i]}' (id ${c.ids[i]})`));
      }
    }
    if (this.#closing) return;
    this.#failedWorkers++;
    const now = Date.now();
    slot.restarts = slot.restarts.filter((t) => now - t < 60_000);
    if (slot.restarts.length >= 5) {
      for (const c of slot.backlog.splice(0)) {
        this.#unwait(slot, c.n);
        for (let i = 0; i < c.n; i++) {
          this.#failOne(c, i, new MyelinError('ERR_WORKER_EXITED', `worker ${slot.index} keeps exiting (5 restarts in a minute); not restarted`, { cause: this.#loadError }));
        }
      }
      return;
    }
    slot.restarts.push(now);
    this.#spawn(slot.index).then(
      () => this.#flushBacklog(this.#slots[slot.index]),
      () => {
        // its exit handler runs again and decides
      },
    );
  }

  // ------------------------------------------------------------------ lifecycle

  stats(): { threads: number; inFlight: number[]; backlog: number[]; restarts: number; pinned: string[]; publishRefused: number } {
    return {
      publishRefused: this.#publishRefused,
      threads: this.threads,
      inFlight: this.#slots.map((s) => s.inflight),
      backlog: this.#slots.map((s) => s.waiting),
      restarts: this.#failedWorkers,
      pinned: this.#slots.map((s) => s.pinned),
    };
  }

  /**
   * Milliseconds the pool's threads have spent handling events, since the pool
   * started, threads that exited included (each thread publishes its own in its
   * ring's BUSY word, lib/bus/byte-ring.ts). For utilisation: its increase over an
   * interval / (threads x the interval).
   */
  busyMs(): number {
    let total = this.#busyRetired;
    for (const s of this.#slots) if (s !== undefined) total += Atomics.load(s.ring.i32, R.BUSY) >>> 0;
    return total;
  }

  /** Busy time of threads that were replaced (their rings are gone). */
  #busyRetired = 0;

  /** Stops taking events, lets every delivery in flight finish, then ends the threads. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all(this.#subs.map((s) => s.drain()));
      if (this.#direct > 0) await new Promise<void>((resolve) => this.#directIdle.push(resolve));
      for (const s of this.#slots) s.ring.close();
      const timeout = new Promise((r) => setTimeout(r, 10_000).unref());
      await Promise.race([Promise.all(this.#slots.map((s) => s.exited)), timeout]);
      await this.#terminateAll();
    })();
    return this.#closing;
  }

  async #terminateAll(): Promise<void> {
    await Promise.all(this.#slots.filter(Boolean).map((s) => s.worker.terminate().catch(() => 0)));
  }
}
