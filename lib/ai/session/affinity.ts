// Session affinity for ai.session(): a conversation stays on the target that answered
// it while that target is healthy (its breaker is not open). The AIClient passes the
// route's order for the call and its breaker check; `healthy` is that check.
import { invalidArgument } from '../../errors.js';

export type HealthCheck = (target: string) => boolean;

function healthyFirst(order: string[], healthy: HealthCheck | undefined): string[] {
  if (healthy === undefined) return order;
  const up: string[] = [];
  const down: string[] = [];
  for (const t of order) (healthy(t) ? up : down).push(t);
  return up.concat(down);
}

export interface SessionAffinityOptions {
  /** Sessions remembered, least recently used forgotten first. Default 10 000. */
  maxSessions?: number;
}

/**
 * Keeps a session on one target while that target is healthy: its KV cache and its
 * model's behaviour stay consistent for the conversation. When the pinned target is
 * unhealthy (or gone from the alias) the session is re-pinned to the strategy's pick.
 */
export class SessionAffinity {
  readonly #max: number;
  readonly #pins = new Map<string, string>();

  constructor(options: SessionAffinityOptions = {}) {
    const max = options.maxSessions ?? 10_000;
    if (!Number.isInteger(max) || max < 1) throw invalidArgument(`maxSessions must be a positive integer, got ${String(max)}`);
    this.#max = max;
  }

  /**
   * `order` is the strategy's order for this call. Returns it with the session's
   * pinned target moved to the front when that target is healthy; otherwise pins the
   * first healthy target of `order`.
   */
  order(sessionId: string, order: readonly string[], healthy?: HealthCheck): string[] {
    const pinned = this.#pins.get(sessionId);
    if (pinned !== undefined && order.includes(pinned) && (healthy === undefined || healthy(pinned))) {
      this.#touch(sessionId, pinned);
      return [pinned, ...order.filter((t) => t !== pinned)];
    }
    const first = order.find((t) => healthy === undefined || healthy(t)) ?? order[0];
    if (first !== undefined) this.#touch(sessionId, first);
    return healthyFirst([...order], healthy);
  }

  /** Re-pins the session to the target that actually answered (after a fallback). */
  record(sessionId: string, target: string): void {
    this.#touch(sessionId, target);
  }

  pinned(sessionId: string): string | undefined {
    return this.#pins.get(sessionId);
  }

  get size(): number {
    return this.#pins.size;
  }

  #touch(sessionId: string, target: string): void {
    this.#pins.delete(sessionId);
    this.#pins.set(sessionId, target);
    if (this.#pins.size > this.#max) this.#pins.delete(this.#pins.keys().next().value as string);
  }
}

