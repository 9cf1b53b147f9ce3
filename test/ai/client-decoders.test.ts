// The provider stream decoders fed raw bytes split at every position (AI-WIRE parser
// cases 1-7): the result must not depend on where the reads fall.
import { describe, expect, test } from 'vitest';
import { anthropic } from '../../lib/ai/client/providers/anthropic.js';
import { ollama } from '../../lib/ai/client/providers/ollama.js';
import { openai } from '../../lib/ai/client/providers/openai.js';
import type { ProviderAdapter } from '../../lib/ai/client/providers/provider.js';
import type { StreamPart } from '../../lib/ai/client/types.js';
import { MyelinError } from '../../lib/errors.js';

const enc = new TextEncoder();

function run(adapter: ProviderAdapter, chunks: Uint8Array[]) {
  const d = adapter.decoder();
  const parts: StreamPart[] = [];
  for (const c of chunks) {
    d.feed(c);
    parts.push(...(d.take() ?? []));
  }
  d.end();
  parts.push(...(d.take() ?? []));
  return { parts, result: d.result(), contentEvents: d.contentEvents };
}

/** Every two-way split, and one byte at a time. */
function splits(bytes: Uint8Array): Uint8Array[][] {
  const out: Uint8Array[][] = [];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  out.push(Array.from(bytes, (_b, i) => bytes.subarray(i, i + 1)));
  return out;
}

function sameEverywhere(adapter: ProviderAdapter, text: string) {
  const bytes = enc.encode(text);
  const whole = run(adapter, [bytes]);
  for (const chunks of splits(bytes)) {
    const r = run(adapter, chunks);
    expect(r.result).toEqual({ ...whole.result, id: adapter === ollama ? r.result.id : whole.result.id, toolCalls: r.result.toolCalls });
    expect(r.result.toolCalls.map((c) => [c.name, c.arguments])).toEqual(whole.result.toolCalls.map((c) => [c.name, c.arguments]));
  }
  return whole;
}

const oa = (o: object) => `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', model: 'gpt', obfuscation: 'zz', ...o })}\n\n`;
const delta = (d: object, finish: string | null = null) => oa({ choices: [{ index: 0, delta: d, finish_reason: finish }], usage: null });

describe('openai', () => {
  const stream =
    ': keep-alive\n\n' +
    delta({ role: 'assistant', content: '' }) +
    delta({ content: 'héllo ' }) +
    delta({ content: '🌍 東京' }) +
    delta({ tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'f', arguments: '' } }] }) +
    delta({ tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'g', arguments: '{"x":' } }] }) +
    delta({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }) +
    delta({ tool_calls: [{ index: 1, function: { arguments: '1}' } }] }) +
    delta({ tool_calls: [{ index: 0, function: { arguments: '"Zürich"}' } }] }) +
    delta({}, 'tool_calls') +
    oa({ choices: [], usage: { prompt_tokens: 9, completion_tokens: 7 } }) +
    'data: [DONE]\n\n' +
    'data: garbage after the end\n\n';

  test('split anywhere: same text, interleaved tool calls joined per index, usage (cases 1, 3, 6, 7)', () => {
    const { parts, result } = sameEverywhere(openai, stream);
    expect(result.text).toBe('héllo 🌍 東京');
    expect(result.usage).toEqual({ inputTokens: 9, outputTokens: 7 });
    expect(result.finishReason).toBe('tool_calls');
    expect(result.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments }))).toEqual([
      { id: 'call_a', name: 'f', arguments: { city: 'Zürich' } },
      { id: 'call_b', name: 'g', arguments: { x: 1 } },
    ]);
    expect(parts.map((p) => p.type)).toEqual(['text', 'text', 'tool-call', 'tool-call']);
  });

  test('CRLF and CR delimiters, multi-line data, event/id/retry fields and comments (case 2)', () => {
    const frames = [
      'id: 1\r\nretry: 1000\r\ndata: {"id":"x","choices":[{"index":0,\r\ndata: "delta":{"content":"a"}}]}\r\n\r\n',
      ': comment\r\r',
      'data: {"choices":[{"index":0,"delta":{"content":"b"}}]}\r\r',
      'event: message\ndata: {"choices":[{"index":0,"delta":{"content":"c"},"finish_reason":"stop"}]}\n\n',
      'data: [DONE]\r\n\r\n',
    ].join('');
    const { result } = sameEverywhere(openai, frames);
    expect(result.text).toBe('abc');
    expect(result.usage).toBeUndefined();
  });

  test('error frames: data with error, and event: error', () => {
    for (const frame of ['data: {"error":{"message":"boom","type":"server_error"}}\n\n', 'event: error\ndata: {"message":"boom"}\n\n']) {
      const d = openai.decoder();
      d.feed(enc.encode(delta({ content: 'hi' })));
      let caught: unknown;
      try {
        d.feed(enc.encode(frame));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(MyelinError);
      expect((caught as MyelinError).code).toBe('ERR_AI_UPSTREAM');
      expect((caught as { retryable: boolean }).retryable).toBe(true);
    }
  });

  test('no [DONE] is ERR_AI_STREAM_TRUNCATED; a keep-alive is not content', () => {
    const d = openai.decoder();
    d.feed(enc.encode(': ping\n\n: ping\n\n'));
    expect(d.contentEvents).toBe(0);
    d.feed(enc.encode(delta({ content: 'x' })));
    expect(d.contentEvents).toBe(1);
    expect(() => d.end()).toThrowError(expect.objectContaining({ code: 'ERR_AI_STREAM_TRUNCATED' }));
  });
});

const an = (event: string, data: object) => `event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`;

describe('anthropic', () => {
  const stream =
    an('message_start', { message: { id: 'msg_1', model: 'claude', usage: { input_tokens: 11, cache_read_input_tokens: 2, output_tokens: 1 } } }) +
    an('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }) +
    an('ping', {}) +
    an('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Grüß ' } }) +
    an('content_block_delta', { index: 0, delta: { type: 'text_delta', text: '🦀' } }) +
    an('content_block_stop', { index: 0 }) +
    an('content_block_start', { index: 1, content_block: { type: 'tool_use', id: 'toolu_1', name: 'f', input: {} } }) +
    an('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '' } }) +
    an('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '{"q": "ü' } }) +
    an('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '"}' } }) +
    an('content_block_stop', { index: 1 }) +
    an('content_block_start', { index: 2, content_block: { type: 'tool_use', id: 'toolu_2', name: 'g', input: {} } }) +
    an('content_block_delta', { index: 2, delta: { type: 'input_json_delta', partial_json: '' } }) +
    an('content_block_stop', { index: 2 }) +
    an('message_delta', { delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 21 } }) +
    an('message_stop', {});

  test('the full event flow, split anywhere; input_json_delta starting with "" (cases 1, 3, 7)', () => {
    const { parts, result } = sameEverywhere(anthropic, stream);
    expect(result).toMatchObject({ id: 'msg_1', model: 'claude', text: 'Grüß 🦀', finishReason: 'tool_calls', usage: { inputTokens: 13, outputTokens: 21 } });
    expect(result.toolCalls.map((c) => [c.id, c.name, c.arguments])).toEqual([
      ['toolu_1', 'f', { q: 'ü' }],
      ['toolu_2', 'g', {}],
    ]);
    expect(parts.map((p) => p.type)).toEqual(['text', 'text', 'tool-call', 'tool-call']);
  });

  test('event: error after content; ping is not content; no message_stop is truncated (cases 4, 5, 8)', () => {
    const d = anthropic.decoder();
    d.feed(enc.encode(an('message_start', { message: { id: 'm' } }) + an('ping', {}) + an('ping', {})));
    expect(d.contentEvents).toBe(0);
    d.feed(enc.encode(an('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'x' } })));
    expect(() => d.feed(enc.encode(an('error', { error: { type: 'overloaded_error', message: 'Overloaded' } })))).toThrowError(
      expect.objectContaining({ code: 'ERR_AI_UPSTREAM', retryable: true, type: 'overloaded_error' }),
    );
    const t = anthropic.decoder();
    t.feed(enc.encode(an('message_start', { message: { id: 'm' } })));
    expect(() => t.end()).toThrowError(expect.objectContaining({ code: 'ERR_AI_STREAM_TRUNCATED' }));
  });

  test('request mapping: system on top, tool results in a user turn, max_tokens always set', () => {
    const call = anthropic.chat(
      { name: 'c', kind: 'anthropic', origin: 'http://x', basePath: '', query: '', apiKey: undefined, headers: {}, connections: 1, anthropicVersion: '2023-06-01', defaultMaxTokens: 1024 },
      'claude',
      {
        model: 'c/claude',
        messages: [
          { role: 'system', content: 'S1' },
          { role: 'developer', content: 'S2' },
          { role: 'user', content: 'q' },
          { role: 'assistant', content: null, tool_calls: [{ id: 't1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }, { id: 't2', type: 'function', function: { name: 'g', arguments: '' } }] },
          { role: 'tool', tool_call_id: 't1', content: 'r1' },
          { role: 'tool', tool_call_id: 't2', content: 'r2' },
        ],
        tools: [{ type: 'function', function: { name: 'f' } }],
        toolChoice: 'required',
        stop: 'END',
      },
      true,
    );
    const b = JSON.parse(call.body!);
    expect(b.system).toBe('S1\n\nS2');
    expect(b.max_tokens).toBe(1024);
    expect(b.stream).toBe(true);
    expect(b.stop_sequences).toEqual(['END']);
    expect(b.tool_choice).toEqual({ type: 'any' });
    expect(b.tools).toEqual([{ name: 'f', input_schema: { type: 'object', properties: {} } }]);
    expect(b.messages).toEqual([
      { role: 'user', content: 'q' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: { a: 1 } }, { type: 'tool_use', id: 't2', name: 'g', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: 'r1' }, { type: 'tool_result', tool_use_id: 't2', content: 'r2' }] },
    ]);
  });
});

const ol = (o: object) => `${JSON.stringify({ model: 'llama', created_at: '2025-01-01T00:00:00Z', ...o })}\n`;

describe('ollama', () => {
  const stream =
    ol({ message: { role: 'assistant', content: 'Ça ' }, done: false }) +
    ol({ message: { role: 'assistant', content: 'va 👍' }, done: false }) +
    ol({ message: { role: 'assistant', content: '', tool_calls: [{ function: { name: 'f', arguments: { city: 'Köln', n: 2 } } }] }, done: false }) +
    ol({ message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', total_duration: 123456789, prompt_eval_count: 5, eval_count: 4, eval_duration: 1000 });

  test('NDJSON split anywhere; tool arguments as an object; counts from the done line', () => {
    const { result } = sameEverywhere(ollama, stream);
    expect(result).toMatchObject({ model: 'llama', text: 'Ça va 👍', finishReason: 'tool_calls', usage: { inputTokens: 5, outputTokens: 4 } });
    expect(result.toolCalls).toHaveLength(1);
    expect(result.toolCalls[0]).toMatchObject({ name: 'f', arguments: { city: 'Köln', n: 2 }, argumentsText: '{"city":"Köln","n":2}' });
    expect(result.toolCalls[0].id).toMatch(/^call_/);
  });

  test('an error line mid-stream throws; no done line is truncated', () => {
    const d = ollama.decoder();
    d.feed(enc.encode(ol({ message: { role: 'assistant', content: 'x' }, done: false })));
    expect(() => d.feed(enc.encode('{"error":"unexpected EOF"}\n'))).toThrowError(expect.objectContaining({ code: 'ERR_AI_UPSTREAM' }));
    const t = ollama.decoder();
    t.feed(enc.encode(ol({ message: { role: 'assistant', content: 'x' }, done: false })));
    expect(() => t.end()).toThrowError(expect.objectContaining({ code: 'ERR_AI_STREAM_TRUNCATED' }));
  });
});
