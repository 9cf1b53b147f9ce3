// Hedged requests (shared/API.md "hedgeAfterMs"): the AIClient races an alias's targets
// through hedge() when the alias has hedgeAfterMs. Pure and timer-driven, so that
// tests can run it under fake timers.
import { MyelinError, invalidArgument } from '../../errors.js';

export interface HedgeResult<T> {
  value: T;
  target: string;
  /** Index in `targets` of the winner. */
  index: number;
  /** How many targets were started. */
  started: number;
}

/**
 * Runs `fn` on targets[0]; whenever nothing has been produced for `hedgeAfterMs`, or
 * the latest attempt failed, starts the next target as well. The first attempt to
 * resolve wins; every other attempt's signal is aborted. `fn` should resolve when it
 * has *produced* (for a stream: once its first content arrived, holding the rest).
 * Rejects with the last failure when every target failed, or ERR_ABORTED when
 * `signal` fires (every attempt is aborted then).
 */
export function hedge<T>(
  fn: (target: string, signal: AbortSignal) => Promise<T>,
  targets: readonly string[],
  hedgeAfterMs: number,
  signal?: AbortSignal,
): Promise<HedgeResult<T>> {
  if (targets.length === 0) return Promise.reject(invalidArgument('hedge needs at least one target'));
  if (typeof hedgeAfterMs !== 'number' || !(hedgeAfterMs >= 0)) {
    return Promise.reject(invalidArgument(`hedgeAfterMs must be a number >= 0, got ${String(hedgeAfterMs)}`));
  }
  if (signal?.aborted) return Promise.reject(abortError(signal));

  return new Promise<HedgeResult<T>>((resolve, reject) => {
    const controllers: AbortController[] = [];
    let running = 0;
    let next = 0;
    let done = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let lastError: unknown;

    const finish = (winner: number): void => {
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      controllers.forEach((c, i) => {
        if (i !== winner) c.abort(new MyelinError('ERR_ABORTED', 'hedged attempt lost the race'));
      });
    };
    const onAbort = (): void => {
      if (done) return;
      finish(-1);
      reject(abortError(signal!));
    };
    const arm = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      timer = next < targets.length ? setTimeout(start, hedgeAfterMs) : undefined;
    };
    function start(): void {
      if (done || next >= targets.length) return;
      const index = next++;
      const target = targets[index];
      const ctl = new AbortController();
      controllers.push(ctl);
      running++;
      arm();
      let p: Promise<T>;
      try {
        p = Promise.resolve(fn(target, ctl.signal));
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then(
        (value) => {
          running--;
          if (done) return;
          finish(index);
          resolve({ value, target, index, started: next });
        },
        (err: unknown) => {
          running--;
          if (done) return;
          lastError = err;
          if (next < targets.length) start();
          else if (running === 0) {
            finish(-1);
            reject(lastError);
          }
        },
      );
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    start();
  });
}

function abortError(signal: AbortSignal): MyelinError {
  return new MyelinError('ERR_ABORTED', 'the request was aborted', { cause: signal.reason });
}
