// The AIClient's `metrics` option against a real backend: a MetricsSink written here
// over a prom-client Registry (the future Metrics class implements the same interface),
// fed by real chat, stream, cached and failing calls against the simulator. Every
// assertion reads the Registry's Prometheus text exposition, as a scrape would.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { AIClient, AIClientOptions } from '../../lib/ai/client/index.js';
import { AIClient as Client } from '../../lib/ai/client/index.js';
import { MAX_OTHER_TARGETS } from '../../lib/ai/client/client-metrics.js';
import { UpstreamSimulator } from '../../lib/ai/simulator/index.js';
import { isMetricsSink, type MetricsSink } from '../../lib/internal/metrics-sink.js';
import { KEY, TARGETS, client, drain, hello, providers, rejection, until } from './client-fixtures.js';

const PREFIX = 'myelin_';

/** A MetricsSink over a prom-client Registry: the sink adds its prefix; an existing instrument is reused. */
function promSink(register: Registry, prefix = PREFIX): MetricsSink {
  const existing = <M>(name: string) => register.getSingleMetric(prefix + name) as M | undefined;
  return {
    counter(name, o) {
      const c = existing<Counter>(name) ?? new Counter({ name: prefix + name, help: o.help, labelNames: [...(o.labelNames ?? [])], registers: [register] });
      return { inc: (labels, n = 1) => (labels ? c.inc(labels, n) : c.inc(n)) };
    },
    gauge(name, o) {
      const g = existing<Gauge>(name) ?? new Gauge({ name: prefix + name, help: o.help, labelNames: [...(o.labelNames ?? [])], registers: [register] });
      return { set: (labels, v) => (labels ? g.set(labels, v) : g.set(v)) };
    },
    histogram(name, o) {
      const h =
        existing<Histogram>(name) ??
        new Histogram({ name: prefix + name, help: o.help, labelNames: [...(o.labelNames ?? [])], buckets: o.buckets ? [...o.buckets] : undefined, registers: [register] });
      return { observe: (labels, v) => (labels ? h.observe(labels, v) : h.observe(v)) };
    },
  };
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (the subset prom-client writes) into samples. */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsed exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** A scrape: the samples, and lookups by name and a subset of labels. */
async function scrape(register: Registry) {
  const text = await register.metrics();
  const samples = parse(text);
  const find = (name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === PREFIX + name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return {
    text,
    samples,
    find,
    /** The one sample's value; undefined when there is none. */
    value(name: string, labels: Record<string, string> = {}): number | undefined {
      const f = find(name, labels);
      if (f.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${f.length} samples`);
      return f[0]?.value;
    },
  };
}

let sim: UpstreamSimulator;
let url: string;
const open: AIClient[] = [];

beforeAll(async () => {
  sim = new UpstreamSimulator({ apiKey: KEY, tokens: 12 });
  url = (await sim.listen(0)).url;
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await sim.close();
});

function make(opts: Partial<AIClientOptions> = {}): AIClient {
  const c = client(url, opts);
  open.push(c);
  return c;
}

const fault500 = { headers: { 'x-sim-fault': '500' } };
const PRICE = { inputPerMTok: 3, outputPerMTok: 15 };

describe('AIClient metrics through a MetricsSink over prom-client', () => {
  test('chat and stream: requests, attempts, tokens, cost, duration, ttft and overhead per target', async () => {
    const register = new Registry();
    const ai = make({ metrics: promSink(register), prices: { [TARGETS.openai]: PRICE } });
    const a = await ai.chat(hello(TARGETS.openai));
    const b = await ai.chat(hello(TARGETS.openai));
    const s = await drain(ai.stream(hello(TARGETS.claude)));
    expect(s.error).toBeUndefined();
    const done = s.parts.at(-1);
    if (done?.type !== 'done') throw new Error('the stream did not finish');
    const c = done.response;

    const m = await scrape(register);
    const oa = { target: TARGETS.openai };
    const cl = { target: TARGETS.claude };
    expect(m.value('ai_requests_total', { ...oa, outcome: 'ok' })).toBe(2);
    expect(m.value('ai_requests_total', { ...cl, outcome: 'ok' })).toBe(1);
    expect(m.find('ai_requests_total').map((x) => x.labels.outcome)).toEqual(['ok', 'ok']);
    expect(m.value('ai_attempts_total', oa)).toBe(2);
    expect(m.value('ai_attempts_total', cl)).toBe(1);
    expect(m.value('ai_tokens_total', { ...oa, direction: 'input' })).toBe(a.usage.inputTokens + b.usage.inputTokens);
    expect(m.value('ai_tokens_total', { ...oa, direction: 'output' })).toBe(a.usage.outputTokens + b.usage.outputTokens);
    expect(m.value('ai_tokens_total', { ...cl, direction: 'output' })).toBe(c.usage.outputTokens);
    expect(a.usage.outputTokens).toBeGreaterThan(0);
    // Cost only for the target with a price; the same figure as the responses'.
    expect(m.value('ai_cost_usd_total', oa)).toBeCloseTo(a.costUsd! + b.costUsd!, 12);
    expect(m.find('ai_cost_usd_total', cl)).toEqual([]);
    // Histograms: one observation per successful call; ttft for the stream only.
    expect(m.value('ai_request_duration_seconds_count', oa)).toBe(2);
    expect(m.value('ai_request_duration_seconds_count', cl)).toBe(1);
    expect(m.value('ai_request_duration_seconds_sum', oa)).toBeGreaterThan(0);
    expect(m.value('ai_request_duration_seconds_bucket', { ...oa, le: '+Inf' })).toBe(2);
    expect(m.value('ai_ttft_seconds_count', cl)).toBe(1);
    expect(m.find('ai_ttft_seconds_count', oa)).toEqual([]);
    // ttft <= the whole stream's duration on that target.
    expect(m.value('ai_ttft_seconds_sum', cl)!).toBeLessThanOrEqual(m.value('ai_request_duration_seconds_sum', cl)!);
    // Overhead: the same records as stats().overheadUs, in seconds, unlabelled.
    const st = ai.stats();
    expect(m.value('ai_overhead_seconds_count')).toBe(3);
    expect(st.overheadUs.count).toBe(3);
    expect(m.find('ai_overhead_seconds_count')[0].labels).toEqual({});
    expect(m.value('ai_overhead_seconds_sum')!).toBeGreaterThan(0);
    expect(m.value('ai_overhead_seconds_sum')! * 1e6).toBeGreaterThanOrEqual(st.overheadUs.max * 0.99);
    // The names carry the sink's prefix once; no breaker or cache series without those options.
    expect(m.samples.every((x) => x.name.startsWith('myelin_ai_') && !x.name.startsWith('myelin_myelin_'))).toBe(true);
    expect(m.find('ai_breaker_state')).toEqual([]);
    expect(m.find('ai_cache_total')).toEqual([]);
    // Agrees with stats().
    expect(st.targets[TARGETS.openai]).toMatchObject({ requests: 2, successes: 2, attempts: 2 });
    expect(st.metrics).toEqual({ errors: 0 });
    // No key, no prompt, no completion anywhere in the exposition.
    expect(m.text).not.toContain(KEY);
    expect(m.text).not.toContain('hello there');
    expect(m.text).not.toContain(a.text.slice(0, 12));
  });

  test('failures: outcome is the error code; attempts count the retries', async () => {
    const register = new Registry();
    const ai = make({ metrics: promSink(register), retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 2 } });
    const err = await rejection(ai.chat(hello(TARGETS.openai, fault500)));
    expect(err.code).toBe('ERR_AI_UPSTREAM');
    const s = await drain(ai.stream(hello(TARGETS.openai, { headers: { 'x-sim-fault': '400' } })));
    expect(s.error?.code).toBeDefined();
    await ai.chat(hello(TARGETS.openai));

    const m = await scrape(register);
    const oa = { target: TARGETS.openai };
    const st = ai.stats().targets[TARGETS.openai];
    expect(m.value('ai_requests_total', { ...oa, outcome: 'ok' })).toBe(1);
    for (const [code, n] of Object.entries(st.errors)) expect(m.value('ai_requests_total', { ...oa, outcome: code })).toBe(n);
    expect(m.value('ai_requests_total', { ...oa, outcome: 'ERR_AI_UPSTREAM' })).toBeGreaterThanOrEqual(1);
    // 3 attempts for the 5xx, 1 for the 4xx (not retried), 1 for the success.
    expect(m.value('ai_attempts_total', oa)).toBe(st.attempts);
    expect(st.attempts).toBe(5);
    // Failures are counted, not timed.
    expect(m.value('ai_request_duration_seconds_count', oa)).toBe(1);
    expect(m.text).not.toContain(KEY);
  });

  test('breaker gauge: 0 when created, 2 once open, 1 half-open, 0 again after a good probe', async () => {
    const register = new Registry();
    const ai = make({ metrics: promSink(register), breaker: { minRequests: 2, failureRate: 0.6, windowMs: 60_000, openMs: 200 }, retry: { attempts: 1 } });
    const oa = { target: TARGETS.openai };
    await ai.chat(hello(TARGETS.openai));
    expect((await scrape(register)).value('ai_breaker_state', oa)).toBe(0);
    // 1 success, 2 failures: 2/3 >= 0.6 opens it.
    for (let i = 0; i < 2; i++) expect((await rejection(ai.chat(hello(TARGETS.openai, fault500)))).code).toBe('ERR_AI_UPSTREAM');
    expect(ai.stats().targets[TARGETS.openai].breaker).toBe('open');
    let m = await scrape(register);
    expect(m.value('ai_breaker_state', oa)).toBe(2);
    // A refused call: its outcome is counted, but no attempt reached the upstream.
    const refused = await rejection(ai.chat(hello(TARGETS.openai)));
    expect(refused.code).toBe('ERR_AI_CIRCUIT_OPEN');
    m = await scrape(register);
    expect(m.value('ai_requests_total', { ...oa, outcome: 'ERR_AI_CIRCUIT_OPEN' })).toBe(1);
    expect(m.value('ai_requests_total', { ...oa, outcome: 'ERR_AI_UPSTREAM' })).toBe(2);
    expect(m.value('ai_attempts_total', oa)).toBe(3);
    // Another target's breaker is its own series.
    await ai.chat(hello(TARGETS.claude));
    m = await scrape(register);
    expect(m.value('ai_breaker_state', { target: TARGETS.claude })).toBe(0);
    expect(m.value('ai_breaker_state', oa)).toBe(2);
    // After openMs the breaker reads half-open (1); a good probe closes it (0).
    await until(() => ai.stats().targets[TARGETS.openai].breaker === 'half-open', 'half-open');
    expect((await scrape(register)).value('ai_breaker_state', oa)).toBe(1);
    await ai.chat(hello(TARGETS.openai));
    expect(ai.stats().targets[TARGETS.openai].breaker).toBe('closed');
    expect((await scrape(register)).value('ai_breaker_state', oa)).toBe(0);
  });

  test('cache: hit, miss and shared, as stats().cache counts them', async () => {
    const register = new Registry();
    const ai = make({ metrics: promSink(register), cache: {} });
    const req = hello(TARGETS.openai, { temperature: 0, messages: [{ role: 'user', content: 'cache me' }] });
    expect((await ai.chat(req)).cached).toBe(false); // miss
    expect((await ai.chat(req)).cached).toBe(true); // hit
    const s = await drain(ai.stream(req)); // hit, replayed as a stream
    expect(s.parts.at(-1)?.type).toBe('done');
    // Two identical concurrent calls: both miss, the second joins the first.
    const other = hello(TARGETS.openai, { temperature: 0, messages: [{ role: 'user', content: 'shared' }], headers: { 'x-sim-latency-ms': '30' } });
    await Promise.all([ai.chat(other), ai.chat(other)]);

    const m = await scrape(register);
    const cache = ai.stats().cache!;
    expect(cache).toEqual({ hits: 2, misses: 3, shared: 1 });
    expect(m.value('ai_cache_total', { result: 'hit' })).toBe(cache.hits);
    expect(m.value('ai_cache_total', { result: 'miss' })).toBe(cache.misses);
    expect(m.value('ai_cache_total', { result: 'shared' })).toBe(cache.shared);
    // Upstream calls only: the first call and the one shared call.
    expect(m.value('ai_requests_total', { target: TARGETS.openai, outcome: 'ok' })).toBe(2);
    // Every call has its overhead record, hits and followers included.
    expect(m.value('ai_overhead_seconds_count')).toBe(5);
  });

  test('target labels stay bounded: configured targets by name, unconfigured ones capped into provider/_other', async () => {
    const register = new Registry();
    const ai = make({ metrics: promSink(register), models: { fast: TARGETS.claude } });
    await ai.chat(hello('fast'));
    const n = MAX_OTHER_TARGETS + 3;
    for (let i = 0; i < n; i++) await ai.chat(hello(`openai/m-${i}`, { headers: { 'x-sim-tokens': '1' } }));
    const m = await scrape(register);
    const targets = new Set(m.find('ai_requests_total').map((x) => x.labels.target));
    expect(targets.has(TARGETS.claude)).toBe(true);
    expect(targets.has('openai/m-0')).toBe(true);
    expect(targets.has(`openai/m-${MAX_OTHER_TARGETS}`)).toBe(false);
    expect(targets.size).toBe(1 + MAX_OTHER_TARGETS + 1);
    expect(m.value('ai_requests_total', { target: 'openai/_other', outcome: 'ok' })).toBe(3);
  });

  test('two clients on one sink share the instruments', async () => {
    const register = new Registry();
    const sink = promSink(register);
    const a = make({ metrics: sink });
    const b = make({ metrics: sink });
    await a.chat(hello(TARGETS.openai));
    await b.chat(hello(TARGETS.openai));
    expect((await scrape(register)).value('ai_requests_total', { target: TARGETS.openai, outcome: 'ok' })).toBe(2);
    expect(a.stats().metrics).toEqual({ errors: 0 });
  });
});

describe('a sink that fails never fails a call', () => {
  const boom = () => {
    throw new Error('sink down');
  };

  test('instruments whose inc/set/observe throw: calls succeed and fail as without metrics; errors are counted', async () => {
    const bad = { inc: boom, set: boom, observe: boom };
    const sink: MetricsSink = { counter: () => bad, gauge: () => bad, histogram: () => bad };
    const ai = make({ metrics: sink, cache: {}, breaker: { minRequests: 2, failureRate: 0.6, openMs: 60_000 }, retry: { attempts: 1 } });
    const req = hello(TARGETS.openai, { temperature: 0 });
    expect((await ai.chat(req)).text).not.toBe('');
    expect((await ai.chat(req)).cached).toBe(true);
    const s = await drain(ai.stream(hello(TARGETS.claude)));
    expect(s.error).toBeUndefined();
    expect(s.parts.at(-1)?.type).toBe('done');
    for (let i = 0; i < 2; i++) expect((await rejection(ai.chat(hello(TARGETS.openai, fault500)))).code).toBe('ERR_AI_UPSTREAM');
    expect((await rejection(ai.chat(hello(TARGETS.openai)))).code).toBe('ERR_AI_CIRCUIT_OPEN');
    const st = ai.stats();
    expect(st.targets[TARGETS.openai].breaker).toBe('open');
    expect(st.metrics!.errors).toBeGreaterThan(10);
  });

  test('factories that throw or return no instrument: the client is built and works', async () => {
    for (const sink of [
      { counter: boom, gauge: boom, histogram: boom },
      { counter: () => undefined, gauge: () => ({}), histogram: () => 5 },
    ] as unknown as MetricsSink[]) {
      const ai = make({ metrics: sink });
      expect(ai.stats().metrics).toEqual({ errors: 11 });
      expect((await ai.chat(hello(TARGETS.openai))).text).not.toBe('');
      expect((await drain(ai.stream(hello(TARGETS.openai)))).error).toBeUndefined();
      expect(ai.stats().metrics).toEqual({ errors: 11 });
    }
  });
});

describe('what is not a sink', () => {
  test.each([
    ['a number', 5],
    ['null', null],
    ['an empty object', {}],
    ['a prom-client Registry', new Registry()],
    ['a sink missing histogram()', { counter() {}, gauge() {} }],
    ['methods that are not functions', { counter: 1, gauge: 2, histogram: 3 }],
  ])('%s is ERR_INVALID_ARGUMENT naming metrics', (_, metrics) => {
    expect(isMetricsSink(metrics)).toBe(false);
    let caught: any;
    try {
      new Client({ providers: providers(url), metrics: metrics as never });
    } catch (err) {
      caught = err;
    }
    expect(caught?.code).toBe('ERR_INVALID_ARGUMENT');
    expect(caught.message).toContain('metrics');
  });
});
