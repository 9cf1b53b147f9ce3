// Counters per target ('provider/model'). Keys come from configuration and resolved
// request models, never from upstream text, so no key or message can become a label.
import type { TargetRecorder } from './client-metrics.js';
import { LatencyReservoir } from './latency-reservoir.js';

export interface TargetStats {
  /** Calls routed to this target (one per call, whatever its attempts). */
  requests: number;
  /** Calls that succeeded. */
  successes: number;
  /** Final errors by code (after this target's retries). */
  errors: Record<string, number>;
  /** Upstream attempts, retries included. */
  attempts: number;
  tokensIn: number;
  tokensOut: number;
  costUsd: number;
  /** Latency of successful calls, ms. */
  latencyMs: { p50: number; p99: number };
  /** The target's circuit breaker, when the client has one. */
  breaker?: 'closed' | 'open' | 'half-open';
}

export class TargetCounters {
  requests = 0;
  successes = 0;
  attempts = 0;
  tokensIn = 0;
  tokensOut = 0;
  costUsd = 0;
  readonly errors = new Map<string, number>();
  readonly latency = new LatencyReservoir();
  readonly #metrics: TargetRecorder | undefined;

  /** `metrics` sees every success and failure recorded here (client-metrics.ts). */
  constructor(metrics?: TargetRecorder) {
    this.#metrics = metrics;
  }

  success(attempts: number, latencyMs: number, tokensIn: number, tokensOut: number, costUsd: number | undefined): void {
    this.successes++;
    this.attempts += attempts;
    this.latency.record(latencyMs);
    this.tokensIn += tokensIn;
    this.tokensOut += tokensOut;
    if (costUsd !== undefined) this.costUsd += costUsd;
    this.#metrics?.success(attempts, latencyMs, tokensIn, tokensOut, costUsd);
  }

  failure(code: string, attempts: number): void {
    this.attempts += attempts;
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
    this.#metrics?.failure(code, attempts);
  }

  snapshot(): TargetStats {
    const [p50, p99] = this.latency.percentiles(0.5, 0.99);
    return {
      requests: this.requests,
      successes: this.successes,
      errors: Object.fromEntries(this.errors),
      attempts: this.attempts,
      tokensIn: this.tokensIn,
      tokensOut: this.tokensOut,
      costUsd: this.costUsd,
      latencyMs: { p50, p99 },
    };
  }
}
