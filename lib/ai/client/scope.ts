// Cancellation scopes. A CallScope spans one public call (all targets, attempts and
// waits): it fires on the caller's signal (ERR_ABORTED) or at the deadline
// (ERR_AI_TIMEOUT, not retryable: no time is left). An AttemptScope spans one upstream
// request: it follows its call and adds one re-armable watchdog (request deadline,
// time-to-first-token, content-idle), whose expiry is a retryable ERR_AI_TIMEOUT.
// The signal handed to undici is always an attempt's, so that whatever fires, undici
// aborts the request and destroys its socket; the reason is always a MyelinError.
import { MyelinError } from '../../errors.js';
import { aiError } from './failure.js';
import type { CallClock } from './overhead.js';

/** What an attempt needs from its call: the deadline, the call's signal, attempt scopes. */
export interface AttemptSource {
  readonly deadline: number;
  readonly signal: AbortSignal;
  /** The call's overhead clock: upstream waits are marked on it. */
  readonly clock?: CallClock | undefined;
  attempt(): AttemptScope;
}

export class CallScope implements AttemptSource {
  readonly deadline: number;
  readonly clock: CallClock | undefined;
  readonly #ac = new AbortController();
  readonly #caller: AbortSignal | undefined;
  readonly #onCaller: () => void;
  readonly #timer: NodeJS.Timeout;

  constructor(caller: AbortSignal | undefined, deadlineMs: number, clock?: CallClock) {
    this.deadline = Date.now() + deadlineMs;
    this.clock = clock;
    this.#caller = caller;
    this.#onCaller = () => this.#ac.abort(new MyelinError('ERR_ABORTED', 'the AI request was aborted by its signal', { cause: caller?.reason }));
    if (caller?.aborted) this.#onCaller();
    else caller?.addEventListener('abort', this.#onCaller, { once: true });
    this.#timer = setTimeout(() => {
      this.#ac.abort(aiError('ERR_AI_TIMEOUT', `the AI request did not finish within its deadline (${deadlineMs} ms)`, { failure: 'deadline', retryable: false }));
    }, deadlineMs);
    // A pending deadline must not keep a process alive on its own.
    this.#timer.unref();
  }

  get signal(): AbortSignal {
    return this.#ac.signal;
  }

  /** Throws the reason when the call is over. */
  check(): void {
    if (this.#ac.signal.aborted) throw this.#ac.signal.reason;
  }

  attempt(): AttemptScope {
    return new AttemptScope(this.#ac.signal);
  }

  /** A branch of this call (a hedged target) that `extra` also aborts. */
  branch(extra: AbortSignal): AttemptSource {
    const signal = AbortSignal.any([this.#ac.signal, extra]);
    return { deadline: this.deadline, signal, clock: this.clock, attempt: () => new AttemptScope(signal) };
  }

  /** Ends the deadline without aborting (a stream that committed outlives it). */
  release(): void {
    clearTimeout(this.#timer);
  }

  dispose(): void {
    clearTimeout(this.#timer);
    this.#caller?.removeEventListener('abort', this.#onCaller);
  }
}

export class AttemptScope {
  readonly #ac = new AbortController();
  readonly #parent: AbortSignal;
  readonly #onParent: () => void;
  #timer: NodeJS.Timeout | undefined;
  #ms = 0;
  #make: (() => MyelinError) | undefined;

  constructor(parent: AbortSignal) {
    this.#parent = parent;
    this.#onParent = () => this.#ac.abort(parent.reason);
    if (parent.aborted) this.#onParent();
    else parent.addEventListener('abort', this.#onParent, { once: true });
  }

  get signal(): AbortSignal {
    return this.#ac.signal;
  }

  /** Starts or restarts the watchdog; refresh() is used when the span is unchanged,
   * which makes re-arming per content event cheap. */
  arm(ms: number, make: () => MyelinError): void {
    this.#make = make;
    if (this.#timer !== undefined && ms === this.#ms) {
      this.#timer.refresh();
      return;
    }
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#ms = ms;
    this.#timer = setTimeout(() => this.#ac.abort(this.#make!()), ms);
    this.#timer.unref();
  }

  disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Aborts the upstream request (consumer went away, or a frame said the stream failed). */
  abort(reason: unknown): void {
    this.#ac.abort(reason);
  }

  /** The error to throw for `err` raised while this attempt ran: the abort reason when
   * the attempt was aborted (undici's own abort errors carry less), else `err`. */
  reason(err: unknown): unknown {
    return this.#ac.signal.aborted ? this.#ac.signal.reason : err;
  }

  dispose(): void {
    this.disarm();
    this.#parent.removeEventListener('abort', this.#onParent);
  }
}
