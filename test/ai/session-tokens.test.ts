// Token counting (exact for OpenAI-family models, estimated otherwise) and
// trimToBudget: budget respected, system kept, tool calls never split from results.
import fc from 'fast-check';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { countMessage, countMessages, countTokens, encodingFor, estimateTokens, MESSAGE_OVERHEAD, trimToBudget, type SessionMessage } from '../../lib/ai/session/index.js';
import { expectCode } from '../helpers.js';

const require = createRequire(import.meta.url);
const o200k = require('gpt-tokenizer/encoding/o200k_base') as { countTokens(s: string): number };
const cl100k = require('gpt-tokenizer/encoding/cl100k_base') as { countTokens(s: string): number };

describe('countTokens', () => {
  const text = 'Tokenization differs: ünïcödé, 日本語のテキスト, and code like `for (let i = 0; i < n; i++) {}`.';

  it('picks the encoding by model family', () => {
    expect(encodingFor('openai/gpt-4o')).toBe('o200k_base');
    expect(encodingFor('gpt-4o-mini-2024-07-18')).toBe('o200k_base');
    expect(encodingFor('openai/gpt-4.1-nano')).toBe('o200k_base');
    expect(encodingFor('o3-mini')).toBe('o200k_base');
    expect(encodingFor('openai/o1')).toBe('o200k_base');
    expect(encodingFor('ft:gpt-4o-mini:acme::abc')).toBe('o200k_base');
    expect(encodingFor('openai/gpt-4')).toBe('cl100k_base');
    expect(encodingFor('gpt-4-turbo')).toBe('cl100k_base');
    expect(encodingFor('gpt-3.5-turbo')).toBe('cl100k_base');
    expect(encodingFor('local/llama3.2')).toBeUndefined();
    expect(encodingFor('claude/claude-sonnet-4')).toBeUndefined();
    expect(encodingFor('ollama/orca-mini')).toBeUndefined();
  });

  it('counts exactly with gpt-tokenizer for OpenAI models', () => {
    expect(o200k.countTokens(text)).not.toBe(cl100k.countTokens(text));
    expect(countTokens(text, 'openai/gpt-4o')).toBe(o200k.countTokens(text));
    expect(countTokens(text, 'gpt-3.5-turbo')).toBe(cl100k.countTokens(text));
    const long = text.repeat(20);
    expect(countTokens(long, 'gpt-4o')).toBe(o200k.countTokens(long));
    expect(countTokens(long, 'gpt-4o')).toBe(o200k.countTokens(long)); // cached path
  });

  it('counts special-token text as plain text instead of throwing', () => {
    expect(countTokens('say <|endoftext|> now', 'gpt-4o')).toBeGreaterThan(3);
  });

  it('estimates other models: chars/4 or 4/3 per word, one per CJK char', () => {
    expect(countTokens('', 'llama3.2')).toBe(0);
    expect(estimateTokens('abcdefgh')).toBe(2);
    expect(estimateTokens('a b c d e f')).toBe(8); // 6 words * 4/3
    expect(estimateTokens('日本語')).toBe(3);
    expect(countTokens(text, 'local/llama3.2')).toBe(estimateTokens(text));
    // Errs high against a real tokenizer on ordinary English.
    const english = 'The quick brown fox jumps over the lazy dog while the cat watches from the window. '.repeat(10);
    expect(estimateTokens(english)).toBeGreaterThanOrEqual(o200k.countTokens(english));
  });
});

describe('countMessages', () => {
  it('adds the per-message, name and reply-priming overheads', () => {
    const msgs: SessionMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello there', name: 'ann' },
    ];
    const expected =
      MESSAGE_OVERHEAD.replyPriming +
      2 * MESSAGE_OVERHEAD.perMessage +
      o200k.countTokens('Be brief.') +
      o200k.countTokens('Hello there') +
      MESSAGE_OVERHEAD.perName +
      o200k.countTokens('ann');
    expect(countMessages(msgs, 'gpt-4o')).toBe(expected);
  });

  it('counts tool calls, content parts and Anthropic blocks', () => {
    const call: SessionMessage = { role: 'assistant', content: null, toolCalls: [{ id: 'c1', name: 'lookup', arguments: '{"q":"weather in Oslo"}' }] };
    expect(countMessage(call, 'gpt-4o')).toBeGreaterThan(MESSAGE_OVERHEAD.perMessage + 5);
    const parts: SessionMessage = { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'x' } }] };
    expect(countMessage(parts, 'gpt-4o')).toBe(MESSAGE_OVERHEAD.perMessage + o200k.countTokens('look') + 85);
    const result: SessionMessage = { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: 'sunny' }] };
    expect(countMessage(result, 'gpt-4o')).toBe(MESSAGE_OVERHEAD.perMessage + o200k.countTokens('sunny'));
  });

  it('caches per message, and recounts when its content changes', () => {
    const m: SessionMessage = { role: 'user', content: 'one two three' };
    const a = countMessage(m, 'gpt-4o');
    expect(countMessage(m, 'gpt-4o')).toBe(a);
    m.content = 'one two three four five six seven';
    expect(countMessage(m, 'gpt-4o')).toBeGreaterThan(a);
    expect(countMessage(m, 'llama3.2')).toBe(MESSAGE_OVERHEAD.perMessage + estimateTokens('one two three four five six seven'));
  });
});

const model = 'openai/gpt-4o';
const sys: SessionMessage = { role: 'system', content: 'You are a helpful assistant.' };
const user = (s: string): SessionMessage => ({ role: 'user', content: s });
const asst = (s: string): SessionMessage => ({ role: 'assistant', content: s });
const filler = (i: number) => `message number ${i}: ${'lorem ipsum dolor sit amet '.repeat(8)}`;

describe('trimToBudget', () => {
  it('leaves a history that fits untouched', () => {
    const msgs = [sys, asst('Hi! How can I help?'), user('hello')];
    const r = trimToBudget(msgs, { maxContextTokens: 10_000, model });
    expect(r).toEqual({ messages: msgs, tokens: countMessages(msgs, model), dropped: 0 });
  });

  it('drops the oldest turns until within budget, keeping the system message', () => {
    const msgs = [sys];
    for (let i = 0; i < 40; i++) msgs.push(i % 2 === 0 ? user(filler(i)) : asst(filler(i)));
    const full = countMessages(msgs, model);
    const r = trimToBudget(msgs, { maxContextTokens: Math.floor(full / 3), model });
    expect(r.tokens).toBeLessThanOrEqual(full / 3);
    expect(r.tokens).toBe(countMessages(r.messages, model));
    expect(r.messages[0]).toBe(sys);
    expect(r.messages[1].role).toBe('user'); // starts on a user turn
    expect(r.messages.at(-1)).toBe(msgs.at(-1));
    expect(r.dropped).toBe(msgs.length - r.messages.length);
    // What is kept is the newest suffix.
    expect(msgs.slice(msgs.length - (r.messages.length - 1))).toEqual(r.messages.slice(1));
  });

  it('reserveTokens leaves room for the reply', () => {
    const msgs = [sys, user(filler(1)), asst(filler(2)), user(filler(3))];
    const full = countMessages(msgs, model);
    expect(trimToBudget(msgs, { maxContextTokens: full, model }).dropped).toBe(0);
    expect(trimToBudget(msgs, { maxContextTokens: full, model, reserveTokens: 10 }).dropped).toBeGreaterThan(0);
  });

  it('never splits an OpenAI tool call from its results', () => {
    const call: SessionMessage = {
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: 'a', type: 'function', function: { name: 'f', arguments: '{}' } },
        { id: 'b', type: 'function', function: { name: 'g', arguments: '{}' } },
      ],
    };
    const r1: SessionMessage = { role: 'tool', tool_call_id: 'a', content: filler(1) };
    const r2: SessionMessage = { role: 'tool', tool_call_id: 'b', content: filler(2) };
    const msgs = [sys, user(filler(0)), call, r1, r2, asst(filler(3)), user('and now?')];
    const tail = [asst(filler(3)), user('and now?')];
    const withoutFirstUser = countMessages([sys, call, r1, r2, ...tail], model);
    // A budget that the call group would fit only without its results: the whole group goes.
    const r = trimToBudget(msgs, { maxContextTokens: withoutFirstUser - 1, model, startWithUser: false });
    expect(r.messages).toEqual([sys, ...tail]);
    // A budget that fits the group keeps it whole.
    const kept = trimToBudget(msgs, { maxContextTokens: withoutFirstUser, model, startWithUser: false });
    expect(kept.messages).toEqual([sys, call, r1, r2, ...tail]);
  });

  it('never splits an Anthropic tool_use from its tool_result', () => {
    const use: SessionMessage = { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: { q: filler(1) } }] };
    const result: SessionMessage = { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: filler(2) }] };
    const msgs = [user(filler(0)), use, result, asst('done'), user('next')];
    for (let budget = 20; budget < countMessages(msgs, model); budget += 25) {
      const out = trimToBudget(msgs, { maxContextTokens: budget, model, startWithUser: false }).messages;
      expect(out.includes(use)).toBe(out.includes(result));
    }
  });

  it('keeps the newest turn even when it alone is over budget', () => {
    const msgs = [sys, user(filler(1)), asst(filler(2)), user(filler(3).repeat(10))];
    const r = trimToBudget(msgs, { maxContextTokens: 50, model });
    expect(r.messages).toEqual([sys, msgs[3]]);
    expect(r.tokens).toBeGreaterThan(50);
  });

  it('keepSystem: false lets system messages go too', () => {
    const msgs = [sys, user(filler(1)), asst(filler(2)), user('q')];
    const r = trimToBudget(msgs, { maxContextTokens: 30, model, keepSystem: false });
    expect(r.messages).toEqual([msgs[3]]);
  });

  it('property: within budget unless only the newest turn is left; system kept; tool groups whole', () => {
    const turn = fc.oneof(
      fc.tuple(fc.constant('user'), fc.string({ maxLength: 200 })),
      fc.tuple(fc.constant('assistant'), fc.string({ maxLength: 200 })),
      fc.tuple(fc.constant('tools'), fc.integer({ min: 1, max: 3 })),
    );
    fc.assert(
      fc.property(fc.array(turn, { minLength: 1, maxLength: 25 }), fc.integer({ min: 10, max: 600 }), (turns, budget) => {
        const msgs: SessionMessage[] = [sys];
        let id = 0;
        for (const [kind, v] of turns) {
          if (kind === 'tools') {
            const ids = Array.from({ length: v as number }, () => `c${id++}`);
            msgs.push({ role: 'assistant', content: null, toolCalls: ids.map((i) => ({ id: i, name: 'f', arguments: '{"x":1}' })) });
            for (const i of ids) msgs.push({ role: 'tool', toolCallId: i, content: `result ${i}` });
          } else msgs.push({ role: kind, content: v as string });
        }
        const r = trimToBudget(msgs, { maxContextTokens: budget, model, startWithUser: false });
        expect(r.messages[0]).toBe(sys);
        expect(r.tokens).toBe(countMessages(r.messages, model));
        const rest = r.messages.slice(1);
        expect(msgs.slice(msgs.length - rest.length)).toEqual(rest); // a suffix
        if (r.tokens > budget) {
          // Only the newest turn is left (a tool group counts as one turn).
          expect(rest.filter((m) => m.role !== 'tool').length).toBe(1);
        }
        const calls = new Set(rest.flatMap((m) => (m.toolCalls ?? []).map((c) => (c as { id: string }).id)));
        for (const m of rest) if (m.role === 'tool') expect(calls.has(m.toolCallId!)).toBe(true);
        for (const m of rest)
          for (const c of (m.toolCalls ?? []) as Array<{ id: string }>) expect(rest.some((x) => x.toolCallId === c.id)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects bad budgets', () => {
    expectCode(() => trimToBudget([], { maxContextTokens: 0, model }), 'ERR_INVALID_ARGUMENT', /maxContextTokens/);
    expectCode(() => trimToBudget([], { maxContextTokens: Number.NaN, model }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => trimToBudget([], { maxContextTokens: 10, model, reserveTokens: -1 }), 'ERR_INVALID_ARGUMENT');
  });
});
