// What the AIClient tells about itself: the overhead histogram (ai.stats().overheadUs,
// time inside myelin less the waits for the upstream, backoff and limits) and the
// OpenTelemetry GenAI spans, collected by a minimal TracerProvider written here
// against the @opentelemetry/api interfaces. Only relations are checked, never a speed.
import { randomUUID } from 'node:crypto';
import {
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
  type SpanKind,
  type SpanOptions,
  type SpanStatus,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { AIClient } from '../../lib/ai/client/index.js';
import { UpstreamSimulator } from '../../lib/ai/simulator/index.js';
import { KEY, TARGETS, client, drain, hello, rawServer, rejection } from './client-fixtures.js';

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

function make(opts: Parameters<typeof client>[1] = {}, at = url): AIClient {
  const c = client(at, opts);
  open.push(c);
  return c;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

describe('overhead histogram', () => {
  test('one record per chat call, above zero and below the calls\' own latency', async () => {
    const ai = make();
    expect(ai.stats().overheadUs.count).toBe(0);
    const n = 20;
    const latencyUs: number[] = [];
    for (let i = 0; i < n; i++) {
      // 5 ms of upstream latency per call: time the client must not count as its own.
      const res = await ai.chat(hello(TARGETS.openai, { headers: { 'x-sim-latency-ms': '5' } }));
      latencyUs.push(res.latencyMs * 1000);
    }
    const o = ai.stats().overheadUs;
    expect(o.count).toBe(n);
    expect(o.p50).toBeGreaterThan(0);
    expect(o.p50).toBeLessThan(median(latencyUs));
    expect(o.max).toBeLessThan(Math.max(...latencyUs));
  });

  test('a retry\'s backoff is a wait, not overhead', async () => {
    let n = 0;
    const up = await rawServer((_req, res) => {
      if (n++ === 0) {
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after-ms': '150' });
        res.end(JSON.stringify({ error: { message: 'slow down', type: 'rate_limit_exceeded' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'x', model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1 } }));
    });
    try {
      const ai = make({ providers: [{ name: 'raw', kind: 'openai', baseURL: `${up.url}/v1`, apiKey: KEY }] }, up.url);
      const res = await ai.chat(hello('raw/m'));
      expect(res.attempts).toBe(2);
      const o = ai.stats().overheadUs;
      expect(o.count).toBe(1);
      // The call slept at least 150 ms; its overhead is what is left without that sleep.
      expect(o.max).toBeLessThan((res.latencyMs - 150) * 1000);
    } finally {
      await up.close();
    }
  });

  test('streams, cache hits, embeddings and failures are each one record', async () => {
    const ai = make({ cache: {} });
    const req = hello(TARGETS.openai, { temperature: 0, messages: [{ role: 'user', content: `q ${randomUUID()}` }], headers: { 'x-sim-latency-ms': '5' } });
    const streamed = await drain(ai.stream(req));
    expect(streamed.error).toBeUndefined();
    const done = streamed.parts.at(-1);
    expect(done?.type).toBe('done');
    const first = ai.stats().overheadUs;
    expect(first.count).toBe(1);
    expect(first.max).toBeGreaterThan(0);
    if (done?.type === 'done') expect(first.max).toBeLessThan(done.response.latencyMs * 1000);
    expect((await ai.chat(req)).cached).toBe(true);
    await ai.embed({ model: TARGETS.ollama, input: 'one' });
    const err = await rejection(ai.chat(hello(TARGETS.openai, { headers: { 'x-sim-fault': '401' } })));
    expect(err.code).toBe('ERR_AI_UPSTREAM');
    expect(ai.stats().overheadUs.count).toBe(4);
  });
});

// A TracerProvider that keeps every ended span: just enough of @opentelemetry/api.
interface Ended {
  name: string;
  kind: SpanKind | undefined;
  attributes: Attributes;
  status: SpanStatus;
}

class CollectingSpan implements Span {
  readonly #ctx: SpanContext = { traceId: randomUUID().replaceAll('-', ''), spanId: randomUUID().replaceAll('-', '').slice(0, 16), traceFlags: 1 };
  readonly #out: Ended[];
  readonly #rec: Ended;
  #ended = false;

  constructor(name: string, options: SpanOptions | undefined, out: Ended[]) {
    this.#out = out;
    this.#rec = { name, kind: options?.kind, attributes: { ...options?.attributes }, status: { code: SpanStatusCode.UNSET } };
  }
  spanContext(): SpanContext {
    return this.#ctx;
  }
  setAttribute(key: string, value: Attributes[string]): this {
    this.#rec.attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    Object.assign(this.#rec.attributes, attributes);
    return this;
  }
  addEvent(): this {
    return this;
  }
  addLink(): this {
    return this;
  }
  addLinks(): this {
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.#rec.status = status;
    return this;
  }
  updateName(name: string): this {
    this.#rec.name = name;
    return this;
  }
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#out.push(this.#rec);
  }
  isRecording(): boolean {
    return !this.#ended;
  }
  recordException(): void {}
}

function collectingProvider(out: Ended[]): TracerProvider {
  const tracer = {
    startSpan: (name: string, options?: SpanOptions, _ctx?: Context) => new CollectingSpan(name, options, out),
    startActiveSpan: (name: string, ...rest: unknown[]) => {
      const fn = rest.at(-1) as (span: Span) => unknown;
      return fn(new CollectingSpan(name, rest.length > 1 ? (rest[0] as SpanOptions) : undefined, out));
    },
  } as Tracer;
  return { getTracer: () => tracer };
}

describe('OpenTelemetry GenAI spans', () => {
  const spans: Ended[] = [];
  beforeAll(() => {
    expect(trace.setGlobalTracerProvider(collectingProvider(spans))).toBe(true);
  });
  afterEach(() => {
    spans.length = 0;
  });
  afterAll(() => {
    trace.disable();
  });

  const CLIENT = 2; // SpanKind.CLIENT

  test('a chat span per provider with the GenAI attributes', async () => {
    const ai = make();
    const systems = { openai: 'openai', claude: 'anthropic', ollama: 'ollama' } as const;
    for (const [name, target] of Object.entries(TARGETS) as Array<[keyof typeof TARGETS, string]>) {
      const res = await ai.chat(hello(target, { maxTokens: 20, temperature: 0.5 }));
      const s = spans.at(-1)!;
      expect(s.name).toBe(`chat ${target}`);
      expect(s.kind).toBe(CLIENT);
      expect(s.status.code).toBe(SpanStatusCode.UNSET);
      expect(s.attributes).toMatchObject({
        'gen_ai.operation.name': 'chat',
        'gen_ai.system': systems[name],
        'gen_ai.request.model': target.split('/')[1],
        'gen_ai.response.model': res.model,
        'gen_ai.request.max_tokens': 20,
        'gen_ai.request.temperature': 0.5,
        'gen_ai.usage.input_tokens': res.usage.inputTokens,
        'gen_ai.usage.output_tokens': res.usage.outputTokens,
        'gen_ai.response.finish_reasons': [res.finishReason],
        'myelin.ai.attempts': 1,
        'myelin.ai.cached': false,
      });
      expect(s.attributes['error.type']).toBeUndefined();
    }
    expect(spans).toHaveLength(3);
  });

  test('a failure sets error.type and status ERROR, with the attempts', async () => {
    const ai = make();
    const err = await rejection(ai.chat(hello(TARGETS.openai, { headers: { 'x-sim-fault': '500' } })));
    expect(err.code).toBe('ERR_AI_UPSTREAM');
    expect(spans).toHaveLength(1);
    expect(spans[0].status.code).toBe(SpanStatusCode.ERROR);
    expect(spans[0].attributes['error.type']).toBe('ERR_AI_UPSTREAM');
    expect(spans[0].attributes['myelin.ai.attempts']).toBe(3);
  });

  test('a cache hit is marked cached; streams and embeddings have spans too', async () => {
    const ai = make({ cache: {} });
    const req = hello(TARGETS.openai, { temperature: 0, messages: [{ role: 'user', content: `q ${randomUUID()}` }] });
    await ai.chat(req);
    await ai.chat(req);
    expect(spans.map((s) => s.attributes['myelin.ai.cached'])).toEqual([false, true]);
    expect(spans[1].attributes['myelin.ai.attempts']).toBe(0);
    const streamed = await drain(ai.stream(hello(TARGETS.claude)));
    expect(streamed.error).toBeUndefined();
    expect(spans[2]).toMatchObject({ name: `chat ${TARGETS.claude}`, attributes: { 'gen_ai.system': 'anthropic', 'gen_ai.operation.name': 'chat' } });
    expect(spans[2].attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
    const model = 'openai/text-embedding-3-small';
    const e = await ai.embed({ model, input: ['a', 'b'] });
    expect(spans[3]).toMatchObject({
      name: `embed ${model}`,
      kind: CLIENT,
      attributes: { 'gen_ai.operation.name': 'embeddings', 'gen_ai.system': 'openai', 'gen_ai.request.model': 'text-embedding-3-small', 'gen_ai.usage.input_tokens': e.usage.inputTokens },
    });
  });

  test('no key, prompt or completion in any attribute', async () => {
    const ai = make();
    const prompt = `secret prompt ${randomUUID()}`;
    const res = await ai.chat(hello(TARGETS.openai, { messages: [{ role: 'user', content: prompt }] }));
    await rejection(ai.chat(hello(TARGETS.claude, { messages: [{ role: 'user', content: prompt }], headers: { 'x-sim-fault': '401' } })));
    const all = JSON.stringify(spans);
    expect(spans).toHaveLength(2);
    expect(all).not.toContain(KEY);
    expect(all).not.toContain(prompt);
    expect(res.text.length).toBeGreaterThan(0);
    expect(all).not.toContain(res.text);
  });
});

test('without a registered TracerProvider nothing is recorded', async () => {
  const spans: Ended[] = [];
  trace.setGlobalTracerProvider(collectingProvider(spans));
  trace.disable();
  const ai = make();
  await ai.chat(hello(TARGETS.openai));
  expect(spans).toHaveLength(0);
});
