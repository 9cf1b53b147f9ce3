// The three providers through the AIClient against the simulator over real HTTP:
// chat, stream, tools both ways, embeddings, models, prices and stats.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AIClient, type ChatMessage, type StreamPart } from '../../lib/ai/client/index.js';
import { UpstreamSimulator } from '../../lib/ai/simulator/index.js';
import { KEY, PROVIDERS, TARGETS, client, drain, hello, providers, rejection, weatherTool } from './client-fixtures.js';

let sim: UpstreamSimulator;
let url: string;
let ai: AIClient;

beforeAll(async () => {
  sim = new UpstreamSimulator({ apiKey: KEY, tokens: 24 });
  url = (await sim.listen(0)).url;
  ai = client(url, {
    prices: { [TARGETS.openai]: { inputPerMTok: 0.15, outputPerMTok: 0.6 } },
  });
});

afterAll(async () => {
  await ai.close();
  await sim.close();
});

const texts = (parts: StreamPart[]) => parts.filter((p) => p.type === 'text').map((p) => (p as { text: string }).text);
const doneOf = (parts: StreamPart[]) => {
  const last = parts[parts.length - 1];
  expect(last.type).toBe('done');
  return (last as Extract<StreamPart, { type: 'done' }>).response;
};

describe.each(PROVIDERS)('%s', (name) => {
  const model = TARGETS[name];

  test('chat answers in the one response shape', async () => {
    const r = await ai.chat(hello(model, { temperature: 0.2, topP: 0.9 }));
    expect(r.provider).toBe(name);
    expect(r.target).toBe(model);
    expect(r.text.length).toBeGreaterThan(0);
    expect(r.message).toEqual({ role: 'assistant', content: r.text });
    expect(r.toolCalls).toBeUndefined();
    expect(r.finishReason).toBe('stop');
    expect(r.usage.inputTokens).toBeGreaterThan(0);
    expect(r.usage.outputTokens).toBe(24);
    expect(r.usage.estimated).toBeUndefined();
    expect(r.attempts).toBe(1);
    expect(r.cached).toBe(false);
    expect(r.latencyMs).toBeGreaterThanOrEqual(0);
    expect(typeof r.id).toBe('string');
  });

  test('stream gives text parts then done, matching the non-streamed answer', async () => {
    const chat = await ai.chat(hello(model));
    const { parts, error } = await drain(ai.stream(hello(model)));
    expect(error).toBeUndefined();
    const res = doneOf(parts);
    expect(texts(parts).join('')).toBe(chat.text);
    expect(res.text).toBe(chat.text);
    expect(res.usage.outputTokens).toBe(24);
    expect(res.usage.inputTokens).toBe(chat.usage.inputTokens);
    expect(res.finishReason).toBe('stop');
  });

  test('a multi-byte character split across chunks decodes whole (parser case 3)', async () => {
    const chat = await ai.chat(hello(model));
    const { parts } = await drain(ai.stream(hello(model, { headers: { 'x-sim-fault': 'split-utf8' } })));
    expect(texts(parts).join('')).toBe(chat.text);
    expect(texts(parts).join('')).not.toContain('\uFFFD');
  });

  test('maxTokens caps the answer with finishReason length', async () => {
    const r = await ai.chat(hello(model, { maxTokens: 5 }));
    expect(r.finishReason).toBe('length');
    expect(r.usage.outputTokens).toBe(5);
  });

  test('parallel tool calls, chat and stream agree (parser case 7)', async () => {
    const req = hello(model, { tools: [weatherTool], headers: { 'x-sim-tool-calls': '3' } });
    const chat = await ai.chat(req);
    expect(chat.finishReason).toBe('tool_calls');
    expect(chat.toolCalls).toHaveLength(3);
    for (const c of chat.toolCalls!) {
      expect(c.name).toBe('get_weather');
      expect(c.arguments).toEqual(JSON.parse(c.argumentsText));
      expect(typeof (c.arguments as { city: unknown }).city).toBe('string');
      expect(c.id.length).toBeGreaterThan(0);
    }
    expect(chat.message.tool_calls!.map((c) => c.function.name)).toEqual(['get_weather', 'get_weather', 'get_weather']);

    const { parts, error } = await drain(ai.stream(req));
    expect(error).toBeUndefined();
    const calls = parts.filter((p) => p.type === 'tool-call') as Array<Extract<StreamPart, { type: 'tool-call' }>>;
    expect(calls).toHaveLength(3);
    // Same seed and request: the same arguments, whether streamed in fragments or whole.
    expect(calls.map((c) => c.arguments)).toEqual(chat.toolCalls!.map((c) => c.arguments));
    expect(doneOf(parts).finishReason).toBe('tool_calls');
    expect(doneOf(parts).toolCalls).toHaveLength(3);
  });

  test('a tool round trip: system prompt, assistant tool_calls and tool results map both ways', async () => {
    const first = await ai.chat({
      model,
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'weather in Paris and Rome?' },
      ],
      tools: [weatherTool],
      headers: { 'x-sim-tool-calls': '2' },
    });
    expect(first.toolCalls).toHaveLength(2);
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'weather in Paris and Rome?' },
      first.message,
      ...first.toolCalls!.map((c) => ({ role: 'tool' as const, tool_call_id: c.id, content: '{"temp":21}' })),
    ];
    // The simulator answers text once the last turn holds tool results; a wrong mapping
    // (tool role to Anthropic, system as a message) would be a 400.
    const second = await ai.chat({ model, messages, tools: [weatherTool] });
    expect(second.finishReason).toBe('stop');
    expect(second.text.length).toBeGreaterThan(0);
    const streamed = await drain(ai.stream({ model, messages, tools: [weatherTool] }));
    expect(streamed.error).toBeUndefined();
    expect(doneOf(streamed.parts).text).toBe(second.text);
  });

  test('models() lists the upstream models', async () => {
    const ids = await ai.models(name);
    expect(ids.some((id) => id.startsWith(model.split('/')[1]))).toBe(true);
  });
});

test('tools on one provider and history from another: a conversation can change provider (failure case 10)', async () => {
  const first = await ai.chat(hello(TARGETS.openai, { tools: [weatherTool] }));
  const messages: ChatMessage[] = [
    { role: 'user', content: 'hello there' },
    first.message,
    { role: 'tool', tool_call_id: first.toolCalls![0].id, content: 'sunny' },
  ];
  for (const target of [TARGETS.claude, TARGETS.ollama]) {
    const r = await ai.chat({ model: target, messages, tools: [weatherTool] });
    expect(r.finishReason).toBe('stop');
  }
});

test('embeddings from OpenAI and Ollama; Anthropic has none', async () => {
  const o = await ai.embed({ model: TARGETS.openai.replace('gpt-4o-mini', 'text-embedding-3-small'), input: ['a', 'b c'] });
  expect(o.vectors).toHaveLength(2);
  expect(o.vectors[0]).toHaveLength(16);
  expect(o.usage.inputTokens).toBeGreaterThan(0);
  const l = await ai.embed({ model: TARGETS.ollama, input: 'one', dimensions: 8 });
  expect(l.vectors).toHaveLength(1);
  expect(l.vectors[0]).toHaveLength(8);
  const err = await rejection(ai.embed({ model: TARGETS.claude, input: 'x' }));
  expect(err.code).toBe('ERR_INVALID_ARGUMENT');
});

test('prices give costUsd; stats() counts per target', async () => {
  const r = await ai.chat(hello(TARGETS.openai));
  expect(r.costUsd).toBeCloseTo((r.usage.inputTokens * 0.15 + r.usage.outputTokens * 0.6) / 1e6, 12);
  const s = ai.stats();
  const t = s.targets[TARGETS.openai];
  expect(t.requests).toBeGreaterThan(0);
  expect(t.successes).toBe(t.requests);
  expect(t.tokensOut).toBeGreaterThan(0);
  expect(t.attempts).toBeGreaterThanOrEqual(t.requests);
  expect(t.costUsd).toBeGreaterThan(0);
  expect(Object.keys(s.pools)).toEqual([url]);
});

test('model aliases route to their targets; unknown models are rejected', async () => {
  const sim2 = client(url, { models: { fast: TARGETS.ollama, smart: { strategy: 'fallback', targets: [TARGETS.claude] } } });
  try {
    expect((await sim2.chat(hello('fast'))).provider).toBe('ollama');
    expect((await sim2.chat(hello('smart'))).provider).toBe('claude');
    expect((await rejection(sim2.chat(hello('nope')))).code).toBe('ERR_INVALID_ARGUMENT');
    expect((await rejection(sim2.chat(hello('nobody/gpt')))).code).toBe('ERR_INVALID_ARGUMENT');
  } finally {
    await sim2.close();
  }
});

test('least-latency measures each target once, then keeps to the faster one', async () => {
  const c = new AIClient({
    providers: providers(url, { openai: { 'x-sim-latency-ms': '120' }, ollama: { 'x-sim-latency-ms': '0' } }),
    models: { l: { strategy: 'least-latency', targets: [TARGETS.openai, TARGETS.ollama] } },
  });
  try {
    const picks: string[] = [];
    for (let i = 0; i < 5; i++) picks.push((await c.chat(hello('l'))).provider);
    // Declared order while unmeasured, then the lower p50 (120 ms of added latency apart).
    expect(picks).toEqual(['openai', 'ollama', 'ollama', 'ollama', 'ollama']);
  } finally {
    await c.close();
  }
});

test('weighted and least-latency strategies pick among their targets', async () => {
  const c = client(url, {
    models: {
      w: { strategy: 'weighted', targets: [{ target: TARGETS.openai, weight: 1000 }, { target: TARGETS.ollama, weight: 0.001 }] },
      l: { strategy: 'least-latency', targets: [TARGETS.openai, TARGETS.ollama] },
    },
  });
  try {
    const picks = new Set<string>();
    for (let i = 0; i < 5; i++) picks.add((await c.chat(hello('w'))).provider);
    expect(picks).toEqual(new Set(['openai']));
    // Unmeasured targets go first, so each gets a latency sample: openai has some now.
    expect((await c.chat(hello('l'))).provider).toBe('ollama');
    expect(c.stats().targets[TARGETS.ollama].latencyMs.p50).toBeGreaterThan(0);
  } finally {
    await c.close();
  }
});
