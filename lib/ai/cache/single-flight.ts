// Concurrent identical requests share one upstream call. Nothing is remembered after
// the call settles (storing answers is the cache's job), so a failure is never cached:
// it reaches every waiter and the next caller starts afresh.
//
// Each waiter may leave early with its own AbortSignal (ERR_ABORTED for it alone);
// the shared call's signal fires only when the last waiter has left.
import { MyelinError } from '../../errors.js';

interface Flight {
  promise: Promise<unknown>;
  controller: AbortController;
  waiters: number;
}

export class SingleFlight {
  readonly #flights = new Map<string, Flight>();

  /** Calls in flight. */
  get size(): number {
    return this.#flights.size;
  }

  /** Whether a call for `key` is in flight (a caller joining now would share it). */
  has(key: string): boolean {
    return this.#flights.has(key);
  }

  run<T>(key: string, fn: (signal: AbortSignal) => Promise<T>, options: { signal?: AbortSignal } = {}): Promise<T> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(aborted(signal));
    let flight = this.#flights.get(key);
    if (flight === undefined) {
      const controller = new AbortController();
      let promise: Promise<unknown>;
      try {
        promise = Promise.resolve(fn(controller.signal));
      } catch (err) {
        promise = Promise.reject(err);
      }
      const f: Flight = { promise, controller, waiters: 0 };
      const forget = (): void => {
        if (this.#flights.get(key) === f) this.#flights.delete(key);
      };
      promise.then(forget, forget);
      this.#flights.set(key, f);
      flight = f;
    }
    const f = flight;
    f.waiters++;
    if (signal === undefined) return f.promise as Promise<T>;
    return new Promise<T>((resolve, reject) => {
      let left = false;
      const onAbort = (): void => {
        left = true;
        reject(aborted(signal));
        if (--f.waiters === 0) {
          if (this.#flights.get(key) === f) this.#flights.delete(key);
          f.controller.abort(new MyelinError('ERR_ABORTED', 'every caller sharing this request left'));
        }
      };
      signal.addEventListener('abort', onAbort, { once: true });
      f.promise.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          if (!left) resolve(v as T);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          if (!left) reject(err);
        },
      );
    });
  }
}

function aborted(signal: AbortSignal): MyelinError {
  return new MyelinError('ERR_ABORTED', 'the request was aborted', { cause: signal.reason });
}
