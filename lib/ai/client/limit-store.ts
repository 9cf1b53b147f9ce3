// How the AIClient hears about its rate-limit store (Redis) failing. Each shared limit
// (limits/redis-rate-limiter.ts) reports every failed store call here, with what became
// of the call: admitted without the store ('open'), refused ('closed'), or a refund that
// was lost. This counts them for stats().limits and the metrics sink, and publishes one
// message on `myelin:ai:limits:store-error` (diagnostics_channel) per outage: at the
// first failure after a success (or after the start). An outage ends at the next store
// call that succeeds, whichever limit makes it: the limits share the client's one
// Redis connection, so one outage is one outage for all of them.
import diagnostics from 'node:diagnostics_channel';
import type { StoreErrorOutcome } from '../limits/redis-rate-limiter.js';

/** Published once per outage: { limit, outcome, error }. `limit` is the limits key that met it first. */
export const limitStoreErrorChannel = diagnostics.channel('myelin:ai:limits:store-error');

export interface LimitStoreErrorMessage {
  limit: string;
  outcome: StoreErrorOutcome;
  error: unknown;
}

export interface LimitStoreStats {
  /** Store calls that failed (every outcome). */
  storeErrors: number;
  /** Requests admitted without the store (onStoreError 'open'). */
  admittedWithoutStore: number;
  /** Requests refused with ERR_AI_RATE_LIMITED because the store failed (onStoreError 'closed'). */
  refusedWithoutStore: number;
  /** Outages seen: runs of failures between successful store calls. */
  outages: number;
}

export class LimitStoreHealth {
  readonly counts: LimitStoreStats = { storeErrors: 0, admittedWithoutStore: 0, refusedWithoutStore: 0, outages: 0 };
  readonly #record: ((limit: string, outcome: StoreErrorOutcome) => void) | undefined;
  #down = false;

  /** `record` forwards each failure to the metrics sink (client-metrics.ts). */
  constructor(record?: (limit: string, outcome: StoreErrorOutcome) => void) {
    this.#record = record;
  }

  error(limit: string, err: unknown, outcome: StoreErrorOutcome): void {
    const c = this.counts;
    c.storeErrors++;
    if (outcome === 'admitted') c.admittedWithoutStore++;
    else if (outcome === 'refused') c.refusedWithoutStore++;
    this.#record?.(limit, outcome);
    if (this.#down) return;
    this.#down = true;
    c.outages++;
    if (limitStoreErrorChannel.hasSubscribers) {
      const msg: LimitStoreErrorMessage = { limit, outcome, error: err };
      limitStoreErrorChannel.publish(msg);
    }
  }

  ok(): void {
    this.#down = false;
  }
}
