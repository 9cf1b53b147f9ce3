// The public API of myelin and nothing else (shared/API.md).
export { MyelinError, ErrorCodes, type ErrorCode, type MyelinErrorOptions } from './errors.js';
export { Bus, type BusOptions } from './bus/bus.js';
export { Subscription } from './bus/subscription.js';
export type { BusEvent, BusStats, BatchItem, LaneStats, Overflow, Priority, PublishOptions, SubscribeOptions } from './bus/types.js';
export { WorkerPool, type WorkerPoolOptions } from './bus/worker-pool.js';
export type { WorkerContext } from './bus/worker-main.js';
export * from './ai/client/index.js';
export { isMetricsSink, type MetricsSink } from './internal/metrics-sink.js';
export { Gateway, type GatewayOptions, type GatewayStats, type IoBackend } from './gateway/gateway.js';
export type { GatewayRequest, ResponseWriter, RouteHandler, RouteResult } from './gateway/http-types.js';
export { Metrics, WorkerMetrics, type HdrSource } from './metrics/metrics.js';
export type { MetricsShare } from './metrics/worker.js';
export type * from './metrics/types.js';
