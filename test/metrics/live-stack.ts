// A whole stack with real traffic, for the tests that check what the shipped monitoring
// files (docs/grafana/myelin.json, docs/prometheus/alerts.yml) and the dashboard page
// name against what a gateway really exposes: a Metrics instance with the system
// series, a Bus and an AIClient recording into it (the client on the upstream
// simulator, with a cache so hits and misses are counted), a Gateway serving all
// three, and traffic through each: HTTP requests, a WebSocket publisher and
// subscriber, chat completions streamed and not, one of them a cache hit.
// Not a test file itself (vitest includes *.test.ts).
import WebSocket from 'ws';
import { AIClient } from '../../lib/ai/client/index.js';
import { UpstreamSimulator } from '../../lib/ai/simulator/index.js';
import { Bus } from '../../lib/bus/bus.js';
import { Gateway, type GatewayOptions } from '../../lib/gateway/gateway.js';
import { Metrics } from '../../lib/metrics/metrics.js';

const KEY = 'sk-test-live-stack-upstream';

export interface LiveStack {
  metrics: Metrics;
  bus: Bus;
  ai: AIClient;
  gw: Gateway;
  http: string;
  /** Publishes `n` events over a WebSocket (and has a subscriber receive them), makes HTTP and AI requests. */
  traffic(n?: number): Promise<void>;
  /** GET /metrics as Prometheus text. */
  scrape(): Promise<string>;
  close(): Promise<void>;
}

export async function startLiveStack(opts: { evaluationIntervalMs?: number; gateway?: GatewayOptions } = {}): Promise<LiveStack> {
  const sim = new UpstreamSimulator({ apiKey: KEY, tokens: 8 });
  const simUrl = (await sim.listen(0)).url;
  const metrics = new Metrics({ evaluationIntervalMs: opts.evaluationIntervalMs ?? 200 });
  const bus = new Bus({ metrics });
  const ai = new AIClient({
    providers: [{ name: 'openai', kind: 'openai', baseURL: `${simUrl}/v1`, apiKey: KEY }],
    models: { fast: 'openai/gpt-4o-mini' },
    prices: { 'openai/gpt-4o-mini': { inputPerMTok: 0.15, outputPerMTok: 0.6 } },
    retry: { attempts: 1, minDelayMs: 1, maxDelayMs: 5 },
    cache: { ttlMs: 60_000, maxEntries: 100 },
    metrics,
  });
  const gw = new Gateway({ port: 0, host: '127.0.0.1', ioThreads: 1, bus, ai, metrics, ...opts.gateway });
  const { port } = await gw.listen();
  const http = `http://127.0.0.1:${port}`;
  const token = opts.gateway?.auth?.tokens[0];
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  bus.subscribe('live.>', () => {});
  // A worker pool, so the pool series (utilisation, restarts) exist too.
  const pool = await bus.workers(new URL('../fixtures/pool-handler.mjs', import.meta.url), { threads: 1, subjects: 'pool.echo' });

  async function traffic(n = 200): Promise<void> {
    const sub = await openSocket(`ws://127.0.0.1:${port}/ws`, headers);
    const pub = await openSocket(`ws://127.0.0.1:${port}/ws`, headers);
    try {
      let got = 0;
      const all = new Promise<void>((resolve) =>
        sub.on('message', (m) => {
          if ((JSON.parse(String(m)) as { op: string }).op === 'event' && ++got === n) resolve();
        }),
      );
      sub.send(JSON.stringify({ op: 'sub', id: 's', subject: 'live.>' }));
      // A ping answered after the sub means the subscription is in before the publishes.
      await roundTrip(sub);
      for (let i = 0; i < n; i++) pub.send(JSON.stringify({ op: 'pub', subject: `live.t${i % 4}`, data: { i }, priority: i % 2 ? 'high' : 'normal' }));
      await all;
    } finally {
      sub.terminate();
      pub.terminate();
    }
    for (let i = 0; i < 20; i++) bus.publish('pool.echo', { i });
    await bus.drain();
    for (const path of ['/healthz', '/stats', '/nowhere']) await (await fetch(http + path, { headers })).arrayBuffer();
    const chat = (stream: boolean, content: string) =>
      fetch(`${http}/v1/chat/completions`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'fast', stream, messages: [{ role: 'user', content }] }),
      }).then((r) => r.text());
    await chat(false, 'the same question');
    await chat(false, 'the same question'); // a cache hit
    await chat(true, `a streamed question ${Date.now()}`);
  }

  return {
    metrics,
    bus,
    ai,
    gw,
    http,
    traffic,
    async scrape() {
      const r = await fetch(`${http}/metrics`, { headers: { ...headers, accept: 'text/plain' } });
      return r.text();
    },
    async close() {
      await pool.close();
      await gw.close();
      await ai.close();
      await bus.close();
      metrics.close();
      await sim.close();
    },
  };
}

function openSocket(url: string, headers: Record<string, string>): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function roundTrip(ws: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    const on = (m: WebSocket.RawData) => {
      if ((JSON.parse(String(m)) as { op: string }).op === 'pong') {
        ws.off('message', on);
        resolve();
      }
    };
    ws.on('message', on);
    ws.send(JSON.stringify({ op: 'ping' }));
  });
}

/**
 * The metric names of Prometheus text: for a histogram or summary family both the
 * family name and its `_bucket`, `_sum`, `_count` series, so a query may name either.
 */
export function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '' ) continue;
    if (line.startsWith('# TYPE ')) {
      names.add(line.split(' ')[2]);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (m) names.add(m[1]);
  }
  return names;
}

// PromQL words that look like metric names but are not: functions, aggregations,
// keywords, and what follows `by (...)` / `without (...)` / `on (...)` (label names).
const PROMQL_WORDS = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group',
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'predict_linear', 'histogram_quantile', 'abs', 'clamp_min',
  'clamp_max', 'clamp', 'label_replace', 'label_join', 'vector', 'scalar', 'time', 'avg_over_time', 'max_over_time',
  'min_over_time', 'sum_over_time', 'count_over_time', 'quantile_over_time', 'last_over_time', 'absent', 'sort', 'sort_desc',
  'round', 'ceil', 'floor', 'and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset',
  'le', 'Inf', 'NaN',
]);

/**
 * The metric names a PromQL expression reads. Label matchers (`{...}`), strings,
 * range selectors (`[5m]`), label lists after by/without/on/ignoring, numbers,
 * Grafana variables (`$__rate_interval`) and the words above are removed first.
 */
export function promqlMetricNames(expr: string): string[] {
  const e = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '$1')
    .replace(/\$\{?[A-Za-z_]+\}?/g, '');
  const out = new Set<string>();
  for (const m of e.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const w = m[0];
    const before = e[m.index! - 1];
    if (before !== undefined && /[0-9.]/.test(before)) continue; // 1e3, 0.5
    if (PROMQL_WORDS.has(w)) continue;
    out.add(w);
  }
  return [...out];
}

/**
 * Series the shipped monitoring files name before anything records them, each with
 * what will: they are reported (not failed) while absent. Keep this list short and
 * name the change that removes each entry.
 */
export const NOT_YET_RECORDED: Readonly<Record<string, string>> = {
  // the live stack's bus is in memory; test/cluster/cluster-bus.test.ts checks this one
  myelin_bus_cluster_consumer_lag: 'recorded by a bus on a cluster transport only (lib/cluster/cluster-metrics.ts)',
};

/**
 * The names of `wanted` that `exposed` lacks, leaving out NOT_YET_RECORDED (and
 * Prometheus' own series, `builtin`). What was left out is returned too, to report.
 */
export function missingNames(wanted: Iterable<string>, exposed: Set<string>, builtin: readonly string[] = []): { missing: string[]; notYet: string[] } {
  const missing: string[] = [];
  const notYet: string[] = [];
  for (const n of new Set(wanted)) {
    if (exposed.has(n) || builtin.includes(n)) continue;
    if (n in NOT_YET_RECORDED) notYet.push(n);
    else missing.push(n);
  }
  return { missing: missing.sort(), notYet: notYet.sort() };
}

/**
 * A live stack after traffic, and the metric names its /metrics exposes: what the
 * Grafana and alert-rule checks compare their names with. Enough pubs for the
 * gateway's one-in-64 ingress timing; the bus and gateway copy their figures into the
 * Metrics once a second, hence the wait.
 */
export async function stackWithTraffic(): Promise<{ stack: LiveStack; exposed: Set<string> }> {
  const stack = await startLiveStack();
  await stack.traffic(200);
  await new Promise((r) => setTimeout(r, 1200));
  return { stack, exposed: exposedNames(await stack.scrape()) };
}
