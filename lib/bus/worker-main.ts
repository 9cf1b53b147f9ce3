// The worker-thread side of a pool (started by lib/bus/worker-pool.ts). It imports the
// user's module, then loops: read every event record available in its ring, call the
// default export for each (awaiting async results one at a time, so one worker keeps
// its events in order), publish the DONE count and any failure, reply and publish
// records in one batch, and sleep on Atomics.waitAsync when the ring is empty.
//
// ctx.publish validates the subject and options here and throws ERR_INVALID_ARGUMENT
// like bus.publish; the bus's own answer (full lane, closed bus) comes later, on the
// main thread (lib/bus/worker-pool.ts). ctx.publishAsync resolves or rejects with that
// answer, which the pool posts back as an acknowledgement.
//
// DONE never runs ahead of the return ring: while records wait in `backlog` (the
// return ring was full), DONE stays at the count of events finished before the
// oldest of them, so the main thread never settles an event before it has read that
// event's failure, reply or publishes.
import { parentPort, workerData } from 'node:worker_threads';
import { MyelinError } from '../errors.js';
import type { ErrorCode } from '../internal/codes.js';
import { HistogramRecorder } from '../internal/histogram.js';
import { native } from '../internal/native.js';
import { ByteRing, R } from './byte-ring.js';
import { KIND_BATCH, KIND_EVENT, KIND_FAIL, KIND_REPLY, KIND_RESET, checkRecord, createBatchCodec, encodeRecord, readBatch, recordKind } from './event-codec.js';
import { JsonBusEvent } from './json-event.js';
import { DEFAULT_PUBLISH, PRIORITIES, PUBLISH_KEYS, checkJsonData, checkSubject, parsePublishOptions } from './options.js';
import type { PublishAck } from './worker-pool.js';
import type { BusEvent, PublishOptions } from './types.js';

interface PoolWorkerData {
  moduleUrl: string;
  ring: SharedArrayBuffer;
  ret: SharedArrayBuffer;
  index: number;
  cpu: number; // -1: do not pin
  histogramId: number; // the bus's latency histogram
}

const YIELD_EVERY = 4096; // events between event-loop turns under a constant flow

const wd = workerData as PoolWorkerData;
const ring = new ByteRing(wd.ring);
const ret = new ByteRing(wd.ret);

type OutRecord = Parameters<typeof encodeRecord>[1];

/** Events this worker has finished (wraps at 2^32, like the ring's DONE word). */
let done = 0;

/** Records to the main thread wait here when the return ring is full, each with the
 * `done` count from before the event that made it. */
let backlog: Array<{ rec: OutRecord; done: number }> = [];

/** Queues a record for the main thread. Throws ERR_INVALID_ARGUMENT for data that
 * cannot cross threads or a record larger than the return ring can hold. */
function sendBack(rec: OutRecord): void {
  if (backlog.length === 0 && encodeRecord(ret, rec)) return;
  if (backlog.length > 0) checkRecord(ret, rec); // the same errors now, not at flush time
  backlog.push({ rec, done });
}

function flushBacklog(): void {
  if (backlog.length === 0) return;
  let i = 0;
  while (i < backlog.length && encodeRecord(ret, backlog[i].rec)) i++;
  backlog = backlog.slice(i);
}

/** The DONE count the main thread may see: none past a record still in the backlog. */
function visibleDone(): number {
  return backlog.length === 0 ? done : backlog[0].done;
}

/**
 * Makes the records written so far visible to the main thread now, not at the end of
 * the batch: a handler awaiting ctx.publishAsync holds up the batch until the pool has
 * the record. Records that found the return ring full are retried on a timer.
 */
let kickTimer: ReturnType<typeof setTimeout> | undefined;
let kickQueued = false;
/** kick() once after the current task's publishAsync calls (one wake-up for a burst). */
function scheduleKick(): void {
  if (kickQueued) return;
  kickQueued = true;
  queueMicrotask(() => {
    kickQueued = false;
    kick();
  });
}
function kick(): void {
  flushBacklog();
  ret.commit();
  ret.wake();
  if (backlog.length > 0 && kickTimer === undefined) {
    kickTimer = setTimeout(() => {
      kickTimer = undefined;
      kick();
    }, 1);
  }
}

/** ctx.publishAsync calls waiting for the pool's acknowledgement, by sequence number. */
const waiting = new Map<number, { resolve: () => void; reject: (err: unknown) => void }>();
let nextSeq = 1;

function onAcks(acks: PublishAck[]): void {
  for (const a of acks) {
    const w = waiting.get(a[0]);
    if (w === undefined) continue;
    waiting.delete(a[0]);
    if (a.length === 1) w.resolve();
    else w.reject(new MyelinError(a[1] as ErrorCode, a[2])); // an unknown code is MyelinError's to handle
  }
}

/** A publish record from ctx.publish(Async), validated as bus.publish validates. */
function publishRecord(where: string, subject: unknown, data: unknown, opts: PublishOptions | undefined, seq: number): OutRecord {
  checkSubject(subject, false, where);
  const o = opts === undefined ? DEFAULT_PUBLISH : parsePublishOptions(opts, where, PUBLISH_KEYS);
  if (o.json) checkJsonData(data, where);
  return { kind: KIND_EVENT, priority: o.lane, subject, key: o.key, headers: o.headers, data, id: seq, time: 0, wantsReply: seq !== 0, json: o.json };
}

export interface WorkerContext {
  /**
   * Publishes back to the bus (through the pool's return ring). Throws
   * ERR_INVALID_ARGUMENT for a bad subject, options or data; a refusal by the bus (a
   * full lane under 'wait' or 'reject', a closed bus) is counted in
   * bus.stats().refused and pool.stats().publishRefused: use publishAsync to wait for
   * room and learn the outcome.
   */
  publish(subject: string, data?: unknown, opts?: PublishOptions): void;
  /** Resolves once the bus has enqueued the event (waiting for room under 'wait'); rejects with its MyelinError otherwise. */
  publishAsync(subject: string, data?: unknown, opts?: PublishOptions): Promise<void>;
  /** This worker's index in its pool. */
  readonly index: number;
  /** The pin status: 'OK', a MyelinError code, or 'UNPINNED'. */
  readonly pinned: string;
}

function describe(err: unknown) {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, stack: err.stack, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: String(err) };
}

async function main(): Promise<void> {
  const pinned = wd.cpu >= 0 ? native().pinThread(wd.cpu) : 'UNPINNED';
  // Publish -> handler-start latency goes into the bus's own histogram (a shard of this
  // thread's); a histogram already closed (the bus is closing) just means no recording.
  let latency: HistogramRecorder | undefined;
  try {
    latency = new HistogramRecorder(native().Histogram.attach(wd.histogramId));
  } catch {
    latency = undefined;
  }
  const mod = (await import(wd.moduleUrl)) as { default?: unknown };
  const handler = mod.default;
  if (typeof handler !== 'function') throw new TypeError(`${wd.moduleUrl}: the default export must be a function (event, ctx) => result`);
  const ctx: WorkerContext = {
    publish(subject, data, opts) {
      sendBack(publishRecord('ctx.publish', subject, data, opts, 0));
    },
    publishAsync(subject, data, opts) {
      try {
        const seq = nextSeq++;
        sendBack(publishRecord('ctx.publishAsync', subject, data, opts, seq));
        const p = new Promise<void>((resolve, reject) => waiting.set(seq, { resolve, reject }));
        scheduleKick();
        return p;
      } catch (err) {
        return Promise.reject(err);
      }
    },
    index: wd.index,
    pinned,
  };
  parentPort?.postMessage({ ready: true, pinned });
  // Atomics.waitAsync does not keep a thread's event loop alive; a port listener does,
  // until the loop below ends. The pool posts acknowledgements for publishAsync here.
  parentPort?.on('message', (m: { acks?: PublishAck[] }) => {
    if (m.acks) onAcks(m.acks);
  });

  done = Atomics.load(ring.i32, R.DONE) >>> 0;
  let codec = createBatchCodec();
  // Busy time for the pool's utilisation: from each wake-up to the next wait, published
  // as whole ms in R.BUSY after each batch (one clock read per batch, not per event), so
  // a thread that never runs dry still reports.
  let busyMs = 0;
  let busySince = 0;
  const busyUntilNow = () => {
    const t = performance.now();
    busyMs += t - busySince;
    busySince = t;
    Atomics.store(ring.i32, R.BUSY, Math.floor(busyMs) | 0);
  };
  for (;;) {
    busySince = performance.now();
    let n = 0;
    for (let at = ring.next(); at >= 0; at = ring.next()) {
      const kind = recordKind(ring, at);
      if (kind === KIND_RESET) {
        ring.advance();
        codec = createBatchCodec();
        continue;
      }
      if (kind !== KIND_BATCH) throw new Error(`unexpected record kind ${kind} in a worker ring`);
      const batch = readBatch(codec, ring, at, ring.length);
      ring.advance();
      const count = batch.count;
      // One clock read per batch (a read costs ~100 ns here): each event's latency is
      // measured to the moment its batch started, an underestimate by at most the
      // batch's own handling time.
      const batchStart = performance.timeOrigin + performance.now();
      for (let i = 0; i < count; i++) {
        const ev: BusEvent = batch.json(i)
          ? new JsonBusEvent(batch.subject(i), batch.data(i) as Uint8Array, batch.key(i), PRIORITIES[batch.priority(i)], batch.headers(i), batch.id(i), batch.time(i))
          : {
              subject: batch.subject(i),
              data: batch.data(i),
              key: batch.key(i),
              priority: PRIORITIES[batch.priority(i)],
              headers: batch.headers(i),
              id: batch.id(i),
              time: batch.time(i),
            };
        if (latency !== undefined) {
          const ns = (batchStart - ev.time) * 1e6;
          latency.recordTrusted(ns > 0 ? ns : 0);
        }
        try {
          let result = handler(ev, ctx);
          if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
            result = await result;
          }
          if (batch.wantsReply(i)) sendBack({ kind: KIND_REPLY, priority: 0, subject: ev.subject, key: undefined, headers: undefined, data: result, id: ev.id, time: 0, wantsReply: false });
        } catch (err) {
          sendBack({ kind: KIND_FAIL, priority: 0, subject: ev.subject, key: undefined, headers: undefined, data: describe(err), id: ev.id, time: 0, wantsReply: false });
        }
        done = (done + 1) >>> 0;
        if (++n % 1024 === 0) {
          // Publish progress within long batches so the main thread can settle early.
          ret.publish(); // records first, then the DONE that covers them, then one wake-up
          Atomics.store(ring.i32, R.DONE, visibleDone() | 0);
          ret.wake();
          busyUntilNow();
        }
      }
      busyUntilNow();
      if (n >= YIELD_EVERY) break;
    }
    ring.release();
    flushBacklog();
    ret.publish();
    Atomics.store(ring.i32, R.DONE, visibleDone() | 0);
    ret.wake();
    busyUntilNow();
    if (n >= YIELD_EVERY) {
      await new Promise((r) => setImmediate(r));
      continue;
    }
    if (ring.closed && ring.next() < 0 && backlog.length === 0) break;
    if (backlog.length > 0) await new Promise((r) => setTimeout(r, 1));
    else await ring.waitForData();
  }
  parentPort?.removeAllListeners('message');
  parentPort?.unref();
}

main().catch((err) => {
  // A module that fails to load or a broken handler contract: report and exit non-zero
  // so the pool sees it (and fails what was in flight here).
  parentPort?.postMessage({ error: describe(err) });
  process.exit(1);
});
