// Single flight for streams (shared/API.md: "concurrent identical requests share one
// upstream call"). Identical concurrent cacheable stream() calls read one upstream
// stream: the flight keeps every part that has arrived, and each reader replays them
// from the start and then follows live. The upstream is pulled only when some reader
// wants a part that has not arrived yet, so it goes at the pace of the fastest reader
// (undici's backpressure holds the socket meanwhile, and the idle watchdog is paused
// as for a single consumer). The parts are held until the flight ends; the cache's
// recorder keeps the same answer anyway, and maxResponseSize bounds both.
//
// Each reader may leave (break, or its own AbortSignal: ERR_ABORTED for it alone);
// the upstream is stopped when the last reader has left. A failure reaches every
// reader after the parts that came before it, and is never remembered: the flight is
// forgotten as soon as it ends, so the next caller starts afresh (or hits the cache).
import { MyelinError } from '../../errors.js';
import type { CallClock } from './overhead.js';
import type { StreamPart } from './types.js';

export class StreamFlight {
  readonly #it: AsyncIterator<StreamPart>;
  readonly #parts: StreamPart[] = [];
  readonly #controller: AbortController;
  readonly #forget: () => void;
  #pull: Promise<void> | undefined;
  #readers = 0;
  #ended = false;
  #failed = false;
  #error: unknown;

  /** `source` starts the upstream stream on the flight's signal, which fires when every reader left. */
  constructor(source: (signal: AbortSignal) => AsyncIterable<StreamPart>, forget: () => void) {
    this.#controller = new AbortController();
    this.#forget = forget;
    this.#it = source(this.#controller.signal)[Symbol.asyncIterator]();
  }

  /**
   * One reader's view. `follower`: a reader that joined a flight someone else started;
   * its waits for the upstream count as waiting on its own clock (the starter's upstream
   * marks its own waits on the starter's clock). Followers get copies of the parts.
   */
  async *read(signal: AbortSignal | undefined, clock: CallClock, follower: boolean): AsyncGenerator<StreamPart, void, undefined> {
    this.#readers++;
    let i = 0;
    try {
      for (;;) {
        if (signal?.aborted) throw aborted(signal);
        if (i < this.#parts.length) {
          const p = this.#parts[i++];
          clock.commit();
          yield follower ? copy(p) : p;
          continue;
        }
        if (this.#failed) throw this.#error;
        if (this.#ended) return;
        const pull = raceSignal(this.#next(), signal);
        await (follower ? clock.wait(pull) : pull);
      }
    } finally {
      if (--this.#readers === 0 && !this.#ended && !this.#failed) this.#stop();
    }
  }

  #next(): Promise<void> {
    this.#pull ??= this.#it.next().then(
      (r) => {
        this.#pull = undefined;
        if (r.done) this.#settle();
        else if (this.#ended) void this.#it.return?.(undefined)?.catch(() => undefined); // every reader left during this pull
        else this.#parts.push(r.value);
      },
      (err: unknown) => {
        this.#pull = undefined;
        this.#failed = true;
        this.#error = err;
        this.#settle();
      },
    );
    return this.#pull;
  }

  #settle(): void {
    this.#ended = true;
    this.#forget();
  }

  /** Every reader left: stop the upstream (abort a pull in progress, else end the generator). */
  #stop(): void {
    this.#ended = true;
    this.#forget();
    const stop = new MyelinError('ERR_ABORTED', 'every reader of this shared stream left');
    if (this.#pull) this.#controller.abort(stop);
    else void this.#it.return?.(undefined)?.catch(() => undefined);
  }
}

function copy(p: StreamPart): StreamPart {
  return p.type === 'done' ? { type: 'done', response: { ...p.response } } : { ...p };
}

function aborted(signal: AbortSignal): MyelinError {
  return new MyelinError('ERR_ABORTED', 'the AI request was aborted by its signal', { cause: signal.reason });
}

/** `p`, or ERR_ABORTED as soon as `signal` fires (p itself never rejects). */
function raceSignal(p: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return p;
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(aborted(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    void p.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
