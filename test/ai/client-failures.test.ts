// Failures against the simulator: retries and their delays, 429 vs quota, x-should-retry,
// fallback (also for a stream that fails before its first content), truncation, error
// frames, time-to-first-token and idle watchdogs, deadlines, aborts, and a consumer that
// leaves the loop half-way. No timing thresholds: delays are checked as computed values.
import diagnostics from 'node:diagnostics_channel';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { AIClient, type StreamPart } from '../../lib/ai/client/index.js';
import { UpstreamSimulator } from '../../lib/ai/simulator/index.js';
import { KEY, PROVIDERS, TARGETS, client, drain, hello, rawServer, rejection, until } from './client-fixtures.js';

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
afterAll(() => sim.close());

function make(opts: Parameters<typeof client>[1] = {}): AIClient {
  const c = client(url, opts);
  open.push(c);
  return c;
}

/** Retry events published while fn runs. */
async function retries<T>(fn: () => Promise<T>): Promise<{ value: T; events: any[] }> {
  const events: any[] = [];
  const on = (m: unknown) => events.push(m);
  diagnostics.subscribe('myelin:ai:retry', on);
  try {
    return { value: await fn(), events };
  } finally {
    diagnostics.unsubscribe('myelin:ai:retry', on);
  }
}

const requests = () => sim.stats().requests;

describe('retries', () => {
  test('429 with retry-after in seconds waits what it says, then succeeds', async () => {
    const ai = make();
    sim.failNext(1, '429', { retryAfter: 1 });
    const { value, events } = await retries(() => ai.chat(hello(TARGETS.claude)));
    expect(value.attempts).toBe(2);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ target: TARGETS.claude, attempt: 1, delayMs: 1000, source: 'retry-after-seconds', code: 'ERR_AI_RATE_LIMITED', status: 429 });
  });

  test('retry-after as an HTTP date is honoured (failure case 3)', async () => {
    const ai = make();
    sim.failNext(1, '429', { retryAfter: 'date:1' });
    const { value, events } = await retries(() => ai.chat(hello(TARGETS.openai)));
    expect(value.attempts).toBe(2);
    expect(events[0].source).toBe('retry-after-date');
    expect(events[0].delayMs).toBeGreaterThanOrEqual(0);
    expect(events[0].delayMs).toBeLessThanOrEqual(1000);
  });

  test('OpenAI retry-after-ms wins over retry-after', async () => {
    const ai = make();
    const { value, events } = await retries(() =>
      ai.chat(hello(TARGETS.openai, { headers: { 'x-sim-fault': '429', 'x-sim-retry-after': '30', 'x-sim-retry-after-ms': '5' } })).catch((e) => e),
    );
    expect(value.code).toBe('ERR_AI_RATE_LIMITED');
    expect(events.map((e) => e.delayMs)).toEqual([5, 5]);
    expect(events[0].source).toBe('retry-after-ms');
  });

  test('without a server delay: jittered backoff inside minDelayMs..maxDelayMs', async () => {
    const ai = make({ retry: { attempts: 4, minDelayMs: 2, maxDelayMs: 6 } });
    sim.failNext(3, '500');
    const { value, events } = await retries(() => ai.chat(hello(TARGETS.ollama)));
    expect(value.attempts).toBe(4);
    expect(events.map((e) => e.source)).toEqual(['backoff', 'backoff', 'backoff']);
    for (const e of events) {
      expect(e.delayMs).toBeGreaterThanOrEqual(2);
      expect(e.delayMs).toBeLessThanOrEqual(6);
    }
  });

  test.each(PROVIDERS)('%s: 429 after all attempts is ERR_AI_RATE_LIMITED with status, provider and request id', async (name) => {
    const ai = make();
    const err = await rejection(ai.chat(hello(TARGETS[name], { headers: { 'x-sim-fault': '429', 'x-sim-retry-after': '0' } })));
    expect(err.code).toBe('ERR_AI_RATE_LIMITED');
    expect(err.status).toBe(429);
    expect(err.provider).toBe(name);
    expect(err.attempts).toBe(3);
    if (name !== 'ollama') expect(err.requestId).toMatch(/^req_/);
  });

  test.each([
    ['openai', 'quota'],
    ['claude', 'quota'],
    ['claude', 'billing'],
    ['ollama', 'quota'],
  ] as const)('%s %s is ERR_AI_QUOTA and never retried, even with x-should-retry: true (failure case 4)', async (name, fault) => {
    const ai = make();
    const before = requests();
    const err = await rejection(ai.chat(hello(TARGETS[name], { headers: { 'x-sim-fault': fault, 'x-sim-should-retry': 'true' } })));
    // Ollama has no quota shape: its 429 is a rate limit (and is retried).
    if (name === 'ollama') {
      expect(err.code).toBe('ERR_AI_RATE_LIMITED');
      return;
    }
    expect(err.code).toBe('ERR_AI_QUOTA');
    expect(err.attempts).toBe(1);
    expect(requests() - before).toBe(1);
    expect(err.status).toBe(fault === 'billing' ? 402 : 429);
  });

  test('529 overloaded is retried', async () => {
    const ai = make();
    sim.failNext(2, '529');
    const r = await ai.chat(hello(TARGETS.claude));
    expect(r.attempts).toBe(3);
  });

  test('x-should-retry: false stops a 500; x-should-retry: true retries a 401', async () => {
    const ai = make();
    let before = requests();
    const a = await rejection(ai.chat(hello(TARGETS.openai, { headers: { 'x-sim-fault': '500', 'x-sim-should-retry': 'false' } })));
    expect(a.code).toBe('ERR_AI_UPSTREAM');
    expect(a.status).toBe(500);
    expect(a.attempts).toBe(1);
    expect(requests() - before).toBe(1);
    before = requests();
    const b = await rejection(ai.chat(hello(TARGETS.openai, { headers: { 'x-sim-fault': '401', 'x-sim-should-retry': 'true' } })));
    expect(b.status).toBe(401);
    expect(b.attempts).toBe(3);
    expect(requests() - before).toBe(3);
  });

  test('401 is not retried', async () => {
    const ai = make();
    const err = await rejection(ai.chat(hello(TARGETS.claude, { headers: { 'x-sim-fault': '401' } })));
    expect(err.code).toBe('ERR_AI_UPSTREAM');
    expect(err.status).toBe(401);
    expect(err.attempts).toBe(1);
    expect(err.retryable).toBe(false);
  });

  test('a retry-after beyond the deadline is not waited for', async () => {
    const ai = make({ retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 5, deadlineMs: 2000 } });
    const err = await rejection(ai.chat(hello(TARGETS.claude, { headers: { 'x-sim-fault': '429', 'x-sim-retry-after': '3600' } })));
    expect(err.code).toBe('ERR_AI_RATE_LIMITED');
    expect(err.attempts).toBe(1);
    expect(err.retryAfterMs).toBe(3_600_000);
  });

  test('a non-streamed body cut short is retried', async () => {
    const ai = make();
    sim.failNext(1, 'truncate');
    const r = await ai.chat(hello(TARGETS.openai));
    expect(r.attempts).toBe(2);
  });
});

describe('fallback', () => {
  function fallbackClient(firstHeaders: Record<string, string>, kind: 'openai' | 'anthropic' = 'openai'): AIClient {
    const c = new AIClient({
      providers: [
        kind === 'openai'
          ? { name: 'a', kind: 'openai', baseURL: `${url}/v1`, apiKey: KEY, headers: firstHeaders }
          : { name: 'a', kind: 'anthropic', baseURL: url, apiKey: KEY, headers: firstHeaders },
        { name: 'b', kind: 'ollama', baseURL: url },
      ],
      models: { fast: { strategy: 'fallback', targets: [kind === 'openai' ? 'a/gpt-4o-mini' : 'a/claude-sonnet-4', 'b/llama3.2'] } },
      retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 },
      timeouts: { firstTokenMs: 300 },
    });
    open.push(c);
    return c;
  }

  test('a 5xx target falls back to the next after its retries', async () => {
    const ai = fallbackClient({ 'x-sim-fault': '503' });
    const r = await ai.chat(hello('fast'));
    expect(r.provider).toBe('b');
    expect(r.attempts).toBe(3);
    const s = ai.stats().targets;
    expect(s['a/gpt-4o-mini'].errors).toEqual({ ERR_AI_UPSTREAM: 1 });
    expect(s['a/gpt-4o-mini'].attempts).toBe(2);
    expect(s['b/llama3.2'].successes).toBe(1);
  });

  test('quota on one account falls back at once', async () => {
    const ai = fallbackClient({ 'x-sim-fault': 'quota' });
    const r = await ai.chat(hello('fast'));
    expect(r.provider).toBe('b');
    expect(r.attempts).toBe(2);
  });

  test('a bad request does not fall back', async () => {
    const ai = fallbackClient({ 'x-sim-fault': 'no-such-fault' });
    const err = await rejection(ai.chat(hello('fast')));
    expect(err.status).toBe(400);
    expect(err.provider).toBe('a');
    expect(err.attempts).toBe(1);
  });

  test.each([
    ['an error frame', { 'x-sim-fault': 'midstream-error', 'x-sim-fault-after': '0' }, 'openai'],
    ['an Anthropic event: error', { 'x-sim-fault': 'midstream-error', 'x-sim-fault-after': '0' }, 'anthropic'],
    ['no terminator', { 'x-sim-fault': 'truncate', 'x-sim-fault-after': '0' }, 'openai'],
    ['a reset', { 'x-sim-fault': 'reset', 'x-sim-fault-after': '0' }, 'openai'],
    ['a stall after headers (time to first token)', { 'x-sim-fault': 'stall', 'x-sim-keepalive-ms': '20' }, 'anthropic'],
    ['a 503', { 'x-sim-fault': '503' }, 'openai'],
  ] as const)('a stream failing before its first content falls back: %s (failure case 1)', async (_what, headers, kind) => {
    const ai = fallbackClient(headers, kind);
    const { parts, error } = await drain(ai.stream(hello('fast')));
    expect(error).toBeUndefined();
    const done = parts[parts.length - 1] as Extract<StreamPart, { type: 'done' }>;
    expect(done.response.provider).toBe('b');
    expect(done.response.attempts).toBe(3);
    // Nothing from the failed target reached the consumer.
    expect(parts.filter((p) => p.type === 'text').map((p) => (p as { text: string }).text).join('')).toBe(done.response.text);
  });

  test('once content has flowed, a stream failure reaches the consumer (no silent switch)', async () => {
    // Paced, so that content reaches the consumer before the error frame does.
    const ai = fallbackClient({ 'x-sim-fault': 'midstream-error', 'x-sim-fault-after': '3', 'x-sim-tokens-per-s': '200' });
    const { parts, error } = await drain(ai.stream(hello('fast')));
    expect(parts.filter((p) => p.type === 'text')).toHaveLength(3);
    expect(error?.code).toBe('ERR_AI_UPSTREAM');
    expect(error?.provider).toBe('a');
    expect(ai.stats().targets['a/gpt-4o-mini'].errors).toEqual({ ERR_AI_UPSTREAM: 1 });
  });
});

describe('streams', () => {
  test.each(PROVIDERS)('%s: an error frame after content is ERR_AI_UPSTREAM, retryable (parser case 5)', async (name) => {
    const ai = make();
    const headers = { 'x-sim-fault': 'midstream-error', 'x-sim-fault-after': '2', 'x-sim-tokens-per-s': '200' };
    const { parts, error } = await drain(ai.stream(hello(TARGETS[name], { headers })));
    expect(parts.map((p) => p.type)).toEqual(['text', 'text']);
    expect(error?.code).toBe('ERR_AI_UPSTREAM');
    expect(error?.provider).toBe(name);
    expect(error?.retryable).toBe(true);
  });

  test.each(PROVIDERS)('%s: a stream without its terminator is ERR_AI_STREAM_TRUNCATED (parser case 4)', async (name) => {
    const ai = make();
    const { parts, error } = await drain(ai.stream(hello(TARGETS[name], { headers: { 'x-sim-fault': 'truncate', 'x-sim-fault-after': '2' } })));
    expect(parts.map((p) => p.type)).toEqual(['text', 'text']);
    expect(error?.code).toBe('ERR_AI_STREAM_TRUNCATED');
  });

  test('an error frame in the same read as content, before anything was handed out, is retried whole', async () => {
    const ai = make();
    sim.failNext(1, 'midstream-error');
    const { parts, error } = await drain(ai.stream(hello(TARGETS.openai)));
    expect(error).toBeUndefined();
    const done = parts[parts.length - 1] as Extract<StreamPart, { type: 'done' }>;
    expect(done.response.attempts).toBe(2);
    expect(parts.filter((p) => p.type === 'text')).toHaveLength(12);
  });

  test('a connection reset mid-stream is ERR_AI_STREAM_TRUNCATED', async () => {
    const ai = make();
    const { error } = await drain(ai.stream(hello(TARGETS.openai, { headers: { 'x-sim-fault': 'reset', 'x-sim-fault-after': '2' } })));
    expect(error?.code).toBe('ERR_AI_STREAM_TRUNCATED');
  });

  test.each([
    ['openai', 'SSE comments'],
    ['claude', 'ping events'],
  ] as const)('%s: %s do not reset the idle watchdog (parser case 8, failure case 2)', async (name, _what) => {
    const ai = make({ timeouts: { idleMs: 200 } });
    const { parts, error } = await drain(
      ai.stream(hello(TARGETS[name], { headers: { 'x-sim-fault': 'stall', 'x-sim-fault-after': '2', 'x-sim-keepalive-ms': '20' } })),
    );
    expect(parts.map((p) => p.type)).toEqual(['text', 'text']);
    expect(error?.code).toBe('ERR_AI_TIMEOUT');
    expect(error?.retryable).toBe(true);
    expect(error?.message).toContain('idleMs');
  });

  test('a stall right after the headers raises a retryable time-to-first-token timeout', async () => {
    const ai = make({ timeouts: { firstTokenMs: 150 }, retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 } });
    const before = requests();
    const { parts, error } = await drain(ai.stream(hello(TARGETS.claude, { headers: { 'x-sim-fault': 'stall', 'x-sim-keepalive-ms': '20' } })));
    expect(parts).toHaveLength(0);
    expect(error?.code).toBe('ERR_AI_TIMEOUT');
    expect(error?.message).toContain('firstTokenMs');
    expect(error?.attempts).toBe(2);
    expect(requests() - before).toBe(2);
  });

  test('a slow consumer is not an idle upstream', async () => {
    const ai = make({ timeouts: { idleMs: 100 } });
    const parts: StreamPart[] = [];
    for await (const p of ai.stream(hello(TARGETS.openai))) {
      parts.push(p);
      if (parts.length === 2) await new Promise((r) => setTimeout(r, 300));
    }
    expect(parts[parts.length - 1].type).toBe('done');
  });

  test.each(PROVIDERS)('%s: breaking out of the loop aborts the upstream request and frees the socket (parser case 9)', async (name) => {
    const ai = make();
    const model = TARGETS[name];
    let n = 0;
    for await (const p of ai.stream(hello(model, { headers: { 'x-sim-tokens': '200', 'x-sim-tokens-per-s': '100' } }))) {
      if (p.type === 'text' && ++n === 2) break;
    }
    // The simulator sees its client go away; the pool has no request running.
    await until(() => sim.stats().active === 0, 'the simulator to see the stream closed');
    expect(ai.stats().pools[url].running).toBe(0);
    const r = await ai.chat(hello(model));
    expect(r.text.length).toBeGreaterThan(0);
  });
});

describe('deadlines and aborts', () => {
  test('requestMs bounds one attempt; the timeout is retryable', async () => {
    const ai = make({ timeouts: { requestMs: 100 }, retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 } });
    const err = await rejection(ai.chat(hello(TARGETS.openai, { headers: { 'x-sim-latency-ms': '5000' } })));
    expect(err.code).toBe('ERR_AI_TIMEOUT');
    expect(err.attempts).toBe(2);
    await until(() => sim.stats().active === 0, 'the simulator to see both requests go');
  });

  test('deadlineMs bounds the whole call', async () => {
    const ai = make({ retry: { attempts: 5, minDelayMs: 1, maxDelayMs: 2, deadlineMs: 150 } });
    const err = await rejection(ai.chat(hello(TARGETS.claude, { headers: { 'x-sim-latency-ms': '5000' } })));
    expect(err.code).toBe('ERR_AI_TIMEOUT');
    expect(err.retryable).toBe(false);
  });

  test("the caller's signal aborts a call (ERR_ABORTED), also mid-stream", async () => {
    const ai = make();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const err = await rejection(ai.chat(hello(TARGETS.openai, { signal: ac.signal, headers: { 'x-sim-latency-ms': '5000' } })));
    expect(err.code).toBe('ERR_ABORTED');

    const ac2 = new AbortController();
    const parts: StreamPart[] = [];
    let caught: any;
    try {
      for await (const p of ai.stream(hello(TARGETS.ollama, { signal: ac2.signal, headers: { 'x-sim-tokens': '200', 'x-sim-tokens-per-s': '100' } }))) {
        parts.push(p);
        if (parts.length === 2) ac2.abort();
      }
    } catch (e) {
      caught = e;
    }
    expect(caught?.code).toBe('ERR_ABORTED');
    expect(parts.length).toBeLessThan(200);
  });

  test('an already aborted signal fails before any request', async () => {
    const ai = make();
    const before = requests();
    const err = await rejection(ai.chat(hello(TARGETS.openai, { signal: AbortSignal.abort() })));
    expect(err.code).toBe('ERR_ABORTED');
    expect(requests()).toBe(before);
  });
});

describe('wire shapes the simulator does not send', () => {
  test('usage chunk with choices null or missing, unknown fields, bytes after [DONE] (parser cases 4, 6)', async () => {
    const chunk = (extra: object) => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', model: 'm', brand_new_field: { x: 1 }, ...extra })}\n\n`;
    for (const usageChoices of [{ choices: null }, {}, { choices: [] }]) {
      const raw = await rawServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: 'Hi' }, finish_reason: null }], usage: null }));
        res.write(chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop', logprobs: null }], usage: null }));
        res.write(chunk({ ...usageChoices, usage: { prompt_tokens: 7, completion_tokens: 1, total_tokens: 8 } }));
        res.end('data: [DONE]\n\ndata: {"not": "json"\n\n');
      });
      const ai = new AIClient({ providers: [{ name: 'v', kind: 'openai', baseURL: `${raw.url}/v1` }] });
      try {
        const { parts, error } = await drain(ai.stream(hello('v/m')));
        expect(error).toBeUndefined();
        const done = parts[parts.length - 1] as Extract<StreamPart, { type: 'done' }>;
        expect(done.response.text).toBe('Hi');
        expect(done.response.usage).toEqual({ inputTokens: 7, outputTokens: 1 });
        // The request asked for usage in the stream.
        expect(JSON.parse(raw.requests[0].body).stream_options).toEqual({ include_usage: true });
      } finally {
        await ai.close();
        await raw.close();
      }
    }
  });

  test('a stream without usage gets an estimate, so cost does not count zero (failure case 9)', async () => {
    const raw = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ id: 'x', choices: [{ index: 0, delta: { content: 'Hello world, how are you?' }, finish_reason: 'stop' }] })}\n\n`);
      res.end('data: [DONE]\n\n');
    });
    const ai = new AIClient({ providers: [{ name: 'sg', kind: 'openai', baseURL: raw.url }], prices: { 'sg/m': { inputPerMTok: 1, outputPerMTok: 2 } } });
    try {
      const { parts } = await drain(ai.stream(hello('sg/m')));
      const r = (parts[parts.length - 1] as Extract<StreamPart, { type: 'done' }>).response;
      expect(r.usage.estimated).toBe(true);
      expect(r.usage.inputTokens).toBeGreaterThan(0);
      expect(r.usage.outputTokens).toBeGreaterThan(3);
      expect(r.costUsd).toBeGreaterThan(0);
    } finally {
      await ai.close();
      await raw.close();
    }
  });

  test('old vLLM flat errors and numeric codes are read; llama.cpp 503 while loading is retried', async () => {
    let n = 0;
    const raw = await rawServer((_req, res) => {
      n++;
      if (n === 1) {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'Loading model', type: 'unavailable_error', code: 503 } }));
      } else {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'error', message: 'bad things', type: 'BadRequestError', code: 400 }));
      }
    });
    const ai = new AIClient({ providers: [{ name: 'v', kind: 'openai', baseURL: raw.url }], retry: { minDelayMs: 1, maxDelayMs: 2 } });
    try {
      const err = await rejection(ai.chat(hello('v/m')));
      expect(err.status).toBe(400);
      expect(err.message).toContain('bad things');
      expect(err.attempts).toBe(2);
    } finally {
      await ai.close();
      await raw.close();
    }
  });
});
