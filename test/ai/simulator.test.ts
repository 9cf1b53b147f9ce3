// The upstream simulator against real clients over real sockets: the official openai
// SDK for the OpenAI format, raw undici/node:http with myelin's parsers for Anthropic
// and Ollama, frame by frame against shared/AI-WIRE.md; every fault header; bad
// requests in each provider's error shape; keys never echoed.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamSimulator } from '../../lib/ai/simulator/index.js';
import { WORDS } from '../../lib/ai/simulator/text.js';
import { expectCode } from '../helpers.js';
import { call, endsMidCharacter, httpChunks, json, ndjson, open, sleep, sse } from './sim-client.js';

const ANTHROPIC = { 'x-api-key': 'sk-ant-dummy', 'anthropic-version': '2023-06-01' };
const WEATHER_OPENAI = [
  {
    type: 'function' as const,
    function: {
      name: 'get_weather',
      parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' }, unit: { enum: ['c', 'f'] } } },
    },
  },
  { type: 'function' as const, function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } },
];
const WEATHER_ANTHROPIC = [
  { name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } } } },
];
const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

let sim: UpstreamSimulator;
let base: string;
let client: OpenAI;

beforeAll(async () => {
  sim = new UpstreamSimulator({ seed: 7 });
  base = (await sim.listen()).url;
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-dummy', maxRetries: 0 });
});

afterAll(async () => {
  await sim.close();
});

async function withSim<T>(opts: ConstructorParameters<typeof UpstreamSimulator>[0], fn: (base: string, s: UpstreamSimulator) => Promise<T>): Promise<T> {
  const s = new UpstreamSimulator(opts);
  const { url } = await s.listen();
  try {
    return await fn(url, s);
  } finally {
    await s.close();
  }
}

const chatBody = (content = 'tell me something', extra: Record<string, unknown> = {}) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content }],
  ...extra,
});

describe('OpenAI format, through the official SDK', () => {
  it('answers a non-streamed chat completion with consistent usage and headers', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'say five words please' }] })
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.choices[0].finish_reason).toBe('stop');
    const text = data.choices[0].message.content!;
    expect(text.split(' ')).toHaveLength(16);
    expect(text.split(' ').every((w) => WORDS.includes(w))).toBe(true);
    expect(data.usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 16, total_tokens: 20 });
    expect(response.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{24}$/);
    expect(response.headers.get('x-ratelimit-limit-requests')).toMatch(/^\d+$/);
    expect(response.headers.get('x-ratelimit-remaining-tokens')).toMatch(/^\d+$/);
    expect(response.headers.get('x-ratelimit-reset-requests')).toMatch(/^(\d+ms|\d+(\.\d+)?s|\d+m\d+(\.\d+)?s)$/);
  });

  it('streams the same text as the non-streamed answer, with usage last when include_usage is set', async () => {
    const messages = [{ role: 'user' as const, content: 'stream this' }];
    const whole = await client.chat.completions.create({ model: 'gpt-4o', messages });
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let contentChunks = 0;
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      const c = chunk.choices[0]?.delta?.content;
      if (c) {
        text += c;
        contentChunks++;
      }
    }
    expect(text).toBe(whole.choices[0].message.content);
    const last = chunks[chunks.length - 1];
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ completion_tokens: contentChunks, prompt_tokens: 2, total_tokens: contentChunks + 2 });
    for (const c of chunks.slice(0, -1)) expect(c.usage).toBeNull();
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(chunks.filter((c) => c.choices[0]?.finish_reason === 'stop')).toHaveLength(1);
  });

  it('omits usage on chunks when include_usage is not set', async () => {
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true });
    let n = 0;
    for await (const chunk of stream) {
      expect('usage' in chunk).toBe(false);
      n++;
    }
    expect(n).toBe(18); // role chunk + 16 tokens + finish chunk
  });

  it('stops at max_tokens with finish_reason length', async () => {
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], max_tokens: 3 });
    expect(r.choices[0].finish_reason).toBe('length');
    expect(r.usage?.completion_tokens).toBe(3);
    expect(r.choices[0].message.content!.split(' ')).toHaveLength(3);
  });

  it('streams parallel tool calls as interleaved delta.tool_calls fragments that assemble into the non-streamed calls', async () => {
    const req = { model: 'gpt-4o', messages: [{ role: 'user' as const, content: 'weather in two places' }], tools: WEATHER_OPENAI };
    const opts = { headers: { 'x-sim-tool-calls': '2' } };
    const whole = await client.chat.completions.create(req, opts);
    expect(whole.choices[0].finish_reason).toBe('tool_calls');
    expect(whole.choices[0].message.content).toBeNull();
    const wantCalls = whole.choices[0].message.tool_calls!;
    expect(wantCalls).toHaveLength(2);

    const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } }, opts);
    const calls: Array<{ id?: string; name?: string; args: string }> = [];
    const order: number[] = [];
    let fragments = 0;
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      usage = chunk.usage ?? usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      finish = choice.finish_reason ?? finish;
      for (const tc of choice.delta.tool_calls ?? []) {
        const c = (calls[tc.index] ??= { args: '' });
        if (tc.id) {
          // The first fragment of an index carries id and name.
          expect(c.id).toBeUndefined();
          c.id = tc.id;
          c.name = tc.function?.name;
        } else {
          expect(c.id, 'id arrives first').toBeDefined();
        }
        if (tc.function?.arguments) {
          c.args += tc.function.arguments;
          fragments++;
          order.push(tc.index);
        }
      }
    }
    expect(finish).toBe('tool_calls');
    // Interleaved: index 1 fragments arrive before index 0 is complete.
    expect(order.indexOf(1)).toBeLessThan(order.lastIndexOf(0));
    expect(calls.map((c) => ({ id: c.id, name: c.name, args: JSON.parse(c.args) }))).toEqual(
      wantCalls.map((c) => ({ id: c.id, name: (c as { function: { name: string } }).function.name, args: JSON.parse((c as { function: { arguments: string } }).function.arguments) })),
    );
    expect(calls[0].name).toBe('get_weather');
    expect(calls[1].name).toBe('get_time');
    expect(usage?.completion_tokens).toBe(fragments);
  });

  it('answers with text once the last message is a tool result', async () => {
    const r = await client.chat.completions.create({
      model: 'gpt-4o',
      tools: WEATHER_OPENAI,
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      ],
    });
    expect(r.choices[0].finish_reason).toBe('stop');
    expect(r.choices[0].message.content).toBeTruthy();
  });

  it('serves embeddings in base64 (the SDK default) and float, deterministic and unit length', async () => {
    const e = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a cat', 'a dog', 'a cat'] });
    expect(e.data).toHaveLength(3);
    expect(e.data[0].embedding).toHaveLength(16);
    const norm = Math.hypot(...e.data[0].embedding);
    expect(norm).toBeCloseTo(1, 5);
    expect(e.data[2].embedding).toEqual(e.data[0].embedding);
    expect(e.data[1].embedding).not.toEqual(e.data[0].embedding);
    expect(e.usage).toEqual({ prompt_tokens: 6, total_tokens: 6 });
    const f = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'a cat', encoding_format: 'float', dimensions: 8 });
    expect(f.data[0].embedding).toHaveLength(8);
    expect(f.data[0].index).toBe(0);
  });

  it('lists and retrieves models', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toContain('gpt-4o-mini');
    expect((await client.models.retrieve('gpt-4o')).id).toBe('gpt-4o');
    await expect(client.models.retrieve('no-such-model')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    // Status faults apply to the list endpoints too.
    await expect(client.models.list({ headers: { 'x-sim-fault': '503' } })).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    expect((await call(base, '/api/tags', { headers: { 'x-sim-fault': '429' } })).status).toBe(429);
  });

  it('surfaces a 429 as RateLimitError with retry-after and retry-after-ms visible', async () => {
    let caught: unknown;
    try {
      await client.chat.completions.create(chatBody(), { headers: { 'x-sim-fault': '429', 'x-sim-retry-after': '2' } });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(OpenAI.RateLimitError);
    const err = caught as InstanceType<typeof OpenAI.RateLimitError>;
    expect(err.status).toBe(429);
    expect(err.headers?.get('retry-after')).toBe('2');
    expect(err.headers?.get('retry-after-ms')).toBe('2000');
    expect(err.code).toBe('rate_limit_exceeded');
    expect(err.type).toBe('requests');
    expect(err.headers?.get('x-request-id')).toMatch(/^req_/);
  });

  it('surfaces quota exhaustion as a 429 with insufficient_quota and no retry-after', async () => {
    const err = await client.chat.completions.create(chatBody(), { headers: { 'x-sim-fault': 'quota' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const e = err as InstanceType<typeof OpenAI.RateLimitError>;
    expect(e.code).toBe('insufficient_quota');
    expect(e.type).toBe('insufficient_quota');
    expect(e.headers?.get('retry-after')).toBeNull();
  });

  it('surfaces 500, 502, 503 and 529 as the SDK error classes', async () => {
    for (const [fault, status] of [
      ['500', 500],
      ['502', 502],
      ['503', 503],
      ['529', 503],
    ] as const) {
      const err = await client.chat.completions.create(chatBody(), { headers: { 'x-sim-fault': fault } }).catch((e: unknown) => e);
      expect(err, fault).toBeInstanceOf(OpenAI.APIError);
      expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(status);
    }
  });
});

describe('OpenAI format, raw frames', () => {
  it('frames every chunk as data: <json> with no event names and ends with data: [DONE]', async () => {
    const r = await call(base, '/v1/chat/completions', { body: chatBody('x', { stream: true, stream_options: { include_usage: true } }) });
    expect(r.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(r.text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(r.text.split('\n\n').filter(Boolean).every((f) => f.startsWith('data: ') && !f.includes('\n'))).toBe(true);
    const { events, pending } = sse(r.chunks);
    expect(pending).toBe(false);
    expect(events.every((e) => e.event === undefined)).toBe(true);
    expect(events[events.length - 1].data).toBe('[DONE]');
    const usage = JSON.parse(events[events.length - 2].data);
    expect(usage.choices).toEqual([]);
    expect(usage.usage.completion_tokens).toBe(16);
    // The unknown field clients must ignore.
    expect(JSON.parse(events[0].data).obfuscation).toBeDefined();
  });

  it('truncate: the stream ends cleanly after some content, without [DONE] or finish_reason', async () => {
    const r = await call(base, '/v1/chat/completions', { body: chatBody('x', { stream: true }), headers: { 'x-sim-fault': 'truncate', 'x-sim-fault-after': '5' } });
    expect(r.status).toBe(200);
    const { events, pending } = sse(r.chunks);
    expect(pending).toBe(false);
    expect(events.some((e) => e.data === '[DONE]')).toBe(false);
    const chunks = events.map((e) => JSON.parse(e.data));
    expect(chunks.filter((c) => c.choices[0].delta.content)).toHaveLength(5);
    expect(chunks.every((c) => c.choices[0].finish_reason === null)).toBe(true);
  });

  it('midstream-error: a data: {"error"} frame after content on the 200, no [DONE]', async () => {
    const r = await call(base, '/v1/chat/completions', { body: chatBody('x', { stream: true }), headers: { 'x-sim-fault': 'midstream-error' } });
    expect(r.status).toBe(200);
    const events = sse(r.chunks).events.map((e) => JSON.parse(e.data));
    const errAt = events.findIndex((e) => e.error);
    expect(errAt).toBe(events.length - 1);
    expect(events.slice(0, errAt).filter((e) => e.choices?.[0]?.delta?.content)).toHaveLength(8); // half of 16
    expect(events[errAt].error).toMatchObject({ type: 'server_error', code: null, param: null });
    expect(typeof events[errAt].error.message).toBe('string');
  });

  it('sets x-should-retry when asked', async () => {
    const r = await call(base, '/v1/chat/completions', { body: chatBody(), headers: { 'x-sim-fault': '500', 'x-sim-should-retry': 'false' } });
    expect(r.status).toBe(500);
    expect(r.headers['x-should-retry']).toBe('false');
    expect(JSON.parse(r.text)).toEqual({ error: { message: expect.any(String), type: 'server_error', param: null, code: null } });
  });

  it('retry-after in HTTP-date form parses as an HTTP date', async () => {
    const before = Date.now();
    const r = await call(base, '/v1/chat/completions', { body: chatBody(), headers: { 'x-sim-fault': '429', 'x-sim-retry-after': 'date:30' } });
    expect(r.status).toBe(429);
    const v = r.headers['retry-after'];
    expect(v).toMatch(HTTP_DATE);
    const at = Date.parse(v);
    expect(at).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 29_000);
    expect(at).toBeLessThanOrEqual(Date.now() + 31_000);
    expect(r.headers['retry-after-ms']).toBeUndefined();
    // A given HTTP date is passed through, normalised.
    const fixed = 'Wed, 21 Oct 2037 07:28:00 GMT';
    const r2 = await call(base, '/v1/chat/completions', { body: chatBody(), headers: { 'x-sim-fault': '429', 'x-sim-retry-after': fixed } });
    expect(r2.headers['retry-after']).toBe(fixed);
    const r3 = await call(base, '/v1/chat/completions', { body: chatBody(), headers: { 'x-sim-fault': '429', 'x-sim-retry-after': 'none' } });
    expect(r3.headers['retry-after']).toBeUndefined();
  });
});

describe('Anthropic format', () => {
  const body = (extra: Record<string, unknown> = {}) => ({
    model: 'claude-sonnet-4',
    max_tokens: 100,
    system: 'be brief and kind',
    messages: [{ role: 'user', content: 'hello there' }],
    ...extra,
  });

  it('streams the full event flow in order, with cumulative output_tokens and the non-streamed text', async () => {
    const whole = await json(base, '/v1/messages', { body: body(), headers: ANTHROPIC });
    expect(whole.status).toBe(200);
    expect(whole.body).toMatchObject({ type: 'message', role: 'assistant', stop_reason: 'end_turn', stop_sequence: null });
    expect(whole.body.usage).toMatchObject({ input_tokens: 6, output_tokens: 16 });

    const r = await call(base, '/v1/messages', { body: body({ stream: true }), headers: ANTHROPIC });
    expect(r.headers['request-id']).toMatch(/^req_/);
    expect(r.headers['anthropic-ratelimit-requests-reset']).toMatch(RFC3339);
    expect(r.headers['anthropic-ratelimit-tokens-reset']).toMatch(RFC3339);
    expect(r.headers['anthropic-ratelimit-input-tokens-limit']).toMatch(/^\d+$/);
    const { events, pending } = sse(r.chunks);
    expect(pending).toBe(false);
    const names = events.map((e) => e.event);
    for (const e of events) expect(JSON.parse(e.data).type).toBe(e.event);
    expect(names.slice(0, 3)).toEqual(['message_start', 'content_block_start', 'ping']);
    expect(names.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    expect(names.slice(3, -3).every((n) => n === 'content_block_delta')).toBe(true);
    const start = JSON.parse(events[0].data);
    expect(start.message.usage.input_tokens).toBe(6);
    expect(JSON.parse(events[1].data).content_block).toEqual({ type: 'text', text: '' });
    const deltas = events.filter((e) => e.event === 'content_block_delta').map((e) => JSON.parse(e.data).delta);
    expect(deltas.every((d) => d.type === 'text_delta')).toBe(true);
    expect(deltas.map((d) => d.text).join('')).toBe(whole.body.content[0].text);
    const md = JSON.parse(events[events.length - 2].data);
    expect(md.delta.stop_reason).toBe('end_turn');
    expect(md.usage.output_tokens).toBe(deltas.length);
  });

  it('streams tool_use blocks whose first input_json_delta is "" and whose fragments assemble into the input', async () => {
    const whole = await json(base, '/v1/messages', { body: body({ tools: WEATHER_ANTHROPIC }), headers: ANTHROPIC });
    expect(whole.body.stop_reason).toBe('tool_use');
    const toolUse = whole.body.content[0];
    expect(toolUse).toMatchObject({ type: 'tool_use', name: 'get_weather' });
    expect(toolUse.id).toMatch(/^toolu_/);

    const r = await call(base, '/v1/messages', { body: body({ tools: WEATHER_ANTHROPIC, stream: true }), headers: ANTHROPIC });
    const events = sse(r.chunks).events.map((e) => ({ name: e.event, data: JSON.parse(e.data) }));
    const start = events.find((e) => e.name === 'content_block_start')!;
    expect(start.data.content_block).toEqual({ type: 'tool_use', id: toolUse.id, name: 'get_weather', input: {} });
    const partials = events.filter((e) => e.name === 'content_block_delta').map((e) => e.data.delta);
    expect(partials.every((d) => d.type === 'input_json_delta')).toBe(true);
    expect(partials[0].partial_json).toBe('');
    expect(JSON.parse(partials.map((d) => d.partial_json).join(''))).toEqual(toolUse.input);
    const md = events.find((e) => e.name === 'message_delta')!.data;
    expect(md.delta.stop_reason).toBe('tool_use');
    expect(md.usage.output_tokens).toBe(partials.length - 1);
    expect(events[events.length - 1].name).toBe('message_stop');
  });

  it('requires max_tokens and anthropic-version, answering 400 in Anthropic shape', async () => {
    const noMax = await json(base, '/v1/messages', { body: { model: 'claude-sonnet-4', messages: [{ role: 'user', content: 'x' }] }, headers: ANTHROPIC });
    expect(noMax.status).toBe(400);
    expect(noMax.body).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringMatching(/max_tokens/) }, request_id: expect.stringMatching(/^req_/) });
    const noVersion = await json(base, '/v1/messages', { body: body(), headers: { 'x-api-key': 'k' } });
    expect(noVersion.status).toBe(400);
    expect(noVersion.body.error.type).toBe('invalid_request_error');
    const noKey = await json(base, '/v1/messages', { body: body(), headers: { 'anthropic-version': '2023-06-01' } });
    expect(noKey.status).toBe(401);
    expect(noKey.body.error.type).toBe('authentication_error');
  });

  it('answers 529 overloaded, spend-limit 429, 402 billing and 429 rate limit in Anthropic shape', async () => {
    const over = await json(base, '/v1/messages', { body: body(), headers: { ...ANTHROPIC, 'x-sim-fault': '529' } });
    expect(over.status).toBe(529);
    expect(over.body).toEqual({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' }, request_id: over.headers['request-id'] });
    const quota = await json(base, '/v1/messages', { body: body(), headers: { ...ANTHROPIC, 'x-sim-fault': 'quota' } });
    expect(quota.status).toBe(429);
    expect(quota.body.error).toMatchObject({ type: 'rate_limit_error', details: { error_code: 'enforced_spend_limit_reached' } });
    expect(quota.headers['retry-after']).toBeUndefined();
    const billing = await json(base, '/v1/messages', { body: body(), headers: { ...ANTHROPIC, 'x-sim-fault': 'billing' } });
    expect(billing.status).toBe(402);
    expect(billing.body.error.type).toBe('billing_error');
    const limited = await json(base, '/v1/messages', { body: body(), headers: { ...ANTHROPIC, 'x-sim-fault': '429', 'x-sim-retry-after': '3' } });
    expect(limited.status).toBe(429);
    expect(limited.body.error.type).toBe('rate_limit_error');
    expect(limited.headers['retry-after']).toBe('3');
    expect(limited.headers['retry-after-ms']).toBeUndefined();
  });

  it('midstream-error: event: error overloaded_error after content, no message_stop', async () => {
    const r = await call(base, '/v1/messages', { body: body({ stream: true }), headers: { ...ANTHROPIC, 'x-sim-fault': 'midstream-error', 'x-sim-fault-after': '3' } });
    expect(r.status).toBe(200);
    const { events } = sse(r.chunks);
    const last = events[events.length - 1];
    expect(last.event).toBe('error');
    expect(JSON.parse(last.data)).toEqual({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    expect(events.filter((e) => e.event === 'content_block_delta')).toHaveLength(3);
    expect(events.some((e) => e.event === 'message_stop')).toBe(false);
  });

  it('truncate: ends without message_delta or message_stop', async () => {
    const r = await call(base, '/v1/messages', { body: body({ stream: true }), headers: { ...ANTHROPIC, 'x-sim-fault': 'truncate' } });
    const names = sse(r.chunks).events.map((e) => e.event);
    expect(names[0]).toBe('message_start');
    expect(names).not.toContain('message_stop');
    expect(names).not.toContain('message_delta');
    expect(names.filter((n) => n === 'content_block_delta')).toHaveLength(8);
  });

  it('counts tokens and lists models in Anthropic shape', async () => {
    const n = await json(base, '/v1/messages/count_tokens', { body: { model: 'claude-sonnet-4', messages: [{ role: 'user', content: 'one two three' }] }, headers: ANTHROPIC });
    expect(n.body).toEqual({ input_tokens: 3 });
    const m = await json(base, '/v1/models', { headers: ANTHROPIC });
    expect(m.body.data[0]).toMatchObject({ type: 'model', id: 'gpt-4o-mini' });
    expect(m.body.has_more).toBe(false);
  });
});

describe('Ollama format', () => {
  const body = (extra: Record<string, unknown> = {}) => ({ model: 'llama3.2', messages: [{ role: 'user', content: 'why is the sky blue' }], ...extra });

  it('streams NDJSON by default: content lines, then done:true with ns durations and counts', async () => {
    const r = await call(base, '/api/chat', { body: body(), headers: { 'x-sim-latency-ms': '20' } });
    expect(r.headers['content-type']).toBe('application/x-ndjson');
    expect(r.text.endsWith('}\n')).toBe(true);
    const lines = ndjson(r.chunks);
    const content = lines.slice(0, -1);
    expect(content.every((l) => l.done === false && l.message.role === 'assistant' && typeof l.created_at === 'string')).toBe(true);
    const final = lines[lines.length - 1];
    expect(final).toMatchObject({ done: true, done_reason: 'stop', prompt_eval_count: 5, eval_count: content.length, model: 'llama3.2' });
    for (const k of ['total_duration', 'load_duration', 'prompt_eval_duration', 'eval_duration']) {
      expect(Number.isInteger(final[k]), k).toBe(true);
      expect(final[k]).toBeGreaterThan(0);
    }
    // Nanoseconds: 20 ms of latency is at least 2e7 ns.
    expect(final.total_duration).toBeGreaterThanOrEqual(19_000_000);
    expect(final.total_duration).toBeGreaterThanOrEqual(final.eval_duration);
    const whole = await json(base, '/api/chat', { body: body({ stream: false }) });
    expect(whole.body.done).toBe(true);
    expect(whole.body.message.content).toBe(content.map((l) => l.message.content).join(''));
    expect(whole.body.eval_count).toBe(16);
  });

  it('sends tool calls whole in one chunk, arguments as an object, no id', async () => {
    const tools = [{ type: 'function', function: WEATHER_OPENAI[0].function }];
    const lines = ndjson((await call(base, '/api/chat', { body: body({ tools }) })).chunks);
    const withCalls = lines.filter((l) => l.message?.tool_calls);
    expect(withCalls).toHaveLength(1);
    const tc = withCalls[0].message.tool_calls;
    expect(tc).toHaveLength(1);
    expect(Object.keys(tc[0])).toEqual(['function']);
    expect(tc[0].function.name).toBe('get_weather');
    expect(typeof tc[0].function.arguments).toBe('object');
    expect(typeof tc[0].function.arguments.city).toBe('string');
    expect(lines[lines.length - 1].done).toBe(true);
  });

  it('honours num_predict with done_reason length', async () => {
    const whole = await json(base, '/api/chat', { body: body({ stream: false, options: { num_predict: 4 } }) });
    expect(whole.body).toMatchObject({ done_reason: 'length', eval_count: 4 });
  });

  it('serves /api/embed and /api/tags', async () => {
    const e = await json(base, '/api/embed', { body: { model: 'llama3.2', input: ['a', 'b'] } });
    expect(e.body.embeddings).toHaveLength(2);
    expect(e.body.embeddings[0]).toHaveLength(16);
    expect(e.body.prompt_eval_count).toBe(2);
    const t = await json(base, '/api/tags');
    expect(t.body.models.map((m: { name: string }) => m.name)).toContain('llama3.2:latest');
  });

  it('midstream-error: an {"error"} line after content lines, no done:true', async () => {
    const lines = ndjson((await call(base, '/api/chat', { body: body(), headers: { 'x-sim-fault': 'midstream-error', 'x-sim-fault-after': '4' } })).chunks);
    expect(lines).toHaveLength(5);
    expect(lines.slice(0, 4).every((l) => l.done === false)).toBe(true);
    expect(typeof lines[4].error).toBe('string');
    expect(lines.some((l) => l.done === true)).toBe(false);
  });

  it('truncate: content lines and no done:true line', async () => {
    const lines = ndjson((await call(base, '/api/chat', { body: body(), headers: { 'x-sim-fault': 'truncate' } })).chunks);
    expect(lines).toHaveLength(8);
    expect(lines.some((l) => l.done === true)).toBe(false);
  });

  it('errors as {"error": "..."} with 400, 404, 429, 500', async () => {
    const noModel = await json(base, '/api/chat', { body: { messages: [] } });
    expect(noModel.status).toBe(400);
    expect(noModel.body).toEqual({ error: 'model is required' });
    for (const [fault, status] of [
      ['429', 429],
      ['500', 500],
      ['529', 503],
    ] as const) {
      const r = await json(base, '/api/chat', { body: body(), headers: { 'x-sim-fault': fault } });
      expect(r.status).toBe(status);
      expect(Object.keys(r.body)).toEqual(['error']);
    }
  });
});

describe('fault injection on the wire', () => {
  it('split-utf8 cuts multi-byte characters across separate writes, in all three formats', async () => {
    const cases = [
      { path: '/v1/chat/completions', body: chatBody('x', { stream: true }), headers: {} },
      { path: '/v1/messages', body: { model: 'c', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'x' }] }, headers: ANTHROPIC },
      { path: '/api/chat', body: { model: 'llama3.2', messages: [{ role: 'user', content: 'x' }] }, headers: {} },
    ];
    for (const c of cases) {
      const headers = { ...c.headers, 'x-sim-fault': 'split-utf8', 'x-sim-tokens': '40', 'x-sim-seed': '3' };
      const r = await httpChunks(base, c.path, c.body, headers);
      expect(r.status).toBe(200);
      const cut = r.chunks.filter(endsMidCharacter).length;
      expect(cut, c.path).toBeGreaterThan(0);
      // The reassembled stream is still intact.
      const plain = await call(base, c.path, { body: c.body, headers: { ...c.headers, 'x-sim-tokens': '40', 'x-sim-seed': '3' } });
      const joined = Buffer.concat(r.chunks).toString('utf8');
      if (c.path === '/api/chat') {
        const a = ndjson(r.chunks).map((l) => l.message.content).join('');
        expect(a).toBe(ndjson(plain.chunks).map((l) => l.message.content).join(''));
        expect(a).toMatch(/[^\x00-\x7f]/);
      } else {
        expect(joined).not.toContain('\uFFFD');
        expect(sse(r.chunks).events.length).toBe(sse(plain.chunks).events.length);
      }
    }
  });

  it('stall: headers arrive, then nothing until the client leaves', async () => {
    const before = sim.stats().active;
    const s = await open(base, '/v1/chat/completions', { body: chatBody('x', { stream: true }), headers: { 'x-sim-fault': 'stall' } });
    expect(s.status).toBe(200);
    await sleep(150);
    expect(s.chunks).toHaveLength(0);
    expect(s.ended).toBe(false);
    s.abort();
    await s.done;
    for (let i = 0; i < 50 && sim.stats().active > before; i++) await sleep(10);
    expect(sim.stats().active).toBe(before);
  });

  it('stall with keep-alives: only comments (OpenAI) or pings (Anthropic), never content', async () => {
    const s = await open(base, '/v1/chat/completions', {
      body: chatBody('x', { stream: true }),
      headers: { 'x-sim-fault': 'stall', 'x-sim-keepalive-ms': '10' },
    });
    for (let i = 0; i < 200 && s.chunks.length < 3; i++) await sleep(10);
    s.abort();
    await s.done;
    const { events, comments } = sse(s.chunks);
    expect(events).toEqual([]);
    expect(comments).toBeGreaterThanOrEqual(3);

    const a = await open(base, '/v1/messages', {
      body: { model: 'c', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'x' }] },
      headers: { ...ANTHROPIC, 'x-sim-fault': 'stall', 'x-sim-keepalive-ms': '10', 'x-sim-fault-after': '2' },
    });
    const stallPings = () => {
      const ev = sse(a.chunks).events;
      return ev.slice(ev.map((e) => e.event).lastIndexOf('content_block_delta') + 1).length;
    };
    for (let i = 0; i < 200 && stallPings() < 3; i++) await sleep(10);
    a.abort();
    await a.done;
    const ev = sse(a.chunks).events;
    // Two content deltas, then pings only.
    expect(ev.filter((e) => e.event === 'content_block_delta')).toHaveLength(2);
    const lastDelta = ev.map((e) => e.event).lastIndexOf('content_block_delta');
    expect(ev.slice(lastDelta + 1).every((e) => e.event === 'ping')).toBe(true);
    expect(ev.slice(lastDelta + 1).length).toBeGreaterThanOrEqual(3);
  });

  it('close() ends stalled streams so nothing hangs', async () => {
    await withSim({}, async (url, s) => {
      const a = await open(url, '/v1/chat/completions', { body: chatBody('x', { stream: true }), headers: { 'x-sim-fault': 'stall' } });
      const b = await open(url, '/api/chat', { body: { model: 'm', messages: [{ role: 'user', content: 'x' }] }, headers: { 'x-sim-tokens-per-s': '1', 'x-sim-tokens': '1000' } });
      expect(s.stats().active).toBe(2);
      await s.close();
      await Promise.all([a.done, b.done]);
      expect(a.ended && a.error === undefined).toBe(false);
      expect(b.ended && b.error === undefined).toBe(false);
      await s.close(); // idempotent
    });
  });

  it('reset: the connection breaks mid-stream after content', async () => {
    const s = await open(base, '/v1/chat/completions', { body: chatBody('x', { stream: true }), headers: { 'x-sim-fault': 'reset', 'x-sim-fault-after': '3' } });
    await s.done;
    expect(s.error).toBeDefined();
    expect(s.ended).toBe(false);
    expect(Buffer.concat(s.chunks).toString()).toContain('"content"');
  });

  it('truncate on a non-streamed answer: half the body under the full Content-Length, then the connection drops', async () => {
    await expect(call(base, '/v1/chat/completions', { body: chatBody(), headers: { 'x-sim-fault': 'truncate' } })).rejects.toThrow();
  });

  it('latency and tokens-per-second pace the answer (lower bounds only)', async () => {
    const t0 = performance.now();
    await call(base, '/v1/chat/completions', { body: chatBody(), headers: { 'x-sim-latency-ms': '60' } });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(55);
    const t1 = performance.now();
    const r = await call(base, '/v1/chat/completions', { body: chatBody('x', { stream: true }), headers: { 'x-sim-tokens-per-s': '50', 'x-sim-tokens': '6' } });
    // 6 tokens at 50/s: 5 gaps of 20 ms.
    expect(performance.now() - t1).toBeGreaterThanOrEqual(90);
    expect(sse(r.chunks).events.at(-1)!.data).toBe('[DONE]');
  });

  it('rpm limits per provider with a computed retry-after; failNext scripts the next N requests', async () => {
    await withSim({ rpm: 2 }, async (url, s) => {
      expect((await call(url, '/v1/chat/completions', { body: chatBody() })).status).toBe(200);
      const second = await call(url, '/v1/chat/completions', { body: chatBody() });
      expect(second.headers['x-ratelimit-remaining-requests']).toBe('0');
      const third = await call(url, '/v1/chat/completions', { body: chatBody() });
      expect(third.status).toBe(429);
      const ra = Number(third.headers['retry-after']);
      expect(ra).toBeGreaterThanOrEqual(1);
      expect(ra).toBeLessThanOrEqual(60);
      expect(third.headers['retry-after-ms']).toBe(String(ra * 1000));
      // Another provider has its own window.
      expect((await call(url, '/api/chat', { body: { model: 'm', messages: [{ role: 'user', content: 'x' }], stream: false } })).status).toBe(200);
      expect(s.stats().rateLimited).toBe(1);
    });
    await withSim({}, async (url, s) => {
      s.failNext(2, '429', { retryAfter: 'date:5' });
      s.failNext(1, 'truncate');
      const a = await call(url, '/v1/chat/completions', { body: chatBody() });
      const b = await call(url, '/v1/messages', { body: { model: 'c', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }, headers: ANTHROPIC });
      expect([a.status, b.status]).toEqual([429, 429]);
      expect(a.headers['retry-after']).toMatch(HTTP_DATE);
      const c = await call(url, '/v1/chat/completions', { body: chatBody('x', { stream: true }) });
      expect(sse(c.chunks).events.some((e) => e.data === '[DONE]')).toBe(false);
      expect((await call(url, '/v1/chat/completions', { body: chatBody() })).status).toBe(200);
      expect(s.stats().faults).toMatchObject({ '429': 2, truncate: 1 });
      expectCode(() => s.failNext(0), 'ERR_INVALID_ARGUMENT');
      expectCode(() => s.failNext(1, 'bogus' as never), 'ERR_INVALID_ARGUMENT');
      expectCode(() => s.failNext(1, '429', { retryAfter: 'soon' }), 'ERR_INVALID_ARGUMENT');
    });
  });

  it('errorRate 1 fails every request with the provider\'s server error', async () => {
    await withSim({ errorRate: 1 }, async (url) => {
      expect((await call(url, '/v1/chat/completions', { body: chatBody() })).status).toBe(500);
      const a = await json(url, '/v1/messages', { body: { model: 'c', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }, headers: ANTHROPIC });
      expect(a.status).toBe(529);
      expect(a.body.error.type).toBe('overloaded_error');
      expect((await call(url, '/api/chat', { body: { model: 'm', messages: [{ role: 'user', content: 'x' }] } })).status).toBe(500);
    });
  });

  it('answers 503 unavailable_error while "loading", as llama.cpp does', async () => {
    await withSim({ loadingMs: 60_000 }, async (url) => {
      const h = await json(url, '/health');
      expect(h.status).toBe(503);
      expect(h.body).toEqual({ error: { message: 'Loading model', type: 'unavailable_error', param: null, code: 503 } });
      expect((await call(url, '/v1/chat/completions', { body: chatBody() })).status).toBe(503);
    });
    expect((await json(base, '/health')).body).toEqual({ status: 'ok' });
  });
});

describe('determinism', () => {
  it('same request and seed give the same text; another seed gives another text', async () => {
    const text = async (seed: string, path = '/v1/chat/completions') =>
      (await json(base, path, { body: chatBody('determinism'), headers: { 'x-sim-seed': seed } })).body.choices[0].message.content as string;
    const a = await text('42');
    expect(await text('42')).toBe(a);
    expect(await text('43')).not.toBe(a);
    // A different conversation gives a different text under the same seed.
    const other = (await json(base, '/v1/chat/completions', { body: chatBody('something else'), headers: { 'x-sim-seed': '42' } })).body.choices[0].message.content;
    expect(other).not.toBe(a);
    // The constructor seed is the default.
    const bySim = async (seed: number) =>
      withSim({ seed }, async (url) => (await json(url, '/v1/chat/completions', { body: chatBody('determinism') })).body.choices[0].message.content as string);
    expect(await bySim(42)).toBe(a);
    expect(await bySim(9)).not.toBe(a);
  });
});

describe('bad requests in each provider\'s shape', () => {
  const openaiShape = { error: { message: expect.any(String), type: 'invalid_request_error', param: null, code: 'unknown_url' } };

  it('400 on malformed JSON', async () => {
    const o = await json(base, '/v1/chat/completions', { rawBody: '{"model": "gpt-4o", "messages": [' });
    expect(o.status).toBe(400);
    expect(o.body).toEqual({ error: { message: expect.any(String), type: 'invalid_request_error', param: null, code: null } });
    const a = await json(base, '/v1/messages', { rawBody: '{nope', headers: ANTHROPIC });
    expect(a.status).toBe(400);
    expect(a.body).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: expect.any(String) }, request_id: expect.any(String) });
    const l = await json(base, '/api/chat', { rawBody: 'nope' });
    expect(l.status).toBe(400);
    expect(l.body).toEqual({ error: expect.any(String) });
    const arr = await json(base, '/v1/chat/completions', { rawBody: '[1,2]' });
    expect(arr.status).toBe(400);
  });

  it('400 on missing fields, naming the parameter', async () => {
    const r = await json(base, '/v1/chat/completions', { body: { model: 'gpt-4o' } });
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe('messages');
    const e = await json(base, '/v1/embeddings', { body: { model: 'x', input: [] } });
    expect(e.body.error.param).toBe('input');
  });

  it('413 on bodies over the limit, in each shape', async () => {
    await withSim({ maxBodyBytes: 1024 }, async (url) => {
      const big = JSON.stringify(chatBody('x'.repeat(2000)));
      const o = await json(url, '/v1/chat/completions', { rawBody: big });
      expect(o.status).toBe(413);
      expect(o.body.error).toMatchObject({ type: 'invalid_request_error', code: 'request_too_large' });
      const a = await json(url, '/v1/messages', { rawBody: big, headers: ANTHROPIC });
      expect(a.status).toBe(413);
      expect(a.body.error.type).toBe('request_too_large');
      const l = await json(url, '/api/chat', { rawBody: big });
      expect(l.status).toBe(413);
      expect(typeof l.body.error).toBe('string');
    });
  });

  it('413 on a body over the default 8 MiB', async () => {
    const big = Buffer.alloc(8 * 1024 * 1024 + 1, 0x20);
    const r = await json(base, '/v1/chat/completions', { rawBody: big });
    expect(r.status).toBe(413);
  });

  it('404 on unknown paths and 405 on wrong methods, in each shape', async () => {
    const o = await json(base, '/v1/nothing', { body: {} });
    expect(o.status).toBe(404);
    expect(o.body).toEqual(openaiShape);
    const a = await json(base, '/v1/messages/nothing', { body: {}, headers: ANTHROPIC });
    expect(a.status).toBe(404);
    expect(a.body.error.type).toBe('not_found_error');
    const l = await json(base, '/api/nothing', { body: {} });
    expect(l.status).toBe(404);
    expect(l.body).toEqual({ error: expect.any(String) });
    const m = await json(base, '/v1/chat/completions', { method: 'GET' });
    expect(m.status).toBe(405);
    const root = await json(base, '/');
    expect(root.status).toBe(404);
  });

  it('400 on a malformed control header, naming it', async () => {
    for (const [h, v] of [
      ['x-sim-fault', 'explode'],
      ['x-sim-fault', '429,500'],
      ['x-sim-fault', 'truncate,stall'],
      ['x-sim-tokens', '-1'],
      ['x-sim-seed', 'abc'],
      ['x-sim-retry-after', 'soon'],
      ['x-sim-should-retry', 'maybe'],
      ['x-sim-latency-ms', 'NaN'],
    ]) {
      const r = await json(base, '/v1/chat/completions', { body: chatBody(), headers: { [h]: v } });
      expect(r.status, `${h}: ${v}`).toBe(400);
      expect(r.body.error.message).toContain(h);
    }
  });
});

describe('keys', () => {
  const KEY = 'sk-SECRET-d41d8cd98f00b204e980';

  it('never appear in any response body, header or log line, whatever the failure', async () => {
    const logs: string[] = [];
    await withSim({ apiKey: 'sk-the-right-one', log: (l) => logs.push(l) }, async (url) => {
      const seen: string[] = [];
      const record = (r: { text: string; headers: Record<string, string> }) => seen.push(r.text, JSON.stringify(r.headers));
      const oa = { authorization: `Bearer ${KEY}` };
      const an = { ...ANTHROPIC, 'x-api-key': KEY };
      const requests: Array<[string, Parameters<typeof call>[2]]> = [
        ['/v1/chat/completions', { body: chatBody(), headers: oa }],
        ['/v1/chat/completions', { body: chatBody(), headers: { ...oa, 'x-sim-fault': '429' } }],
        ['/v1/chat/completions', { rawBody: '{bad', headers: oa }],
        [`/v1/chat/completions?api_key=${KEY}`, { body: chatBody(), headers: oa }],
        [`/v1/${KEY}`, { body: chatBody(), headers: oa }],
        ['/v1/embeddings', { body: { model: 'e', input: 'x' }, headers: oa }],
        ['/v1/models', { headers: oa }],
        ['/v1/messages', { body: { model: 'c', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }, headers: an }],
        ['/v1/messages', { body: { model: 'c', messages: [] }, headers: an }],
        ['/v1/messages', { body: {}, headers: { ...an, 'x-sim-fault': '529' } }],
        [`/api/chat?key=${KEY}`, { body: { model: 'm', messages: [{ role: 'user', content: 'x' }] }, headers: { authorization: `Bearer ${KEY}` } }],
        ['/api/chat', { rawBody: '{', headers: { authorization: `Bearer ${KEY}`, 'x-sim-fault': '500' } }],
      ];
      for (const [path, o] of requests) record(await call(url, path, o));
      // The wrong key is refused with 401, in each shape.
      const r401 = await json(url, '/v1/chat/completions', { body: chatBody(), headers: oa });
      expect(r401.status).toBe(401);
      expect(r401.body.error.code).toBe('invalid_api_key');
      expect((await json(url, '/v1/messages', { body: {}, headers: an })).status).toBe(401);
      // The right key passes.
      expect((await call(url, '/v1/chat/completions', { body: chatBody(), headers: { authorization: 'Bearer sk-the-right-one' } })).status).toBe(200);
      for (const s of seen) expect(s).not.toContain(KEY);
      expect(seen.join('')).not.toContain('SECRET');
    });
    expect(logs.length).toBeGreaterThan(10);
    for (const l of logs) expect(l).not.toContain('SECRET');
    // Through the SDK as well: the 401 error's message does not quote the key.
    await withSim({ apiKey: 'sk-the-right-one' }, async (url) => {
      const c = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 });
      const err = await c.chat.completions.create(chatBody() as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
      expect(String((err as Error).message)).not.toContain('SECRET');
    });
  });
});

describe('UpstreamSimulator API', () => {
  it('rejects bad options', () => {
    for (const bad of [
      { latencyMs: -1 },
      { latencyMs: Number.NaN },
      { jitterMs: -5 },
      { tokensPerS: Number.POSITIVE_INFINITY },
      { errorRate: 1.5 },
      { errorRate: -0.1 },
      { rpm: 1.5 },
      { tokens: -3 },
      { embeddingDims: 0 },
      { maxBodyBytes: -1 },
      { apiKey: '' },
      { models: [] },
      { retryAfterFormat: 'later' },
      { log: 'yes' },
    ]) {
      expectCode(() => new UpstreamSimulator(bad as never), 'ERR_INVALID_ARGUMENT');
    }
  });

  it('rejects a second listen, a bad port and listen after close; close before listen is fine', async () => {
    const s = new UpstreamSimulator();
    await expect(s.listen(70000)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await s.listen();
    await expect(s.listen()).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await s.close();
    await expect(s.listen()).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await new UpstreamSimulator().close();
  });

  it('reports a port in use as ERR_INVALID_ARGUMENT', async () => {
    const port = Number(new URL(base).port);
    const s = new UpstreamSimulator();
    await expect(s.listen(port)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await s.close();
  });

  it('counts requests, providers, statuses and tokens', async () => {
    await withSim({}, async (url, s) => {
      await call(url, '/v1/chat/completions', { body: chatBody('a b c') });
      await call(url, '/api/chat', { body: { model: 'm', messages: [{ role: 'user', content: 'x' }] } });
      await call(url, '/v1/nothing', { body: {} });
      const st = s.stats();
      expect(st.requests).toBe(3);
      expect(st.byProvider).toEqual({ openai: 2, anthropic: 0, ollama: 1 });
      expect(st.byStatus).toEqual({ '200': 2, '404': 1 });
      expect(st.tokensIn).toBe(4);
      expect(st.tokensOut).toBe(32);
    });
  });
});
