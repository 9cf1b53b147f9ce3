export type Priority = 'critical' | 'high' | 'normal' | 'low';
export type Overflow = 'wait' | 'reject' | 'drop-oldest' | 'drop-newest';

/** What a handler receives. */
export interface BusEvent<T = unknown> {
  subject: string;
  data: T;
  key?: string;
  priority: Priority;
  headers?: Record<string, string>;
  /** Unique per bus. */
  id: number;
  /** Publish time, epoch milliseconds (fractional). */
  time: number;
  /** JSON-bytes events only: the UTF-8 JSON as published. */
  readonly bytes?: Uint8Array;
  /** JSON-bytes events only: 'application/json'. */
  readonly contentType?: string;
}

export interface PublishOptions {
  key?: string;
  priority?: Priority;
  headers?: Record<string, string>;
  /**
   * 'application/json': `data` is UTF-8 JSON bytes (Uint8Array/Buffer), carried
   * undecoded; handlers get `ev.data` parsed on first read and `ev.bytes` raw
   * (lib/bus/json-event.ts).
   */
  contentType?: 'application/json' | (string & {});
}

export interface BatchItem<T = unknown> extends PublishOptions {
  subject: string;
  data: T;
}

export interface SubscribeOptions {
  /** Members of one queue group split the events (one member each). */
  queue?: string;
  /** In-flight async deliveries at once (default 1); per key it is always 1. */
  concurrency?: number;
  signal?: AbortSignal;
}

export interface LaneStats {
  published: number;
  queued: number;
  dropped: number;
  capacity: number;
}

export interface BusStats {
  published: number;
  delivered: number;
  dropped: number;
  failed: number;
  queued: number;
  inFlight: number;
  /** Part of `dropped`: events no subscription matched. */
  unrouted: number;
  /**
   * Publishes that were not accepted because their lane was full: `publish` returned
   * false (overflow 'wait') or threw ERR_BUS_FULL ('reject'), here or in a worker's
   * `ctx.publish`. Not part of `published`: a refused event never entered the bus.
   */
  refused: number;
  /** Part of `dropped`: events dropped because their lane was shedding load (bus.shed). */
  shed: number;
  subscriptions: number;
  lanes: Record<Priority, LaneStats>;
  latencyUs: { p50: number; p99: number; p999: number; max: number; count: number };
}
