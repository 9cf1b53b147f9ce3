// The answer to one bus.request: which of the handlers that got the event replies.
//
// As with NATS responders, a handler that returns `undefined` is not a reply: the
// request resolves with the first value other than `undefined` that any delivery
// returns, and only when every delivery has finished without one does it settle
// otherwise: rejected with ERR_HANDLER_FAILED (the first failure as `cause`) when some
// handler failed, else resolved with `undefined`. Terminal outcomes decided before any
// handler runs (no responders, dropped by overflow) settle it at once.
//
// Counting: the dispatcher holds the reply open while it hands the event out
// (`open` starts at 1), adds one per delivery it starts or parks (expect()), and lets
// go of its own hold with release(); each delivery ends in exactly one answer() or
// failed(). A request's timeout and AbortSignal live with its caller (bus.request).
import { MyelinError } from '../errors.js';

export type Finish = (value: unknown, err?: unknown) => void;

export class Reply {
  #open = 1;
  #settled = false;
  #error: unknown = undefined;
  #failed = false;
  readonly #finish: Finish;
  readonly #subject: string;

  constructor(subject: string, finish: Finish) {
    this.#subject = subject;
    this.#finish = finish;
  }

  /** One more delivery will answer or fail. */
  expect(): void {
    this.#open++;
  }

  /** A delivery finished with `value`; `undefined` means it did not reply. */
  answer(value: unknown): void {
    if (this.#settled) return;
    if (value !== undefined) {
      this.#settled = true;
      this.#finish(value);
      return;
    }
    this.release();
  }

  /** A delivery's handler threw or rejected. */
  failed(err: unknown): void {
    if (this.#settled) return;
    if (!this.#failed) {
      this.#failed = true;
      this.#error = err;
    }
    this.release();
  }

  /** Drops one hold (the dispatcher's, or a delivery's that ended without a value). */
  release(): void {
    if (this.#settled || --this.#open > 0) return;
    this.#settled = true;
    if (this.#failed) this.#finish(undefined, new MyelinError('ERR_HANDLER_FAILED', `handler for '${this.#subject}' failed`, { cause: this.#error }));
    else this.#finish(undefined);
  }

  /** Settles with `err` now, whatever is still open (no responders, dropped). */
  abort(err: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#finish(undefined, err);
  }
}
