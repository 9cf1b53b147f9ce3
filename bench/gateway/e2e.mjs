// `pub` on one socket -> `event` on another at 100,000 msgs/s, latency (latency.mjs).
import { runLatency } from './latency.mjs';

await runLatency('e2e');
