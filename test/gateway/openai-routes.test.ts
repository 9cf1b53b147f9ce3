// The OpenAI-compatible routes (lib/gateway/openai.ts) driven by the official `openai`
// SDK, streaming and not, against the upstream simulator behind a real AIClient.
// The routes are served by the real native Gateway; the tests see only its URL.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { AIClient, type AIClientOptions } from '../../lib/ai/client/index.js';
import { UpstreamSimulator } from '../../lib/ai/simulator/index.js';
import { MyelinError } from '../../lib/errors.js';
import { createOpenAIRoutes, type OpenAIRoutesOptions } from '../../lib/gateway/openai.js';
import { parseChat, parseEmbeddings } from '../../lib/gateway/openai-request.js';
import { checkChatRequest, checkEmbedRequest } from '../../lib/ai/client/request-check.js';
import { Gateway } from '../../lib/gateway/gateway.js';

interface StartedServer {
  url: string;
  close(): Promise<void>;
}

const KEY = 'sk-test-SECRET123-gateway-upstream';
const MESSAGES = [{ role: 'user' as const, content: 'hello there' }];
const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

let sim: UpstreamSimulator;
let simUrl: string;
const cleanup: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  sim = new UpstreamSimulator({ apiKey: KEY, tokens: 12 });
  simUrl = (await sim.listen(0)).url;
});
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});
afterAll(() => sim.close());

interface Gw {
  ai: AIClient;
  server: StartedServer;
  sdk: OpenAI;
}

/** An AIClient on the simulator, the routes on a server, and an SDK client pointed at it. */
async function gateway(aiExtra: Partial<AIClientOptions> = {}, routeOptions: OpenAIRoutesOptions = { simulated: true, forwardHeaders: ['x-sim-*'] }, upstream = simUrl): Promise<Gw> {
  const ai = new AIClient({
    providers: [
      { name: 'openai', kind: 'openai', baseURL: `${upstream}/v1`, apiKey: KEY },
      { name: 'claude', kind: 'anthropic', baseURL: upstream, apiKey: KEY },
    ],
    models: {
      fast: 'openai/gpt-4o-mini',
      pair: { strategy: 'fallback', targets: ['openai/gpt-4o-mini', 'claude/claude-sonnet-4'] },
    },
    prices: { 'openai/text-embedding-3-small': { inputPerMTok: 0.02, outputPerMTok: 0 } },
    retry: { attempts: 1, minDelayMs: 1, maxDelayMs: 5 },
    ...aiExtra,
  });
  const gw = new Gateway({ port: 0, ioThreads: 1, ai, simulated: routeOptions.simulated, forwardHeaders: routeOptions.forwardHeaders?.slice() });
  const { port } = await gw.listen();
  const server: StartedServer = { url: `http://127.0.0.1:${port}`, close: () => gw.close() };
  cleanup.push(() => ai.close(), () => server.close());
  // maxRetries 0: each test sees the gateway's first answer.
  const sdk = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'gateway-token', maxRetries: 0 });
  return { ai, server, sdk };
}

/** The error a promise rejects with (a test that expects one fails when it resolves). */
async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

async function raw(url: string, body: string | object, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('POST /v1/chat/completions', () => {
  test('non-streaming: a chat.completion in OpenAI’s format', async () => {
    const { sdk } = await gateway();
    const { data, response } = await sdk.chat.completions.create({ model: 'fast', messages: MESSAGES }).withResponse();
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('x-myelin-simulated')).toBe('true');
    expect(response.headers.get('x-myelin-target')).toBe('openai/gpt-4o-mini');
    expect(data.object).toBe('chat.completion');
    expect(data.id).toMatch(/^chatcmpl-[0-9a-f]{24}$/);
    expect(data.model).toBe('fast');
    expect(Number.isInteger(data.created)).toBe(true);
    expect(data.choices).toHaveLength(1);
    const c = data.choices[0];
    expect(c.index).toBe(0);
    expect(c.finish_reason).toBe('stop');
    expect(c.logprobs).toBeNull();
    expect(c.message.role).toBe('assistant');
    expect(typeof c.message.content).toBe('string');
    expect(c.message.content!.length).toBeGreaterThan(0);
    expect(c.message.tool_calls).toBeUndefined();
    expect(data.usage!.completion_tokens).toBeGreaterThan(0);
    expect(data.usage!.total_tokens).toBe(data.usage!.prompt_tokens + data.usage!.completion_tokens);
  });

  test('streaming: SSE chunks whose content equals the non-streamed answer; role first, finish last, [DONE]', async () => {
    const { sdk } = await gateway();
    const whole = await sdk.chat.completions.create({ model: 'fast', messages: MESSAGES, seed: 7 });
    const { data: stream, response } = await sdk.chat.completions.create({ model: 'fast', messages: MESSAGES, seed: 7, stream: true }).withResponse();
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    expect(response.headers.get('cache-control')).toBe('no-cache');
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.length).toBeGreaterThan(2);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    for (const c of chunks.slice(1)) expect(c.choices[0].delta.role).toBeUndefined();
    for (const c of chunks) {
      expect(c.object).toBe('chat.completion.chunk');
      expect(c.id).toBe(chunks[0].id);
      expect(c.model).toBe('fast');
      expect(c.usage).toBeUndefined();
    }
    const last = chunks[chunks.length - 1];
    expect(last.choices[0].finish_reason).toBe('stop');
    for (const c of chunks.slice(0, -1)) expect(c.choices[0].finish_reason).toBeNull();
    const text = chunks.map((c) => c.choices[0].delta.content ?? '').join('');
    expect(text).toBe(whole.choices[0].message.content);
  });

  test('streaming wire bytes: data frames, [DONE] at the end, nothing else', async () => {
    const { server } = await gateway();
    const r = await raw(`${server.url}/v1/chat/completions`, { model: 'fast', messages: MESSAGES, stream: true });
    expect(r.status).toBe(200);
    const frames = r.text.split('\n\n');
    expect(frames.pop()).toBe('');
    expect(frames[frames.length - 1]).toBe('data: [DONE]');
    for (const f of frames.slice(0, -1)) {
      expect(f.startsWith('data: {')).toBe(true);
      expect(JSON.parse(f.slice(6)).object).toBe('chat.completion.chunk');
    }
  });

  test('stream_options.include_usage: a usage chunk with choices [] before [DONE]; usage null before it', async () => {
    const { sdk } = await gateway();
    const whole = await sdk.chat.completions.create({ model: 'fast', messages: MESSAGES });
    const stream = await sdk.chat.completions.create({ model: 'fast', messages: MESSAGES, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    const last = chunks[chunks.length - 1];
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(whole.usage);
    for (const c of chunks.slice(0, -1)) expect(c.usage).toBeNull();
    expect(chunks[chunks.length - 2].choices[0].finish_reason).toBe('stop');
  });

  test('tool calls, non-streaming: tool_calls and finish_reason tool_calls; the tool result round-trips', async () => {
    const { sdk } = await gateway();
    const r = await sdk.chat.completions.create({ model: 'fast', messages: MESSAGES, tools: [weatherTool], tool_choice: 'auto' });
    const msg = r.choices[0].message;
    expect(r.choices[0].finish_reason).toBe('tool_calls');
    expect(msg.content).toBeNull();
    expect(msg.tool_calls).toHaveLength(1);
    const call = msg.tool_calls![0] as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
    expect(call.type).toBe('function');
    expect(call.function.name).toBe('get_weather');
    expect(typeof JSON.parse(call.function.arguments)).toBe('object');
    const next = await sdk.chat.completions.create({
      model: 'fast',
      tools: [weatherTool],
      messages: [...MESSAGES, msg, { role: 'tool', tool_call_id: call.id, content: [{ type: 'text', text: '{"temp":21}' }] }],
    });
    expect(next.choices[0].finish_reason).toBe('stop');
    expect(next.choices[0].message.content!.length).toBeGreaterThan(0);
  });

  test('tool calls, streaming: indexed deltas that the SDK assembles into the non-streamed calls', async () => {
    const { sdk } = await gateway();
    const headers = { 'x-sim-tool-calls': '2' };
    const whole = await sdk.chat.completions.create({ model: 'fast', messages: MESSAGES, tools: [weatherTool] }, { headers });
    const stream = sdk.chat.completions.stream({ model: 'fast', messages: MESSAGES, tools: [weatherTool] }, { headers });
    const deltas: any[] = [];
    stream.on('chunk', (c) => deltas.push(...(c.choices[0]?.delta.tool_calls ?? [])));
    const final = await stream.finalChatCompletion();
    expect(deltas.map((d) => d.index)).toEqual([0, 1]);
    for (const d of deltas) expect(d).toMatchObject({ type: 'function', id: expect.any(String), function: { name: 'get_weather' } });
    expect(final.choices[0].finish_reason).toBe('tool_calls');
    const calls = (m: OpenAI.Chat.Completions.ChatCompletionMessage) =>
      m.tool_calls!.map((c) => ((c as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall).function));
    expect(calls(final.choices[0].message)).toEqual(calls(whole.choices[0].message));
  });

  test('content parts, system and developer messages, sampling fields and defaults are accepted', async () => {
    const { sdk } = await gateway();
    const r = await sdk.chat.completions.create({
      model: 'openai/gpt-4o-mini',
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'be brief' }] },
        { role: 'developer', content: 'really' },
        { role: 'user', content: [{ type: 'text', text: 'what is this' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } }] },
      ],
      temperature: 0.2,
      top_p: 0.9,
      max_completion_tokens: 5,
      stop: ['\n\n'],
      seed: 3,
      user: 'u-1',
      n: 1,
      frequency_penalty: 0,
      presence_penalty: 0,
      response_format: { type: 'json_object' },
      store: false,
      metadata: { a: 'b' },
    });
    expect(r.choices[0].message.role).toBe('assistant');
    expect(r.usage!.completion_tokens).toBeLessThanOrEqual(5);
    expect(r.choices[0].finish_reason).toBe('length');
  });

  test('an alias with two targets, and the anthropic target, answer in the same shape', async () => {
    const { sdk } = await gateway();
    for (const model of ['pair', 'claude/claude-sonnet-4']) {
      const r = await sdk.chat.completions.create({ model, messages: MESSAGES });
      expect(r.model).toBe(model);
      expect(r.choices[0].message.content!.length).toBeGreaterThan(0);
    }
  });
});

describe('bad requests', () => {
  test('a body that is not JSON, or not an object: 400 invalid_request_error', async () => {
    const { server } = await gateway();
    for (const body of ['{not json', '', '[1,2]', 'null']) {
      const r = await raw(`${server.url}/v1/chat/completions`, body);
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toBe('application/json');
      const e = JSON.parse(r.text);
      expect(e).toEqual({ error: { message: expect.any(String), type: 'invalid_request_error', param: null, code: null } });
    }
    const e = await raw(`${server.url}/v1/embeddings`, '{"model":');
    expect(e.status).toBe(400);
  });

  test.each([
    ['temperature', { temperature: 5 }],
    ['top_p', { top_p: -1 }],
    ['max_tokens', { max_tokens: 0 }],
    ['n', { n: 2 }],
    ['stream', { stream: 'yes' }],
    ['stream_options', { stream_options: { include_usage: true } }],
    ['messages', { messages: [] }],
    ['messages[0].role', { messages: [{ role: 'robot', content: 'x' }] }],
    ['messages[0].content[0].type', { messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }] }],
    ['messages[0].tool_call_id', { messages: [{ role: 'tool', content: 'x' }] }],
    ['tools[0].function.name', { tools: [{ type: 'function', function: { name: 'has space' } }] }],
    ['tool_choice', { tool_choice: 'sometimes' }],
    ['response_format.json_schema.schema', { response_format: { type: 'json_schema', json_schema: { name: 'x' } } }],
    ['frequency_penalty', { frequency_penalty: 0.5 }],
    ['functions', { functions: [{ name: 'f' }] }],
    ['base_url', { base_url: 'http://169.254.169.254/' }],
    ['model', { model: 42 }],
  ])('400 naming %s', async (param, patch) => {
    const { sdk } = await gateway();
    const err = await rejection(sdk.chat.completions.create({ model: 'fast', messages: MESSAGES, ...(patch as object) } as any));
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.status).toBe(400);
    expect(err.type).toBe('invalid_request_error');
    expect(err.param).toBe(param);
  });

  test('unknown model: 404 model_not_found, for chat (streamed or not) and embeddings', async () => {
    const { sdk } = await gateway();
    for (const model of ['gpt-4o', 'nosuch/gpt-4o', 'slow']) {
      const err = await rejection(sdk.chat.completions.create({ model, messages: MESSAGES }));
      expect(err).toBeInstanceOf(OpenAI.NotFoundError);
      expect(err.code).toBe('model_not_found');
      expect(err.param).toBe('model');
    }
    const s = await rejection(sdk.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES, stream: true }));
    expect(s).toBeInstanceOf(OpenAI.NotFoundError);
    const e = await rejection(sdk.embeddings.create({ model: 'nope', input: 'x' }));
    expect(e).toBeInstanceOf(OpenAI.NotFoundError);
    expect(e.code).toBe('model_not_found');
  });
});

describe('upstream failures', () => {
  test('a 429 from the simulator: RateLimitError with retry-after in seconds (and -ms)', async () => {
    const { sdk } = await gateway();
    sim.failNext(1, '429', { retryAfter: 7 });
    const err = await rejection(sdk.chat.completions.create({ model: 'fast', messages: MESSAGES }));
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.status).toBe(429);
    expect(err.code).toBe('rate_limit_exceeded');
    expect(err.headers.get('retry-after')).toBe('7');
    expect(err.headers.get('retry-after-ms')).toBe('7000');
  });

  test('a 429 before a stream’s first part is an HTTP 429, not an SSE error', async () => {
    const { sdk } = await gateway();
    const err = await rejection(sdk.chat.completions.create({ model: 'fast', messages: MESSAGES, stream: true }, { headers: { 'x-sim-fault': '429', 'x-sim-retry-after': '3' } }));
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.headers.get('retry-after')).toBe('3');
  });

  test('the simulator’s rpm limit surfaces as 429 too', async () => {
    const limited = new UpstreamSimulator({ apiKey: KEY, rpm: 1 });
    const url = (await limited.listen(0)).url;
    cleanup.push(() => limited.close());
    const { sdk } = await gateway({}, { simulated: true }, url);
    await sdk.chat.completions.create({ model: 'fast', messages: MESSAGES });
    const err = await rejection(sdk.chat.completions.create({ model: 'fast', messages: MESSAGES }));
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(Number(err.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited.stats().rateLimited).toBe(1);
  });

  test('quota exhausted: 429 insufficient_quota that the SDK is told not to retry', async () => {
    const { sdk } = await gateway();
    const err = await rejection(sdk.chat.completions.create({ model: 'fast', messages: MESSAGES }, { headers: { 'x-sim-fault': 'quota' } }));
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.code).toBe('insufficient_quota');
    expect(err.headers.get('x-should-retry')).toBe('false');
  });

  test('an upstream 500 on a single target: 502 upstream_error; on every target of an alias: 503 all_targets_failed', async () => {
    const { sdk } = await gateway();
    const one = await rejection(sdk.chat.completions.create({ model: 'fast', messages: MESSAGES }, { headers: { 'x-sim-fault': '500' } }));
    expect(one).toBeInstanceOf(OpenAI.InternalServerError);
    expect(one.status).toBe(502);
    expect(one.code).toBe('upstream_error');
    const all = await rejection(sdk.chat.completions.create({ model: 'pair', messages: MESSAGES }, { headers: { 'x-sim-fault': '500' } }));
    expect(all.status).toBe(503);
    expect(all.code).toBe('all_targets_failed');
  });

  test('an alias whose first target fails falls back and answers 200', async () => {
    const { sdk, ai } = await gateway();
    sim.failNext(1, '500');
    const r = await sdk.chat.completions.create({ model: 'pair', messages: MESSAGES }).withResponse();
    expect(r.response.status).toBe(200);
    expect(r.response.headers.get('x-myelin-target')).toBe('claude/claude-sonnet-4');
    expect(ai.stats().targets['openai/gpt-4o-mini'].errors.ERR_AI_UPSTREAM).toBe(1);
  });

  test('an open circuit breaker: 503 circuit_open', async () => {
    const { sdk } = await gateway({ breaker: { failureRate: 0.5, minRequests: 1, windowMs: 60_000, openMs: 60_000 } });
    await rejection(sdk.chat.completions.create({ model: 'fast', messages: MESSAGES }, { headers: { 'x-sim-fault': '500' } }));
    const err = await rejection(sdk.chat.completions.create({ model: 'fast', messages: MESSAGES }));
    expect(err.status).toBe(503);
    expect(err.code).toBe('circuit_open');
  });

  test('an upstream that does not answer in time: 504 upstream_timeout', async () => {
    const { sdk } = await gateway({ timeouts: { requestMs: 50, firstTokenMs: 50 } });
    const headers = { 'x-sim-latency-ms': '2000' };
    const err = await rejection(sdk.chat.completions.create({ model: 'fast', messages: MESSAGES }, { headers }));
    expect(err.status).toBe(504);
    expect(err.code).toBe('upstream_timeout');
    const s = await rejection(sdk.chat.completions.create({ model: 'fast', messages: MESSAGES, stream: true }, { headers }));
    expect(s.status).toBe(504);
  });

  test('an error after the stream started: one data: {"error"} event, no [DONE]; the SDK raises APIError', async () => {
    const { sdk, server } = await gateway();
    // Paced, so that content reaches the client (the stream commits) before the error frame.
    const headers = { 'x-sim-fault': 'midstream-error', 'x-sim-fault-after': '4', 'x-sim-tokens-per-s': '200' };
    const stream = await sdk.chat.completions.create({ model: 'fast', messages: MESSAGES, stream: true }, { headers });
    const seen: string[] = [];
    const err = await rejection(
      (async () => {
        for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? '');
      })(),
    );
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(seen.join('').length).toBeGreaterThan(0);
    const r = await raw(`${server.url}/v1/chat/completions`, { model: 'fast', messages: MESSAGES, stream: true }, headers);
    expect(r.status).toBe(200);
    const frames = r.text.split('\n\n').filter(Boolean);
    const last = JSON.parse(frames[frames.length - 1].slice(6));
    expect(last).toEqual({ error: { message: expect.any(String), type: 'upstream_error', param: null, code: 'upstream_error' } });
    expect(r.text).not.toContain('[DONE]');
  });

  test('no upstream key or keyed URL ever reaches an error body, even when the upstream echoes them', async () => {
    // An upstream that quotes the key it was sent and a URL with a key in its query.
    const echo = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const auth = String(req.headers.authorization ?? '');
        const status = req.headers['x-status'] === '500' ? 500 : 401;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `Incorrect API key provided: ${auth.slice(7)} (see https://proxy.example/v1/x?api-key=${auth.slice(7)})`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } }));
      });
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => echo.close(r)));
    const url = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
    const { server } = await gateway({}, { simulated: false, forwardHeaders: ['x-status'] }, url);
    const bodies: string[] = [];
    for (const stream of [false, true]) {
      for (const status of ['401', '500']) {
        const r = await raw(`${server.url}/v1/chat/completions`, { model: 'fast', messages: MESSAGES, stream }, { 'x-status': status });
        expect(r.status).toBe(502);
        bodies.push(r.text);
        const e = JSON.parse(r.text).error;
        expect(e.code).toBe(status === '401' ? 'upstream_authentication_failed' : 'upstream_error');
      }
    }
    for (const b of bodies) {
      expect(b).not.toContain(KEY);
      expect(b).not.toContain('SECRET12');
      expect(b).not.toContain('api-key=');
      expect(b).not.toContain(url);
    }
  });
});

describe('client disconnects', () => {
  test('aborting mid-stream aborts the upstream call: the simulator sees its connection close', async () => {
    const { sdk, ai } = await gateway();
    const before = sim.stats();
    const ac = new AbortController();
    // 2,000 tokens at 50/s: 40 s if nobody stopped it.
    const stream = await sdk.chat.completions.create(
      { model: 'fast', messages: MESSAGES, stream: true },
      { signal: ac.signal, headers: { 'x-sim-tokens': '2000', 'x-sim-tokens-per-s': '50' } },
    );
    let got = '';
    for await (const c of stream) {
      got += c.choices[0]?.delta.content ?? '';
      if (got.length > 0) {
        expect(sim.stats().active).toBe(before.active + 1);
        ac.abort();
      }
    }
    await until(() => sim.stats().active === before.active, 'the upstream stream to close');
    const t = ai.stats().targets['openai/gpt-4o-mini'];
    expect(t.successes).toBe(0);
    expect(t.requests).toBe(1);
  });

  test('a client gone before a non-streamed answer aborts the upstream call too', async () => {
    const { server, ai } = await gateway();
    const before = sim.stats().active;
    const ac = new AbortController();
    const p = fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sim-latency-ms': '30000' },
      body: JSON.stringify({ model: 'fast', messages: MESSAGES }),
      signal: ac.signal,
    }).catch((e: unknown) => e);
    await until(() => sim.stats().active === before + 1, 'the upstream request');
    ac.abort();
    await p;
    await until(() => sim.stats().active === before, 'the upstream request to close');
    await until(() => (ai.stats().targets['openai/gpt-4o-mini']?.errors.ERR_ABORTED ?? 0) === 1, 'the AIClient to count the abort');
  });
});

describe('POST /v1/embeddings', () => {
  test('the SDK’s default base64 form and the float form give the same vectors, with usage', async () => {
    const { sdk } = await gateway();
    const model = 'openai/text-embedding-3-small';
    const b64 = await sdk.embeddings.create({ model, input: ['alpha', 'beta gamma'] });
    const flt = await sdk.embeddings.create({ model, input: ['alpha', 'beta gamma'], encoding_format: 'float' });
    expect(b64.object).toBe('list');
    expect(b64.model).toBe(model);
    expect(b64.data.map((d) => d.index)).toEqual([0, 1]);
    for (const d of b64.data) {
      expect(d.object).toBe('embedding');
      expect(d.embedding).toHaveLength(16);
    }
    expect(b64.data.map((d) => d.embedding)).toEqual(flt.data.map((d) => d.embedding));
    expect(b64.usage.prompt_tokens).toBeGreaterThan(0);
    expect(b64.usage.total_tokens).toBe(b64.usage.prompt_tokens);
    const one = await sdk.embeddings.create({ model, input: 'alpha', dimensions: 8, encoding_format: 'float' });
    expect(one.data).toHaveLength(1);
    expect(one.data[0].embedding).toHaveLength(8);
  });

  test('bad input: 400 naming the field; a provider without embeddings: 400', async () => {
    const { sdk } = await gateway();
    for (const [param, body] of [
      ['input', { input: [] }],
      ['input', { input: [[1, 2, 3]] }],
      ['encoding_format', { input: 'x', encoding_format: 'hex' }],
      ['dimensions', { input: 'x', dimensions: -1 }],
      ['foo', { input: 'x', foo: 1 }],
    ] as const) {
      const err = await rejection(sdk.embeddings.create({ model: 'openai/text-embedding-3-small', ...(body as object) } as any));
      expect(err.status).toBe(400);
      expect(err.param).toBe(param);
    }
    const err = await rejection(sdk.embeddings.create({ model: 'claude/claude-sonnet-4', input: 'x' }));
    expect(err.status).toBe(400);
  });
});

describe('GET /v1/models', () => {
  test('lists aliases and configured targets; simulated answers say owned_by myelin-simulator', async () => {
    const { sdk } = await gateway();
    const list = await sdk.models.list();
    const ids = list.data.map((m) => m.id);
    expect(ids).toEqual(['fast', 'pair', 'openai/gpt-4o-mini', 'claude/claude-sonnet-4', 'openai/text-embedding-3-small']);
    for (const m of list.data) {
      expect(m.object).toBe('model');
      expect(m.owned_by).toBe('myelin-simulator');
      expect(Number.isInteger(m.created)).toBe(true);
    }
    const one = await sdk.models.retrieve('openai/gpt-4o-mini');
    expect(one).toMatchObject({ id: 'openai/gpt-4o-mini', object: 'model', owned_by: 'myelin-simulator' });
    const missing = await rejection(sdk.models.retrieve('nope'));
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
  });

  test('not simulated: aliases are owned by myelin, targets by their provider', async () => {
    const { sdk } = await gateway({}, {});
    const list = await sdk.models.list();
    const owners = Object.fromEntries(list.data.map((m) => [m.id, m.owned_by]));
    expect(owners).toEqual({ fast: 'myelin', pair: 'myelin', 'openai/gpt-4o-mini': 'openai', 'claude/claude-sonnet-4': 'claude', 'openai/text-embedding-3-small': 'openai' });
  });
});

describe('createOpenAIRoutes and AIClient.catalog()', () => {
  test('catalog() lists providers, aliases and targets without keys or URLs', async () => {
    const { ai } = await gateway();
    const c = ai.catalog();
    expect(c.providers).toEqual([
      { name: 'openai', kind: 'openai' },
      { name: 'claude', kind: 'anthropic' },
    ]);
    expect(c.aliases).toEqual([
      { name: 'fast', strategy: 'fallback', targets: ['openai/gpt-4o-mini'] },
      { name: 'pair', strategy: 'fallback', targets: ['openai/gpt-4o-mini', 'claude/claude-sonnet-4'] },
    ]);
    expect(c.targets).toEqual(['openai/gpt-4o-mini', 'claude/claude-sonnet-4', 'openai/text-embedding-3-small']);
    expect(JSON.stringify(c)).not.toContain(KEY);
    expect(JSON.stringify(c)).not.toContain(simUrl);
  });

  test('bad arguments throw ERR_INVALID_ARGUMENT', async () => {
    const { ai } = await gateway();
    const bad: Array<() => unknown> = [
      () => createOpenAIRoutes({} as AIClient),
      () => createOpenAIRoutes(ai, null as any),
      () => createOpenAIRoutes(ai, { simulated: 'yes' as any }),
      () => createOpenAIRoutes(ai, { forwardHeaders: 'x-sim-*' as any }),
      () => createOpenAIRoutes(ai, { forwardHeaders: ['authorization'] }),
      () => createOpenAIRoutes(ai, { forwardHeaders: ['X-Upper'] }),
      () => createOpenAIRoutes(ai, { forwardHeaders: ['*'] }),
      () => createOpenAIRoutes(ai, { retries: 1 } as any),
    ];
    for (const f of bad) {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(MyelinError);
      expect((err as MyelinError).code).toBe('ERR_INVALID_ARGUMENT');
    }
  });

  test('a forwarding prefix never passes the headers the AIClient owns', async () => {
    const seen: http.IncomingHttpHeaders[] = [];
    const up = http.createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }));
      });
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => up.close(r)));
    const url = `http://127.0.0.1:${(up.address() as AddressInfo).port}`;
    const { server } = await gateway({}, { forwardHeaders: ['x-*', 'traceparent'] }, url);
    const r = await raw(`${server.url}/v1/chat/completions`, { model: 'fast', messages: MESSAGES }, { 'x-api-key': 'client-chosen', 'x-trace': 't1', traceparent: '00-abc-def-01' });
    expect(r.status).toBe(200);
    expect(seen[0]['x-trace']).toBe('t1');
    expect(seen[0].traceparent).toBe('00-abc-def-01');
    expect(seen[0]['x-api-key']).toBeUndefined();
    expect(seen[0].authorization).toBe(`Bearer ${KEY}`);
  });
});

describe('request parsing, any input', () => {
  /** A parse either succeeds or throws ERR_INVALID_ARGUMENT naming a param (or null): never a TypeError. */
  function checked(parse: (b: Uint8Array) => { request: object }, body: string): void {
    let parsed: { request: object };
    try {
      parsed = parse(Buffer.from(body));
    } catch (err) {
      expect(err).toBeInstanceOf(MyelinError);
      expect((err as MyelinError).code).toBe('ERR_INVALID_ARGUMENT');
      const param = (err as { param?: unknown }).param;
      expect(param === undefined || typeof param === 'string').toBe(true);
      return;
    }
    // What the routes accept, the AIClient accepts too (its own check would be a 400 without a param).
    if (parse === parseChat) checkChatRequest(parsed.request);
    else checkEmbedRequest(parsed.request);
  }

  test('arbitrary JSON and near-valid bodies only ever give a 400', () => {
    const value = fc.oneof(fc.jsonValue(), fc.constantFrom(null, '', 0, -1, 1.5, true, [], {}, '__proto__'));
    // Mostly valid, sometimes anything: so that both outcomes are exercised.
    const mostly = <T,>(valid: fc.Arbitrary<T>) => fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: value, weight: 1 });
    const text = fc.string({ maxLength: 20 });
    const part = fc.oneof(fc.record({ type: fc.constant('text'), text }), fc.record({ type: fc.constant('image_url'), image_url: fc.record({ url: fc.webUrl() }) }));
    const call = fc.record({ id: fc.string({ minLength: 1, maxLength: 8 }), type: fc.constant('function'), function: fc.record({ name: fc.constantFrom('f', 'get_weather'), arguments: fc.json() }) });
    const message = fc.oneof(
      fc.record({ role: mostly(fc.constantFrom('system', 'developer')), content: mostly(fc.oneof(text, fc.array(fc.record({ type: fc.constant('text'), text }), { maxLength: 2 }))) }),
      fc.record({ role: fc.constant('user'), content: mostly(fc.oneof(text, fc.array(part, { minLength: 1, maxLength: 3 }))), name: mostly(text) }, { requiredKeys: ['role', 'content'] }),
      fc.record({ role: fc.constant('assistant'), content: mostly(fc.oneof(text, fc.constant(null))), tool_calls: mostly(fc.array(call, { maxLength: 2 })) }, { requiredKeys: ['role'] }),
      fc.record({ role: fc.constant('tool'), tool_call_id: mostly(fc.string({ minLength: 1, maxLength: 8 })), content: mostly(text) }),
    );
    const tool = fc.record({ type: fc.constant('function'), function: fc.record({ name: fc.constantFrom('f', 'get_weather'), description: text, parameters: fc.constant({ type: 'object' }) }, { requiredKeys: ['name'] }) });
    const chat = fc.record(
      {
        model: mostly(fc.constantFrom('fast', 'openai/x')),
        messages: mostly(fc.array(message, { minLength: 1, maxLength: 4 })),
        temperature: mostly(fc.double({ min: 0, max: 2, noNaN: true })),
        top_p: mostly(fc.double({ min: 0, max: 1, noNaN: true })),
        max_tokens: mostly(fc.integer({ min: 1, max: 1000 })),
        max_completion_tokens: mostly(fc.integer({ min: 1, max: 1000 })),
        stop: mostly(fc.oneof(text, fc.array(text, { maxLength: 4 }))),
        seed: mostly(fc.integer()),
        tools: mostly(fc.array(tool, { maxLength: 2 })),
        tool_choice: mostly(fc.constantFrom('auto', 'none', 'required', { type: 'function', function: { name: 'f' } })),
        response_format: mostly(fc.constantFrom({ type: 'text' }, { type: 'json_object' }, { type: 'json_schema', json_schema: { name: 'n', schema: {}, strict: true } })),
        n: mostly(fc.constant(1)),
        stream: mostly(fc.boolean()),
        user: mostly(text),
        logit_bias: mostly(fc.constant({})),
      },
      { requiredKeys: [] },
    );
    const embed = fc.record(
      {
        model: mostly(fc.constantFrom('fast', 'openai/x')),
        input: mostly(fc.oneof(text, fc.array(text, { minLength: 1, maxLength: 3 }))),
        encoding_format: mostly(fc.constantFrom('float', 'base64')),
        dimensions: mostly(fc.integer({ min: 1, max: 64 })),
        user: mostly(text),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(chat, embed, value), (b) => {
        checked(parseChat, JSON.stringify(b));
        checked(parseEmbeddings, JSON.stringify(b));
      }),
      { numRuns: 2000 },
    );
    fc.assert(fc.property(fc.string(), (t) => checked(parseChat, t)), { numRuns: 500 });
    checked(parseChat, '{"__proto__":{"polluted":1},"model":"fast","messages":[{"role":"user","content":"x"}]}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
