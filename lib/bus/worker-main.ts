// The worker-thread side of a pool (started by lib/bus/worker-pool.ts). It imports the
// user's module, then loops: read every event record available in its ring, call the
// default export for each (awaiting async results one at a time, so one worker keeps
// its events in order), publish the DONE count and any failure, reply and publish
// records in one batch, and sleep on Atomics.waitAsync when the ring is empty.
import { parentPort, workerData } from 'node:worker_threads';
import { HistogramRecorder } from '../internal/histogram.js';
import { native } from '../internal/native.js';
import { ByteRing, R } from './byte-ring.js';
import { KIND_BATCH, KIND_EVENT, KIND_FAIL, KIND_REPLY, KIND_RESET, createBatchCodec, encodeRecord, readBatch, recordKind } from './event-codec.js';
import type { BusEvent, Priority, PublishOptions } from './types.js';

interface PoolWorkerData {
  moduleUrl: string;
  ring: SharedArrayBuffer;
  ret: SharedArrayBuffer;
  index: number;
  cpu: number; // -1: do not pin
  histogramId: number; // the bus's latency histogram
}

const PRIORITIES: Priority[] = ['critical', 'high', 'normal', 'low'];
const LANE: Record<string, number> = { critical: 0, high: 1, normal: 2, low: 3 };
const YIELD_EVERY = 4096; // events between event-loop turns under a constant flow

const wd = workerData as PoolWorkerData;
const ring = new ByteRing(wd.ring);
const ret = new ByteRing(wd.ret);

/** Records to the main thread wait here when the return ring is full. */
let backlog: Array<Parameters<typeof encodeRecord>[1]> = [];

function sendBack(rec: Parameters<typeof encodeRecord>[1]): void {
  if (backlog.length > 0 || !encodeRecord(ret, rec)) backlog.push(rec);
}

function flushBacklog(): void {
  if (backlog.length === 0) return;
  let i = 0;
  while (i < backlog.length && encodeRecord(ret, backlog[i])) i++;
  backlog = backlog.slice(i);
}

export interface WorkerContext {
  /** Publishes back to the bus (through the pool's return ring). */
  publish(subject: string, data?: unknown, opts?: PublishOptions): void;
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
    publish(subject, data, opts = {}) {
      const priority = opts.priority === undefined ? 2 : LANE[opts.priority];
      if (priority === undefined) throw new TypeError(`priority must be one of ${PRIORITIES.join(', ')}`);
      sendBack({ kind: KIND_EVENT, priority, subject, key: opts.key, headers: opts.headers, data, id: 0, time: 0, wantsReply: false });
    },
    index: wd.index,
    pinned,
  };
  parentPort?.postMessage({ ready: true, pinned });
  // Atomics.waitAsync does not keep a thread's event loop alive; a port listener does,
  // until the loop below ends.
  parentPort?.on('message', () => {});

  let done = Atomics.load(ring.i32, R.DONE) >>> 0;
  let codec = createBatchCodec();
  for (;;) {
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
        const ev: BusEvent = {
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
          ret.commit();
          Atomics.store(ring.i32, R.DONE, done | 0);
          ret.wake();
        }
      }
      if (n >= YIELD_EVERY) break;
    }
    ring.release();
    flushBacklog();
    ret.commit();
    Atomics.store(ring.i32, R.DONE, done | 0);
    ret.wake();
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
