// Worker threads record into the same series as the main thread, still with no message
// per recording: a worker keeps families of its own whose pages are SharedArrayBuffers
// (lib/metrics/series.ts), and tells the main thread once per family, per page and per
// series over one MessagePort. The main thread adds the worker's slots to its own
// series and sums them on read. Every slot keeps exactly one writer thread.
//
//   main:    const share = metrics.shareWith();
//            new Worker(url, { workerData: { share }, transferList: [share.port] });
//   worker:  const m = Metrics.attach(workerData.share);   // a MetricsSink, same handles
//            const h = m.histogram('job_seconds', { help, labelNames: ['kind'] }).bind({ kind: 'a' });
//            h.observe(0.012);                              // typed-array writes only
//            await m.flush();   // optional: resolves once the main thread has every series announced so far
//
// Messages (worker -> main, in order on the port): family {id, shape}, page {id, index,
// sab}, series {id, index, values}, ping {n}; main -> worker: pong {n}. A series a worker
// announces after the main family is full folds into the main overflow series, so
// totals still add up; a family whose shape differs from the main thread's one of the
// same name is ignored and counted in `metrics.errors`.
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { invalidArgument } from '../errors.js';
import { Family, type FamilyShape, PAGE_MASK, PAGE_SHIFT, seriesKey } from './series.js';

export interface MetricsShare {
  port: MessagePort;
  prefix: string;
  maxSeries: number;
}

type WireShape = { name: string; type: FamilyShape['type']; help: string; labelNames: string[]; bounds: number[] };
type Msg =
  | { t: 'family'; id: number; shape: WireShape }
  | { t: 'page'; id: number; index: number; sab: SharedArrayBuffer }
  | { t: 'series'; id: number; index: number; values: string[] }
  | { t: 'ping'; n: number }
  | { t: 'pong'; n: number };

/** The main thread's side: what it needs of Metrics to adopt a worker's series. */
export interface ShareHost {
  family(shape: FamilyShape): Family | undefined;
  error(): void;
}

/** Opens a channel for one worker; the main thread's end is unref'd and closed by `close`. */
export function openShare(host: ShareHost, prefix: string, maxSeries: number): { share: MetricsShare; close(): void } {
  const { port1, port2 } = new MessageChannel();
  const families = new Map<number, { fam: Family | undefined; stride: number; pages: Float64Array[] }>();
  port1.on('message', (m: Msg) => {
    try {
      if (m.t === 'family') {
        const shape: FamilyShape = { ...m.shape, bounds: Float64Array.from(m.shape.bounds) };
        const fam = host.family(shape);
        if (fam === undefined) host.error();
        families.set(m.id, { fam, stride: shape.type === 'histogram' ? shape.bounds!.length + 2 : 1, pages: [] });
      } else if (m.t === 'page') {
        const f = families.get(m.id);
        if (f) f.pages[m.index] = new Float64Array(m.sab);
      } else if (m.t === 'series') {
        const f = families.get(m.id);
        if (f?.fam === undefined) return;
        const i = f.fam.resolveValues(m.values, seriesKey(m.values), false);
        f.fam.addForeign(i, { page: f.pages[m.index >>> PAGE_SHIFT], off: (m.index & PAGE_MASK) * f.stride });
      } else if (m.t === 'ping') {
        port1.postMessage({ t: 'pong', n: m.n });
      }
    } catch {
      host.error();
    }
  });
  port1.unref();
  return {
    share: { port: port2, prefix, maxSeries },
    close: () => port1.close(),
  };
}

/** The worker's side: announces each family, page and series of `fam` on `port`. */
export class ShareClient {
  readonly #port: MessagePort;
  #nextId = 0;
  #pings = 0;
  readonly #waiting = new Map<number, () => void>();

  constructor(share: unknown) {
    const s = share as MetricsShare | null;
    if (s === null || typeof s !== 'object' || typeof (s.port as MessagePort | undefined)?.postMessage !== 'function') {
      throw invalidArgument('Metrics.attach(share): share must be what metrics.shareWith() returned, passed with its port in the transferList');
    }
    this.#port = s.port;
    this.#port.on('message', (m: Msg) => {
      if (m.t !== 'pong') return;
      this.#waiting.get(m.n)?.();
      this.#waiting.delete(m.n);
      if (this.#waiting.size === 0) this.#port.unref();
    });
    this.#port.unref();
  }

  /** Wires a new family: every page and series it makes from now on is announced. */
  adopt(fam: Family): void {
    const id = this.#nextId++;
    const port = this.#port;
    port.postMessage({ t: 'family', id, shape: { name: fam.name, type: fam.type, help: fam.help, labelNames: [...fam.labelNames], bounds: [...fam.bounds] } } satisfies Msg);
    fam.pages.forEach((p, index) => port.postMessage({ t: 'page', id, index, sab: p.buffer as SharedArrayBuffer } satisfies Msg));
    for (let i = 0; i < fam.seriesCount; i++) port.postMessage({ t: 'series', id, index: i, values: fam.labelValues[i] } satisfies Msg);
    fam.onPage = (index, page) => port.postMessage({ t: 'page', id, index, sab: page.buffer as SharedArrayBuffer } satisfies Msg);
    fam.onSeries = (index) => port.postMessage({ t: 'series', id, index, values: fam.labelValues[index] } satisfies Msg);
  }

  /** Resolves once the main thread has handled every announcement made so far. */
  flush(): Promise<void> {
    const n = ++this.#pings;
    this.#port.ref();
    return new Promise((resolve) => {
      this.#waiting.set(n, resolve);
      this.#port.postMessage({ t: 'ping', n } satisfies Msg);
    });
  }

  close(): void {
    this.#port.close();
  }
}
