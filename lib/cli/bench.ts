// `myelin bench [core|all] [--json]`: runs every benchmark scenario in a fresh process
// (native C++ binaries and JS scripts), each against its anchors in the same run, and
// prints a table of ratios against the targets the issues set.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { invalidArgument } from '../errors.js';
import { packageRoot } from '../internal/native.js';

export interface BenchResult {
  scenario: string;
  metric: string;
  median: number;
  min: number;
  max: number;
  repeats: number;
  cpuNsPerOp?: number;
}

/** One table row: a measured value, its anchors in the same run, and the target. */
interface Row {
  what: string;
  value: string; // scenario whose median is "myelin"
  anchors: string[]; // scenarios measured alongside
  target: string; // human text
  pass: (r: (s: string) => BenchResult | undefined) => boolean | undefined;
}

const ratio = (r: (s: string) => BenchResult | undefined, a: string, b: string) => {
  const x = r(a);
  const y = r(b);
  return x && y ? x.median / y.median : undefined;
};
const atLeast = (v: number | undefined, t: number) => (v === undefined ? undefined : v >= t);

const CORE_ROWS: Row[] = [
  {
    what: 'SPSC ring, 8 B items, bulk 64',
    value: 'queue.spsc.bulk64',
    anchors: ['queue.spsc.batch1', 'queue.mutex_deque.1p1c'],
    target: '>= 100 M items/s',
    pass: (r) => atLeast(r('queue.spsc.bulk64')?.median, 100e6),
  },
  {
    what: 'MPMC ring, 2P 2C, bulk 64',
    value: 'queue.mpmc.2p2c.bulk64',
    anchors: ['queue.mutex_deque.2p2c', 'queue.mpmc.2p2c.batch1'],
    target: '>= 10x mutex+deque',
    pass: (r) => atLeast(ratio(r, 'queue.mpmc.2p2c.bulk64', 'queue.mutex_deque.2p2c'), 10),
  },
  {
    what: 'ring round trip (ping-pong), p50',
    value: 'queue.spsc.rtt.p50',
    anchors: ['queue.spsc.rtt.p99'],
    target: 'p50 <= 300 ns',
    pass: (r) => {
      const v = r('queue.spsc.rtt.p50')?.median;
      return v === undefined ? undefined : v <= 300;
    },
  },
  {
    what: 'slab alloc+free 64-256 B, same thread',
    value: 'slab.same_thread',
    anchors: ['malloc.same_thread'],
    target: '>= 3x glibc malloc',
    pass: (r) => atLeast(ratio(r, 'slab.same_thread', 'malloc.same_thread'), 3),
  },
  {
    what: 'slab alloc+free 64-256 B, cross thread',
    value: 'slab.cross_thread',
    anchors: ['malloc.cross_thread'],
    target: '>= 3x glibc malloc',
    pass: (r) => atLeast(ratio(r, 'slab.cross_thread', 'malloc.cross_thread'), 3),
  },
  {
    what: 'histogram record from JS, pre-bound',
    value: 'hist.record.js',
    anchors: ['promclient.observe.2labels', 'perf_hooks.record'],
    target: '<= 1/10 prom-client ns/op',
    pass: (r) => {
      const q = ratio(r, 'hist.record.js', 'promclient.observe.2labels');
      return q === undefined ? undefined : q <= 0.1;
    },
  },
  {
    what: 'JSON field extraction, 1 KiB, native core',
    value: 'json.extract.1k',
    anchors: ['json.parse.1k.mbs', 'json.extract.1k.fallback'],
    target: '>= 3x JSON.parse MB/s',
    pass: (r) => atLeast(ratio(r, 'json.extract.1k', 'json.parse.1k.mbs'), 3),
  },
  {
    what: 'JSON field extraction, 1 KiB, from JS, 256/call',
    value: 'json.extract.1k.js.batch.mbs',
    anchors: ['json.parse.1k.mbs', 'json.extract.1k.js.mbs'],
    target: '>= 3x JSON.parse MB/s',
    pass: (r) => atLeast(ratio(r, 'json.extract.1k.js.batch.mbs', 'json.parse.1k.mbs'), 3),
  },
  {
    what: 'subject match, 10,000 patterns, warm cache, core',
    value: 'route.match.warm',
    anchors: ['match.regexp.loop', 'route.match.trie'],
    target: '>= 10 M matches/s',
    pass: (r) => atLeast(r('route.match.warm')?.median, 10e6),
  },
  {
    what: 'subject match, warm cache, called from JS',
    value: 'match.native.js.warm',
    anchors: ['match.regexp.loop'],
    target: '>= 10 M matches/s',
    pass: (r) => atLeast(r('match.native.js.warm')?.median, 10e6),
  },
];

const AI_ROWS: Row[] = [
  {
    what: 'ai.chat overhead vs direct undici, sequential, added p50',
    value: 'ai.overhead.seq.added.p50',
    anchors: ['ai.overhead.seq.direct.p50', 'ai.overhead.seq.added.p99', 'ai.overhead.seq.added.p999'],
    target: 'p50 <= 50 us, p99 <= 500 us added',
    pass: (r) => {
      const a = atMost(r('ai.overhead.seq.added.p50')?.median, 50);
      const b = atMost(r('ai.overhead.seq.added.p99')?.median, 500);
      return a === undefined || b === undefined ? undefined : a && b;
    },
  },
  ...[1000, 5000].map(
    (rate): Row => ({
      what: `ai.chat overhead, open loop ${rate} req/s, added p50`,
      value: `ai.overhead.${rate}.added.p50`,
      anchors: [`ai.overhead.${rate}.direct.p50`, `ai.overhead.${rate}.added.p99`, `ai.overhead.${rate}.added.p999`],
      target: 'p50 <= 50 us, p99 <= 500 us added',
      pass: (r) => {
        const a = atMost(r(`ai.overhead.${rate}.added.p50`)?.median, 50);
        const b = atMost(r(`ai.overhead.${rate}.added.p99`)?.median, 500);
        return a === undefined || b === undefined ? undefined : a && b;
      },
    }),
  ),
  {
    what: 'context: trim an 8,000-token history to budget and count it, next turn',
    value: 'ai.context.trim.next_turn',
    anchors: ['ai.context.trim.fresh', 'ai.context.first_load'],
    target: '<= 1 ms (seed: < 10 ms)',
    pass: (r) => atMost(r('ai.context.trim.next_turn')?.median, 1e6),
  },
  {
    what: 'memory: 1,000,000 distinct cached requests, RSS at the end',
    value: 'ai.memory.rss_last',
    anchors: ['ai.memory.rss_first', 'ai.memory.heap_growth', 'ai.memory.requests_per_s'],
    target: 'RSS plateaus within the cache bound',
    pass: (r) => {
      const first = r('ai.memory.rss_first')?.median;
      const last = r('ai.memory.rss_last')?.median;
      const growth = r('ai.memory.heap_growth')?.median;
      if (first === undefined || last === undefined || growth === undefined) return undefined;
      return last <= first * 1.25 && growth < 32; // within 25% of the filled-cache RSS, heap flat
    },
  },
  {
    what: 'streaming throughput, ai.stream vs reading the SSE directly',
    value: 'ai.stream.myelin',
    anchors: ['ai.stream.direct'],
    target: '>= 0.9x direct',
    pass: (r) => atLeast(ratio(r, 'ai.stream.myelin', 'ai.stream.direct'), 0.9),
  },
];

interface Suite {
  rows: Row[];
  native: string[]; // native bench binaries (build-native/<name>)
  js: string[]; // bench/<path>.mjs; a path may carry node flags after a space
}

const atMost = (v: number | undefined, t: number) => (v === undefined ? undefined : v <= t);

const BUS_ROWS: Row[] = [
  {
    what: 'in-process, exact subject, 1 subscriber, small object',
    value: 'bus.inproc.myelin',
    anchors: ['bus.inproc.ee3', 'bus.inproc.node_events'],
    target: '>= 0.5x eventemitter3',
    pass: (r) => atLeast(ratio(r, 'bus.inproc.myelin', 'bus.inproc.ee3'), 0.5),
  },
  {
    what: 'in-process, 1,000 wildcard patterns',
    value: 'bus.wildcard.myelin',
    anchors: ['bus.wildcard.eventemitter2'],
    target: '>= 10x EventEmitter2',
    pass: (r) => atLeast(ratio(r, 'bus.wildcard.myelin', 'bus.wildcard.eventemitter2'), 10),
  },
  {
    what: 'main -> 1 worker handler, small objects',
    value: 'bus.worker.myelin',
    anchors: ['bus.worker.postmessage256', 'bus.worker.postmessage', 'bus.worker.piscina'],
    target: '>= 10x batched postMessage',
    pass: (r) => atLeast(ratio(r, 'bus.worker.myelin', 'bus.worker.postmessage256'), 10),
  },
  {
    what: 'main -> worker, 64-byte Uint8Array payloads',
    value: 'bus.bytes.myelin',
    anchors: ['bus.bytes.ringbufjs'],
    target: '>= 0.5x ringbuf.js',
    pass: (r) => atLeast(ratio(r, 'bus.bytes.myelin', 'bus.bytes.ringbufjs'), 0.5),
  },
  // Latency rows (issue 8): from each event's scheduled send time (coordinated omission
  // shows), open loop; bench/bus/fixtures/open-loop.mjs. p50-max are over every measured
  // event, with the per-window extremes as the spread; rate is the achieved rate; the
  // floor is the same generator and recording without the bus (a bare ring, or a call).
  {
    what: 'latency scheduled send -> worker handler start, open loop at half peak, p99',
    value: 'bus.latency.worker.half.p99',
    anchors: ['bus.latency.worker.half.p50', 'bus.latency.worker.half.p999', 'bus.latency.worker.half.max', 'bus.latency.worker.half.rate', 'bus.latency.worker.half.lost', 'bus.latency.worker.peak', 'bus.latency.worker.half.floor.p99', 'bus.latency.worker.half.floor.p999'],
    target: 'p99 <= 1 ms, p99.9 <= 5 ms',
    pass: (r) => {
      const a = atMost(r('bus.latency.worker.half.p99')?.median, 1000);
      const b = atMost(r('bus.latency.worker.half.p999')?.median, 5000);
      return a === undefined || b === undefined ? undefined : a && b;
    },
  },
  {
    what: 'latency scheduled send -> in-process handler start, open loop at half peak, p99',
    value: 'bus.latency.inproc.half.p99',
    anchors: ['bus.latency.inproc.half.p50', 'bus.latency.inproc.half.p999', 'bus.latency.inproc.half.max', 'bus.latency.inproc.half.rate', 'bus.latency.inproc.half.lost', 'bus.latency.inproc.peak', 'bus.latency.inproc.half.floor.p99', 'bus.latency.inproc.half.floor.p999'],
    target: 'p99 <= 100 us',
    pass: (r) => atMost(r('bus.latency.inproc.half.p99')?.median, 100),
  },
  {
    what: 'latency scheduled send -> worker handler start, open loop at 100,000 events/s, p99',
    value: 'bus.latency.worker.100k.p99',
    anchors: ['bus.latency.worker.100k.p50', 'bus.latency.worker.100k.p999', 'bus.latency.worker.100k.max', 'bus.latency.worker.100k.rate', 'bus.latency.worker.100k.lost', 'bus.latency.worker.100k.floor.p99', 'bus.latency.worker.100k.floor.p999'],
    target: 'p99 <= 250 us',
    pass: (r) => atMost(r('bus.latency.worker.100k.p99')?.median, 250),
  },
  {
    what: 'memory, 10 M queued small events, no consumer',
    value: 'bus.memory.per_event',
    anchors: [],
    target: '<= 64 B per event beyond the payload',
    pass: (r) => atMost(r('bus.memory.per_event')?.median, 64),
  },
  {
    what: 'scaling: worker pool, 1 thread',
    value: 'bus.scaling.1',
    anchors: ['bus.scaling.2', 'bus.scaling.4', 'bus.scaling.8', 'bus.scaling.16'],
    target: 'report events/s per thread count',
    pass: () => undefined,
  },
];

// Gateway rows (issue 9): bench/gateway/*.mjs, the server in a child process, the
// native load client (addon.LoadClient) driving both myelin and the `ws` anchor. One row
// per backend. µWebSockets.js is not on npm: its figures are the issue's fixed anchors
// (306 K msgs per server CPU-second ingest, 0.55 KB per idle connection).
const GATEWAY_ROWS: Row[] = (['epoll', 'io_uring'] as const).flatMap((io): Row[] => [
  {
    what: `ingest, 100 conns, 1 KiB JSON pub, msgs per server CPU-second (${io})`,
    value: `gateway.ingest.${io}.per_cpu`,
    anchors: ['gateway.ingest.ws.per_cpu', `gateway.ingest.${io}`, 'gateway.ingest.ws', `gateway.ingest.${io}.server_cores`, 'gateway.ingest.ws.server_cores', `gateway.ingest.${io}.client_cores`],
    target: '>= 612 K/cpu-s (2x µWS 306 K) and >= 5x ws',
    pass: (r) => {
      const a = atLeast(r(`gateway.ingest.${io}.per_cpu`)?.median, 612e3);
      const b = atLeast(ratio(r, `gateway.ingest.${io}.per_cpu`, 'gateway.ingest.ws.per_cpu'), 5);
      return a === undefined || b === undefined ? undefined : a && b;
    },
  },
  {
    what: `idle connections, server RSS per connection (${io})`,
    value: `gateway.idle.${io}`,
    // .state: the native connection state per connection (stats().stateBytes), which RSS cannot resolve.
    anchors: [`gateway.idle.${io}.state`, 'gateway.idle.ws', `gateway.idle.${io}.server_cpu`],
    target: '19,000 conns at <= 0.3 KB each (µWS 0.55 KB)',
    pass: (r) => {
      const v = r(`gateway.idle.${io}`) as (BenchResult & { connections?: number }) | undefined;
      // A delta at or below zero is a measurement that failed (RSS noise), not a pass.
      if (v === undefined || !(v.median > 0)) return undefined;
      return v.median <= 0.3 && (v.connections ?? 0) >= 19000;
    },
  },
  {
    what: `fan-out, one publish to 10,000 sockets, delivery p99 (${io})`,
    value: `gateway.fanout.${io}.p99`,
    anchors: ['gateway.fanout.ws.p99', `gateway.fanout.${io}.p50`, `gateway.fanout.${io}.p999`, `gateway.fanout.${io}.max`, `gateway.fanout.${io}.lost`, `gateway.fanout.${io}.server_cores`, 'gateway.fanout.ws.server_cores'],
    target: 'p99 <= 1/5 of ws',
    pass: (r) => {
      const q = ratio(r, `gateway.fanout.${io}.p99`, 'gateway.fanout.ws.p99');
      return q === undefined ? undefined : q <= 0.2;
    },
  },
  {
    what: `end to end pub -> event, 100 K msgs/s, p99 (${io})`,
    value: `gateway.e2e.${io}.p99`,
    anchors: ['gateway.e2e.ws.p99', `gateway.e2e.${io}.p50`, `gateway.e2e.${io}.p999`, `gateway.e2e.${io}.max`, `gateway.e2e.${io}.rate`, `gateway.e2e.${io}.lost`, `gateway.e2e.${io}.server_cores`, `gateway.e2e.${io}.publisher_lag`],
    target: 'p99 <= 1 ms',
    pass: (r) => atMost(r(`gateway.e2e.${io}.p99`)?.median, 1000),
  },
  {
    what: `/v1/chat/completions added p99 at 1,000 req/s (${io})`,
    value: `gateway.chat.1000.${io}.added.p99`,
    anchors: ['gateway.chat.1000.portkey.added.p99', `gateway.chat.1000.${io}.added.p50`, 'gateway.chat.1000.portkey.added.p50', 'gateway.chat.1000.direct.p99', `gateway.chat.1000.${io}.server_cores`, 'gateway.chat.1000.portkey.server_cores'],
    target: "<= 1/10 of Portkey's and <= 1 ms",
    pass: (r) => {
      const a = atMost(r(`gateway.chat.1000.${io}.added.p99`)?.median, 1000);
      const q = ratio(r, `gateway.chat.1000.${io}.added.p99`, 'gateway.chat.1000.portkey.added.p99');
      return a === undefined || q === undefined ? undefined : a && q <= 0.1;
    },
  },
  {
    what: `/v1/chat/completions added p50, sequential (${io})`,
    value: `gateway.chat.seq.${io}.added.p50`,
    anchors: ['gateway.chat.seq.portkey.added.p50', `gateway.chat.seq.${io}.added.p99`, 'gateway.chat.seq.portkey.added.p99', 'gateway.chat.seq.direct.p50'],
    target: "report (Portkey +3.4 ms p50 here before)",
    pass: () => undefined,
  },
]);

// Metrics rows (issue 10): bench/metrics/*.mjs, prom-client as the anchor in the same process.
const METRICS_ROWS: Row[] = [
  {
    what: 'histogram observe, 2 labels, pre-bound',
    value: 'metrics.observe.bound',
    anchors: ['promclient.observe.2labels', 'metrics.observe.labels'],
    target: '<= 1/10 prom-client ns/op',
    pass: (r) => atMost(ratio(r, 'metrics.observe.bound', 'promclient.observe.2labels'), 0.1),
  },
  {
    what: 'counter inc, 2 labels, pre-bound',
    value: 'metrics.inc.bound',
    anchors: ['promclient.inc.child'],
    target: '<= 1/10 prom-client ns/op',
    pass: (r) => atMost(ratio(r, 'metrics.inc.bound', 'promclient.inc.child'), 0.1),
  },
  {
    what: 'scrape of 10,000 histogram series, wall time',
    value: 'metrics.scrape.10k.ms',
    anchors: ['promclient.scrape.10k.ms'],
    target: '<= 1/5 prom-client',
    pass: (r) => atMost(ratio(r, 'metrics.scrape.10k.ms', 'promclient.scrape.10k.ms'), 0.2),
  },
  {
    what: 'scrape of 10,000 histogram series, longest event-loop block',
    value: 'metrics.scrape.10k.block_ms',
    anchors: ['promclient.scrape.10k.block_ms'],
    target: '<= 10 ms',
    pass: (r) => atMost(r('metrics.scrape.10k.block_ms')?.median, 10),
  },
  {
    what: 'bus throughput, every built-in metric on',
    value: 'metrics.bus.on',
    anchors: ['metrics.bus.off', 'metrics.bus.off2'],
    target: '>= 0.95x off (<= 5% cost)',
    pass: (r) => atLeast(ratio(r, 'metrics.bus.on', 'metrics.bus.off2'), 0.95),
  },
];

// Scale-out rows (issue 11): bench/cluster/*.mjs against the servers at MYELIN_NATS_URL
// (default nats://127.0.0.1:4222, JetStream on) and MYELIN_REDIS_URL (default
// redis://127.0.0.1:6379); a scenario whose server does not answer prints a skip and
// its rows drop out of the table. The consumers run in child processes.
const CLUSTER_ROWS: Row[] = [
  {
    what: '2 processes, publish -> subscribe over NATS core',
    value: 'cluster.nats.core.myelin',
    anchors: ['cluster.nats.core.raw'],
    target: '>= 0.8x raw nats.js',
    pass: (r) => atLeast(ratio(r, 'cluster.nats.core.myelin', 'cluster.nats.core.raw'), 0.8),
  },
  {
    what: 'durable: JetStream publish -> acknowledged handler',
    value: 'cluster.jetstream.myelin',
    anchors: ['cluster.jetstream.raw'],
    target: '>= 0.8x raw @nats-io/jetstream async publish + pull consumer',
    pass: (r) => atLeast(ratio(r, 'cluster.jetstream.myelin', 'cluster.jetstream.raw'), 0.8),
  },
  {
    what: 'Redis Streams consumer group',
    value: 'cluster.redis.myelin',
    anchors: ['cluster.redis.raw'],
    target: '>= 0.8x raw ioredis XADD / XREADGROUP pipeline',
    pass: (r) => atLeast(ratio(r, 'cluster.redis.myelin', 'cluster.redis.raw'), 0.8),
  },
  ...(['nats', 'redis'] as const).map(
    (t): Row => ({
      what: `scaling, 1 -> 2 -> 4 consumer processes (${t === 'nats' ? 'JetStream' : 'Redis Streams'})`,
      value: `cluster.scale.${t}.1`,
      anchors: [`cluster.scale.${t}.2`, `cluster.scale.${t}.4`],
      target: 'events/s for each count',
      pass: () => undefined,
    }),
  ),
  ...(['nats', 'redis'] as const).map(
    (t): Row => ({
      what: `failover, kill -9 of a consumer -> takeover of its pending events (${t === 'nats' ? 'JetStream' : 'Redis Streams'}), ackWaitMs 2000`,
      value: `cluster.failover.${t}.ms`,
      anchors: [`cluster.failover.${t}.events`, `cluster.failover.${t}.held_ms`],
      target: 'report (floor: ackWaitMs - held_ms)',
      pass: () => undefined,
    }),
  ),
];

const SUITES: Record<string, Suite> = {
  core: {
    rows: CORE_ROWS,
    native: ['queue_bench', 'slab_bench', 'histogram_bench', 'json_bench', 'route_bench'],
    js: ['core/histogram', 'core/json', 'core/match'],
  },
  ai: {
    rows: AI_ROWS,
    native: [],
    js: ['ai/overhead', 'ai/stream', 'ai/context', 'ai/memory'],
  },
  bus: {
    rows: BUS_ROWS,
    native: [],
    js: ['bus/inproc-exact', 'bus/inproc-wildcard', 'bus/worker-objects', 'bus/worker-bytes', 'bus/latency', 'bus/latency-inproc', 'bus/memory --expose-gc', 'bus/scaling'],
  },
  gateway: {
    rows: GATEWAY_ROWS,
    native: [],
    js: ['gateway/ingest', 'gateway/idle', 'gateway/fanout', 'gateway/e2e', 'gateway/chat'],
  },
  metrics: {
    rows: METRICS_ROWS,
    native: [],
    js: ['metrics/record', 'metrics/scrape', 'metrics/bus'],
  },
  cluster: {
    rows: CLUSTER_ROWS,
    native: [],
    js: ['cluster/nats-core', 'cluster/jetstream', 'cluster/redis', 'cluster/scale', 'cluster/failover'],
  },
};

function fmt(v: number, metric: string): string {
  if (metric.endsWith('/s')) {
    const unit = metric.slice(0, -2);
    if (v >= 1e9) return `${(v / 1e9).toFixed(2)} G${unit}/s`;
    if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M${unit}/s`;
    if (v >= 1e3) return `${(v / 1e3).toFixed(2)} K${unit}/s`;
    return `${v.toFixed(1)} ${metric}`;
  }
  return `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ${metric}`;
}

/** Builds the native benchmark binaries with CMake (once; later runs rebuild incrementally). */
function buildNative(root: string, log: (s: string) => void): string {
  const dir = join(root, 'build-native');
  log('bench: building native benchmarks (cmake, Release)');
  for (const args of [
    ['-S', '.', '-B', dir, '-DCMAKE_BUILD_TYPE=Release', '-DMYELIN_BENCH=ON', '-DMYELIN_SANITIZE='],
    ['--build', dir, '-j', String(availableParallelism())],
  ]) {
    const r = spawnSync('cmake', args, { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.error || r.status !== 0) {
      throw invalidArgument(`bench: cmake ${args[0]} failed (cmake and a C++20 compiler are needed for the native benchmarks)`);
    }
  }
  return dir;
}

function runScenario(cmd: string, args: string[], cwd: string, progress: (chunk: Buffer) => void): Promise<BenchResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const results: BenchResult[] = [];
    let buf = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('RESULT ')) results.push(JSON.parse(line.slice(7)) as BenchResult);
      }
    });
    // The scenario's own progress (dots per repeat) passes through as it comes.
    child.stderr.on('data', (chunk: Buffer) => progress(chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(results) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`))));
  });
}

export interface BenchOptions {
  suite?: string;
  json?: boolean;
  log?: (s: string) => void;
  /** Where scenario processes' progress goes (default: stderr). */
  progress?: (chunk: Buffer) => void;
}

export async function runBench(opts: BenchOptions = {}): Promise<{ results: BenchResult[]; table: string; failed: string[] }> {
  const name = opts.suite ?? 'all';
  const names = name === 'all' ? Object.keys(SUITES) : [name];
  for (const n of names) {
    if (!SUITES[n]) throw invalidArgument(`bench: unknown suite '${n}'; choose one of ${['all', ...Object.keys(SUITES)].join(', ')}`);
  }
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const progress = opts.progress ?? ((chunk: Buffer) => process.stderr.write(chunk));
  const root = packageRoot();
  if (!existsSync(join(root, 'dist', 'esm', 'index.js'))) throw invalidArgument('bench: dist/ is missing; run `npm run build:ts`');
  const results: BenchResult[] = [];
  const failed: string[] = [];
  const dir = names.some((n) => SUITES[n].native.length) ? buildNative(root, log) : '';
  for (const n of names) {
    const suite = SUITES[n];
    for (const bin of suite.native) {
      log(`bench: ${bin}`);
      results.push(...(await runScenario(join(dir, bin), [], root, progress)));
    }
    for (const entry of suite.js) {
      const [script, ...flags] = entry.split(' ');
      log(`bench: bench/${script}.mjs`);
      try {
        results.push(...(await runScenario(process.execPath, [...flags, join(root, 'bench', `${script}.mjs`)], root, progress)));
      } catch (err) {
        // One scenario that fails (a server that went away mid-run) should not take the
        // others' results with it: note it, list it under the table, go on.
        const why = err instanceof Error ? err.message : String(err);
        log(`bench: bench/${script}.mjs failed: ${why}`);
        failed.push(`bench/${script}.mjs (${why.replace(/^.* exited /, 'exit ')})`);
      }
    }
  }
  const by = new Map(results.map((r) => [r.scenario, r]));
  const get = (s: string) => by.get(s);
  const lines: string[] = [];
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  lines.push(`myelin bench ${name} — ${new Date().toISOString().slice(0, 10)}, ${availableParallelism()} CPUs (${cpu}), Node ${process.version}`);
  lines.push('');
  lines.push('| what | myelin | anchors (same run) | target | met |');
  lines.push('|---|---|---|---|---|');
  for (const n of names) {
    for (const row of SUITES[n].rows) {
      const v = get(row.value);
      if (!v && row.anchors.every((a) => !get(a))) continue; // scenario not run on this machine
      const anchors = row.anchors
        .map((a) => {
          const r = get(a);
          if (!r) return `${a}: n/a`;
          if (!v) return `${a} ${fmt(r.median, r.metric)}`;
          // A ratio only between like quantities (a latency against a rate means nothing).
          if (r.metric !== v.metric || !(r.median > 0)) return `${a} ${fmt(r.median, r.metric)}`;
          return `${a} ${fmt(r.median, r.metric)} (${(v.median / r.median).toFixed(2)}x)`;
        })
        .join('; ');
      const pass = row.pass(get);
      lines.push(
        `| ${row.what} | ${v ? `${fmt(v.median, v.metric)} [${fmt(v.min, v.metric)}–${fmt(v.max, v.metric)}]` : 'n/a'} | ${anchors} | ${row.target} | ${pass === undefined ? 'n/a' : pass ? 'yes' : 'NO'} |`,
      );
    }
  }
  if (failed.length) lines.push('', `failed (rows left out or n/a): ${failed.join('; ')}`);
  return { results, table: lines.join('\n'), failed };
}
