// One publish to 10,000 subscribed sockets, delivery latency (latency.mjs).
import { runLatency } from './latency.mjs';

await runLatency('fanout');
