// The hot-path breakdown of AI requests: ai_stage_seconds{stage} (client-metrics.ts),
// recorded by a real AIClient against the upstream simulator, whose latency (before the
// response's first byte) and streaming pace give each stage a lower bound the test can
// rely on. Upper bounds are structural, never a wall-clock threshold: the stages of one
// call lie inside its latencyMs. Then the same family through a real Metrics, and on a
// Gateway's /metrics after a streamed /v1/chat/completions.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { AIClient, AIClientOptions, ChatResponse, StreamPart } from '../../lib/ai/client/index.js';
import { countMessages } from '../../lib/ai/session/token-count.js';
import { UpstreamSimulator } from '../../lib/ai/simulator/index.js';
import { Gateway } from '../../lib/gateway/gateway.js';
import type { MetricLabels, MetricsSink } from '../../lib/internal/metrics-sink.js';
import { Metrics } from '../../lib/metrics/metrics.js';
import { PROVIDERS, TARGETS, client, drain, hello } from './client-fixtures.js';

const LATENCY_MS = 60;
const TOKENS = 10;
const TOKENS_PER_S = 50;
/** Node timers may fire up to a millisecond before performance.now() says they are due. */
const TIMER_SLACK_S = 0.002;

interface Observation {
  name: string;
  labels: MetricLabels | undefined;
  v: number;
}

/** A MetricsSink that keeps every histogram observation, and the options instruments were made with. */
function recordingSink() {
  const observed: Observation[] = [];
  const made = new Map<string, { labelNames?: readonly string[]; buckets?: readonly number[] }>();
  const sink: MetricsSink = {
    counter: () => ({ inc: () => undefined }),
    gauge: () => ({ set: () => undefined }),
    histogram: (name, o) => {
      made.set(name, o);
      return { observe: (labels, v) => void observed.push({ name, labels, v }) };
    },
  };
  /** Observed seconds of one stage, in recording order. */
  const stage = (s: string) => observed.filter((o) => o.name === 'ai_stage_seconds' && o.labels?.stage === s).map((o) => o.v);
  return { sink, observed, made, stage, clear: () => observed.splice(0) };
}

let sim: UpstreamSimulator;
let url: string;
const open: AIClient[] = [];

beforeAll(async () => {
  sim = new UpstreamSimulator({ latencyMs: LATENCY_MS, tokensPerS: TOKENS_PER_S, tokens: TOKENS });
  url = (await sim.listen(0)).url;
});
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});
afterAll(() => sim.close());

function mk(extra: Partial<AIClientOptions>): AIClient {
  const ai = client(url, extra);
  open.push(ai);
  return ai;
}

function doneOf(parts: StreamPart[]): ChatResponse {
  const last = parts.at(-1);
  if (last?.type !== 'done') throw new Error(`the stream did not end with done: ${JSON.stringify(last)}`);
  return last.response;
}

describe('ai_stage_seconds with a recording sink', () => {
  test('one histogram family, label stage only, one bucket set', () => {
    const r = recordingSink();
    mk({ metrics: r.sink });
    const o = r.made.get('ai_stage_seconds');
    expect(o?.labelNames).toEqual(['stage']);
    expect(o?.buckets?.length).toBeGreaterThan(0);
    expect([...o!.buckets!].sort((a, b) => a - b)).toEqual(o!.buckets);
  });

  test.each(PROVIDERS)('a stream (%s) records connect, first_token and stream once each, within the call', async (p) => {
    const r = recordingSink();
    const ai = mk({ metrics: r.sink });
    const { parts, error } = await drain(ai.stream(hello(TARGETS[p])));
    expect(error).toBeUndefined();
    const res = doneOf(parts);
    // More than one content part arrived, and still one observation per stage.
    expect(parts.filter((x) => x.type === 'text').length).toBeGreaterThan(1);
    const [connect, first, stream] = [r.stage('connect'), r.stage('first_token'), r.stage('stream')];
    expect([connect.length, first.length, stream.length]).toEqual([1, 1, 1]);
    expect(r.stage('limit_wait')).toEqual([]);
    // The simulator waits LATENCY_MS before its headers: connect and first_token hold that wait.
    expect(connect[0]).toBeGreaterThanOrEqual(LATENCY_MS / 1000 - TIMER_SLACK_S);
    expect(first[0]).toBeGreaterThanOrEqual(connect[0]);
    // Then TOKENS content tokens, one every 1/TOKENS_PER_S s after the first: from sending to
    // the last token is at least the latency plus that pace.
    const paced = (TOKENS - 1) / TOKENS_PER_S;
    expect(first[0] + stream[0]).toBeGreaterThanOrEqual(LATENCY_MS / 1000 + paced - TIMER_SLACK_S);
    // stream alone starts when the client reads the first token, which may come later than the
    // simulator wrote it (both share this event loop): roughly the pace, not exactly.
    expect(stream[0]).toBeGreaterThanOrEqual(paced / 2);
    // first_token and stream are adjacent stretches inside the call.
    expect(first[0] + stream[0]).toBeLessThanOrEqual(res.latencyMs / 1000);
  });

  test('a non-streamed chat records connect only', async () => {
    const r = recordingSink();
    const ai = mk({ metrics: r.sink });
    const res = await ai.chat(hello(TARGETS.openai));
    expect(r.stage('connect')).toHaveLength(1);
    expect(r.stage('connect')[0]).toBeGreaterThanOrEqual(LATENCY_MS / 1000 - TIMER_SLACK_S);
    expect(r.stage('connect')[0]).toBeLessThanOrEqual(res.latencyMs / 1000);
    expect(r.stage('first_token')).toEqual([]);
    expect(r.stage('stream')).toEqual([]);
    expect(r.stage('limit_wait')).toEqual([]);
  });

  test('each attempt that got headers records connect; only the committed stream records first_token', async () => {
    const r = recordingSink();
    const ai = mk({ metrics: r.sink, retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 5 } });
    // Every attempt gets a 500 after its latency: two connects, no stream stages.
    const { error } = await drain(ai.stream(hello(TARGETS.openai, { headers: { 'x-sim-fault': '500' } })));
    expect(error?.code).toBe('ERR_AI_UPSTREAM');
    expect(r.stage('connect')).toHaveLength(2);
    expect(r.stage('first_token')).toEqual([]);
    expect(r.stage('stream')).toEqual([]);
  });

  test('a stream the consumer leaves early records first_token but no stream', async () => {
    const r = recordingSink();
    const ai = mk({ metrics: r.sink });
    for await (const p of ai.stream(hello(TARGETS.openai))) {
      if (p.type === 'text') break;
    }
    expect(r.stage('first_token')).toHaveLength(1);
    expect(r.stage('stream')).toEqual([]);
  });

  test('a rate-limited client records limit_wait, and > 0 for the attempt that had to wait', async () => {
    const r = recordingSink();
    // tpm 6,000: a bucket of 6,000 tokens refilled at 0.1 per ms. Each call reserves its prompt
    // plus maxTokens = 3,005 tokens, so the second one finds 5 short: it waits 50 ms for the
    // refill, or until the first call settles its reservation (after >= 300 ms), whichever is first.
    const model = TARGETS.openai.slice(TARGETS.openai.indexOf('/') + 1);
    const req = hello(TARGETS.openai, { headers: { 'x-sim-latency-ms': '300' } });
    req.maxTokens = 3005 - countMessages(req.messages, model);
    const ai = mk({ metrics: r.sink, limits: { [TARGETS.openai]: { tpm: 6000 } } });
    await Promise.all([ai.chat(req), ai.chat({ ...req })]);
    const waits = r.stage('limit_wait');
    expect(waits).toHaveLength(2);
    expect(Math.max(...waits)).toBeGreaterThanOrEqual(0.05 - TIMER_SLACK_S);
    expect(Math.min(...waits)).toBeLessThan(Math.max(...waits));
    expect(r.stage('connect')).toHaveLength(2);
  });

  test('an attempt the limits refuse records no limit_wait and no connect', async () => {
    const r = recordingSink();
    // 60 tokens a minute, and a call that needs more than that: its turn comes after its deadline.
    const ai = mk({ metrics: r.sink, limits: { [TARGETS.openai]: { tpm: 60 } }, retry: { attempts: 1, minDelayMs: 1, maxDelayMs: 5, deadlineMs: 1000 } });
    await ai.chat(hello(TARGETS.openai, { maxTokens: 50 }));
    const err = await ai.chat(hello(TARGETS.openai, { maxTokens: 50 })).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ERR_AI_RATE_LIMITED');
    expect(r.stage('limit_wait')).toHaveLength(1);
    expect(r.stage('connect')).toHaveLength(1);
  });

  test('a rate-limited stream records limit_wait along with its other stages', async () => {
    const r = recordingSink();
    const ai = mk({ metrics: r.sink, limits: { openai: { rpm: 100 } } });
    const { error } = await drain(ai.stream(hello(TARGETS.openai)));
    expect(error).toBeUndefined();
    expect(r.stage('limit_wait')).toHaveLength(1);
    expect(r.stage('limit_wait')[0]).toBeGreaterThanOrEqual(0);
    expect(r.stage('first_token')).toHaveLength(1);
    expect(r.stage('stream')).toHaveLength(1);
  });

  test('a cache hit reaches no upstream and records no stage', async () => {
    const r = recordingSink();
    const ai = mk({ metrics: r.sink, cache: { ttlMs: 60_000 } });
    const req = hello(TARGETS.openai, { temperature: 0 });
    await drain(ai.stream(req));
    const before = r.observed.filter((o) => o.name === 'ai_stage_seconds').length;
    expect(before).toBe(3);
    const { parts } = await drain(ai.stream({ ...req }));
    expect(doneOf(parts).cached).toBe(true);
    expect(r.observed.filter((o) => o.name === 'ai_stage_seconds').length).toBe(before);
  });
});

describe('an untrusted sink', () => {
  const throwing = (which: 'factory' | 'observe'): MetricsSink => ({
    counter: () => ({ inc: () => undefined }),
    gauge: () => ({ set: () => undefined }),
    histogram: (name) => {
      if (name === 'ai_stage_seconds' && which === 'factory') throw new Error('no histogram for you');
      return {
        observe: () => {
          throw new Error('observe failed');
        },
      };
    },
  });

  test.each(['factory', 'observe'] as const)('a sink whose %s throws never fails a request', async (which) => {
    const ai = mk({ metrics: throwing(which), limits: { openai: { rpm: 100 } } });
    const { parts, error } = await drain(ai.stream(hello(TARGETS.openai)));
    expect(error).toBeUndefined();
    expect(doneOf(parts).text.length).toBeGreaterThan(0);
    const res = await ai.chat(hello(TARGETS.openai));
    expect(res.text.length).toBeGreaterThan(0);
    expect(ai.stats().metrics!.errors).toBeGreaterThan(0);
  });
});

/** The samples of one series family in Prometheus text: `name{labels} value` lines. */
function samples(text: string, name: string): Array<{ labels: string; value: number }> {
  const out: Array<{ labels: string; value: number }> = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.push({ labels: m[2] ?? '', value: Number(m[3]) });
  }
  return out;
}

describe('through a real Metrics', () => {
  test('myelin_ai_stage_seconds carries each stage with its count and sum', async () => {
    const metrics = new Metrics({ system: false, defaultRules: false });
    try {
      const ai = mk({ metrics });
      const { error } = await drain(ai.stream(hello(TARGETS.openai)));
      expect(error).toBeUndefined();
      await ai.chat(hello(TARGETS.openai));
      const text = (await metrics.expose()).body.toString('utf8');
      const count = (stage: string) => samples(text, 'myelin_ai_stage_seconds_count').find((s) => s.labels === `{stage="${stage}"}`)?.value;
      const sum = (stage: string) => samples(text, 'myelin_ai_stage_seconds_sum').find((s) => s.labels === `{stage="${stage}"}`)?.value;
      expect(count('connect')).toBe(2);
      expect(count('first_token')).toBe(1);
      expect(count('stream')).toBe(1);
      expect(count('limit_wait')).toBeUndefined();
      expect(sum('first_token')!).toBeGreaterThanOrEqual(LATENCY_MS / 1000 - TIMER_SLACK_S);
      expect(sum('first_token')! + sum('stream')!).toBeGreaterThanOrEqual(LATENCY_MS / 1000 + (TOKENS - 1) / TOKENS_PER_S - TIMER_SLACK_S);
      // The +Inf bucket of each stage holds every observation.
      const inf = samples(text, 'myelin_ai_stage_seconds_bucket').find((s) => /stage="first_token"/.test(s.labels) && /le="\+Inf"/.test(s.labels));
      expect(inf?.value).toBe(1);
    } finally {
      metrics.close();
    }
  });

  test("a Gateway's /metrics shows first_token buckets after a streamed /v1/chat/completions", async () => {
    const metrics = new Metrics({ system: false, defaultRules: false });
    const ai = mk({ metrics });
    const gw = new Gateway({ port: 0, ioThreads: 1, ai, metrics });
    try {
      const { port } = await gw.listen();
      const base = `http://127.0.0.1:${port}`;
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: TARGETS.openai, stream: true, messages: [{ role: 'user', content: 'hello there' }] }),
      });
      expect(res.status).toBe(200);
      const body = await res.text();
      expect(body).toMatch(/data: \[DONE\]/);
      const text = await (await fetch(`${base}/metrics`)).text();
      expect(text).toMatch(/^myelin_ai_stage_seconds_bucket\{stage="first_token",le="[^"]+"\} \d+$/m);
      const inf = samples(text, 'myelin_ai_stage_seconds_bucket').find((s) => /stage="first_token"/.test(s.labels) && /le="\+Inf"/.test(s.labels));
      expect(inf?.value).toBe(1);
      expect(samples(text, 'myelin_ai_stage_seconds_count').find((s) => s.labels === '{stage="stream"}')?.value).toBe(1);
    } finally {
      await gw.close();
      metrics.close();
    }
  });
});
