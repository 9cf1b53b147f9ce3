// Time spent inside myelin per call ("overhead"), recorded into a native HDR histogram
// (or, where the addon cannot load, its pure-JS twin: internal/histogram.ts
// createLocalHistogram) and read by ai.stats().overheadUs.
//
// overhead = the call's wall time - time spent waiting, where waiting is:
//   - upstream I/O: from handing a request to undici until its response headers, and
//     while reading its body (non-streamed), or until the first stream parts (streams);
//   - deliberate waits: retry backoff sleeps and local rate-limit waits;
//   - for a call that joined an identical call in flight: the wait for that call.
// Waits are a union of intervals (a depth counter), so the concurrent branches of a
// hedged call never count one stretch twice.
//
// Streams are measured up to their first content (committed), plus the final assembly
// (usage, the response, the cache write) after the upstream's last part. The parsing of
// chunks between those points is left out: measuring it would cost two clock reads
// per chunk, and the decode of the chunks before the first content is counted as
// waiting for the same reason. So a stream's figure is a lower bound.
//
// Under load the figure also holds the time a call's continuations queue behind other
// work on the event loop: that is time the process, not the upstream, cost the call.
//
// Cost: two performance.now() reads per wait, one at the start, one at the end.
import { HistogramRecorder, createLocalHistogram } from '../../internal/histogram.js';

export interface OverheadStats {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  count: number;
}

export class CallClock {
  readonly t0: number;
  #waited = 0;
  #depth = 0;
  #since = 0;
  /** Overhead frozen at the stream's first content; undefined before. */
  #atCommit: number | undefined;
  #assembly = 0;

  constructor(t0: number = performance.now()) {
    this.t0 = t0;
  }

  /** A wait starts (upstream I/O, a sleep, a limiter); pair with leave(). */
  enter(): void {
    if (this.#depth++ === 0) this.#since = performance.now();
  }

  leave(): void {
    if (this.#depth === 0) return;
    if (--this.#depth === 0) this.#waited += performance.now() - this.#since;
  }

  /** Awaits `p` as waiting time. */
  async wait<T>(p: Promise<T>): Promise<T> {
    this.enter();
    try {
      return await p;
    } finally {
      this.leave();
    }
  }

  /** A stream's first content: what follows is not measured until assembly(). */
  commit(now: number = performance.now()): void {
    if (this.#atCommit === undefined) this.#atCommit = this.#elapsed(now);
  }

  get committed(): boolean {
    return this.#atCommit !== undefined;
  }

  /** Adds a measured stretch after commit (a stream's final assembly). */
  assembly(ms: number): void {
    this.#assembly += ms;
  }

  /** The call's overhead in ms, as of now. */
  overheadMs(now: number = performance.now()): number {
    const before = this.#atCommit ?? this.#elapsed(now);
    return Math.max(0, before + this.#assembly);
  }

  #elapsed(now: number): number {
    // A wait still open (an abandoned call) counts up to now.
    const open = this.#depth > 0 ? now - this.#since : 0;
    return now - this.t0 - this.#waited - open;
  }
}

/** One histogram per client, recorded from the client's thread without an N-API call. */
export class OverheadHistogram {
  readonly #rec = new HistogramRecorder(createLocalHistogram());
  #closed = false;

  /** Records the call's overhead; returns it in ms (undefined after close()). */
  record(clock: CallClock): number | undefined {
    if (this.#closed) return undefined;
    const ms = clock.overheadMs();
    this.#rec.recordTrusted(ms * 1e6);
    return ms;
  }

  stats(): OverheadStats {
    const s = this.#rec.snapshot();
    return { p50: s.p50 / 1000, p99: s.p99 / 1000, p999: s.p999 / 1000, max: s.max / 1000, count: s.count };
  }

  /** Gives the shard back (counts are kept for stats()). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#rec.close();
  }
}
