// AIClient's public surface against bad input: the constructor's options, chat, stream
// and embed requests, session() and send(), models(), and calls after close(). Each row
// is [what, a call, the code it must fail with]: wrong types, null, NaN, negative and
// huge numbers, and unknown names (a typo such as max_tokens is refused, not ignored).
// Nothing here reaches an upstream: the provider points at a port nobody listens on, so
// a row whose input slipped through fails with a connection error instead.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AIClient, type AIClientOptions } from '../../lib/ai/client/index.js';
import { MyelinError } from '../../lib/errors.js';
import { freePort } from './services.js';

let base: string;
let ai: AIClient;
let closed: AIClient;

const opts = (extra: Record<string, unknown> = {}): AIClientOptions =>
  ({ providers: [{ name: 'p', kind: 'openai', baseURL: base }], retry: { attempts: 1 }, ...extra }) as AIClientOptions;
const provider = (extra: Record<string, unknown>) => opts({ providers: [{ name: 'p', kind: 'openai', baseURL: base, ...extra }] });
const msgs = [{ role: 'user', content: 'hi' }];
const chat = (extra: Record<string, unknown>) => ({ model: 'p/m', messages: msgs, ...extra }) as never;
const embed = (extra: Record<string, unknown>) => ({ model: 'p/m', input: 'x', ...extra }) as never;
const HUGE = 1e300;

beforeAll(async () => {
  base = `http://127.0.0.1:${await freePort()}/v1`;
  ai = new AIClient(opts());
  closed = new AIClient(opts());
  await closed.close();
});
afterAll(async () => {
  await ai.close();
});

/** The code a call fails with, thrown or rejected; a stream is read to its first part. */
async function codeOf(call: () => unknown): Promise<string> {
  try {
    const r = call();
    if (r instanceof Promise) await r;
    else if (r !== null && typeof r === 'object' && Symbol.asyncIterator in r) {
      for await (const _ of r as AsyncIterable<unknown>) break;
    }
  } catch (err) {
    return err instanceof MyelinError ? err.code : `not a MyelinError: ${String(err)}`;
  }
  return 'no error';
}

const rows: Array<[string, () => unknown, string]> = [
  // new AIClient(options)
  ['no options', () => new AIClient(undefined as never), 'ERR_INVALID_ARGUMENT'],
  ['options null', () => new AIClient(null as never), 'ERR_INVALID_ARGUMENT'],
  ['options a string', () => new AIClient('openai' as never), 'ERR_INVALID_ARGUMENT'],
  ['unknown option name', () => new AIClient(opts({ retires: { attempts: 2 } })), 'ERR_INVALID_ARGUMENT'],
  ['providers null', () => new AIClient(opts({ providers: null })), 'ERR_INVALID_ARGUMENT'],
  ['providers[0] null', () => new AIClient(opts({ providers: [null] })), 'ERR_INVALID_ARGUMENT'],
  ['providers[0] unknown name', () => new AIClient(provider({ baseUrl: base })), 'ERR_INVALID_ARGUMENT'],
  ['providers[0].kind unknown', () => new AIClient(provider({ kind: 'azure' })), 'ERR_INVALID_ARGUMENT'],
  ['providers[0].connections NaN', () => new AIClient(provider({ connections: Number.NaN })), 'ERR_INVALID_ARGUMENT'],
  ['providers[0].connections negative', () => new AIClient(provider({ connections: -1 })), 'ERR_INVALID_ARGUMENT'],
  ['providers[0].defaultMaxTokens huge', () => new AIClient(provider({ defaultMaxTokens: HUGE })), 'ERR_INVALID_ARGUMENT'],
  ['providers[0].headers null', () => new AIClient(provider({ headers: null })), 'ERR_INVALID_ARGUMENT'],
  ['models null', () => new AIClient(opts({ models: null })), 'ERR_INVALID_ARGUMENT'],
  ['models.x null', () => new AIClient(opts({ models: { x: null } })), 'ERR_INVALID_ARGUMENT'],
  ['models.x unknown name', () => new AIClient(opts({ models: { x: { targets: ['p/m'], hedgeAfter: 5 } } })), 'ERR_INVALID_ARGUMENT'],
  ['models.x.targets[0] unknown name', () => new AIClient(opts({ models: { x: { targets: [{ target: 'p/m', wieght: 2 }] } } })), 'ERR_INVALID_ARGUMENT'],
  ['models.x.hedgeAfterMs NaN', () => new AIClient(opts({ models: { x: { targets: ['p/m'], hedgeAfterMs: Number.NaN } } })), 'ERR_INVALID_ARGUMENT'],
  ['models.x.hedgeAfterMs huge', () => new AIClient(opts({ models: { x: { targets: ['p/m'], hedgeAfterMs: HUGE } } })), 'ERR_INVALID_ARGUMENT'],
  ['models.x.targets[0].weight negative', () => new AIClient(opts({ models: { x: { targets: [{ target: 'p/m', weight: -1 }] } } })), 'ERR_INVALID_ARGUMENT'],
  ['retry null', () => new AIClient(opts({ retry: null })), 'ERR_INVALID_ARGUMENT'],
  ['retry unknown name', () => new AIClient(opts({ retry: { attempt: 2 } })), 'ERR_INVALID_ARGUMENT'],
  ['retry.attempts NaN', () => new AIClient(opts({ retry: { attempts: Number.NaN } })), 'ERR_INVALID_ARGUMENT'],
  ['retry.attempts huge', () => new AIClient(opts({ retry: { attempts: HUGE } })), 'ERR_INVALID_ARGUMENT'],
  ['retry.deadlineMs negative', () => new AIClient(opts({ retry: { deadlineMs: -5 } })), 'ERR_INVALID_ARGUMENT'],
  ['retry.maxDelayMs huge (past the longest timer)', () => new AIClient(opts({ retry: { maxDelayMs: 2 ** 31 } })), 'ERR_INVALID_ARGUMENT'],
  ['timeouts null', () => new AIClient(opts({ timeouts: null })), 'ERR_INVALID_ARGUMENT'],
  ['timeouts unknown name', () => new AIClient(opts({ timeouts: { request: 5 } })), 'ERR_INVALID_ARGUMENT'],
  ['timeouts.requestMs a string', () => new AIClient(opts({ timeouts: { requestMs: '100' } })), 'ERR_INVALID_ARGUMENT'],
  ['timeouts.idleMs huge (Node would fire it at once)', () => new AIClient(opts({ timeouts: { idleMs: HUGE } })), 'ERR_INVALID_ARGUMENT'],
  ['prices entry unknown name', () => new AIClient(opts({ prices: { 'p/m': { inputPerMTok: 1, outputPerMTok: 1, cachedPerMTok: 1 } } })), 'ERR_INVALID_ARGUMENT'],
  ['prices entry negative', () => new AIClient(opts({ prices: { 'p/m': { inputPerMTok: -1, outputPerMTok: 1 } } })), 'ERR_INVALID_ARGUMENT'],
  ['maxResponseSize null', () => new AIClient(opts({ maxResponseSize: null })), 'ERR_INVALID_ARGUMENT'],
  ['maxResponseSize huge', () => new AIClient(opts({ maxResponseSize: HUGE })), 'ERR_INVALID_ARGUMENT'],
  ['breaker null', () => new AIClient(opts({ breaker: null })), 'ERR_INVALID_ARGUMENT'],
  ['breaker unknown name', () => new AIClient(opts({ breaker: { threshold: 0.5 } })), 'ERR_INVALID_ARGUMENT'],
  ['breaker.failureRate NaN', () => new AIClient(opts({ breaker: { failureRate: Number.NaN } })), 'ERR_INVALID_ARGUMENT'],
  ['breaker.openMs huge', () => new AIClient(opts({ breaker: { openMs: HUGE } })), 'ERR_INVALID_ARGUMENT'],
  ['limits null', () => new AIClient(opts({ limits: null })), 'ERR_INVALID_ARGUMENT'],
  ['limits.p unknown name', () => new AIClient(opts({ limits: { p: { rpm: 10, rps: 1 } } })), 'ERR_INVALID_ARGUMENT'],
  ['limits.p.rpm negative', () => new AIClient(opts({ limits: { p: { rpm: -1 } } })), 'ERR_INVALID_ARGUMENT'],
  ['limits.p.tpm NaN', () => new AIClient(opts({ limits: { p: { tpm: Number.NaN } } })), 'ERR_INVALID_ARGUMENT'],
  ['cache null', () => new AIClient(opts({ cache: null })), 'ERR_INVALID_ARGUMENT'],
  ['cache true (only false or an object)', () => new AIClient(opts({ cache: true })), 'ERR_INVALID_ARGUMENT'],
  ['cache unknown name', () => new AIClient(opts({ cache: { ttl: 5 } })), 'ERR_INVALID_ARGUMENT'],
  ['cache.maxEntries huge', () => new AIClient(opts({ cache: { maxEntries: HUGE } })), 'ERR_INVALID_ARGUMENT'],
  ['store null', () => new AIClient(opts({ store: null })), 'ERR_INVALID_ARGUMENT'],
  ['store unknown name', () => new AIClient(opts({ store: { url: 'redis://x' } })), 'ERR_INVALID_ARGUMENT'],
  ['sessionTtlMs NaN', () => new AIClient(opts({ sessionTtlMs: Number.NaN })), 'ERR_INVALID_ARGUMENT'],
  ['sessionTtlMs huge', () => new AIClient(opts({ sessionTtlMs: HUGE })), 'ERR_INVALID_ARGUMENT'],
  ['metrics null', () => new AIClient(opts({ metrics: null })), 'ERR_INVALID_ARGUMENT'],

  // chat / stream
  ['chat()', () => ai.chat(undefined as never), 'ERR_INVALID_ARGUMENT'],
  ['chat(null)', () => ai.chat(null as never), 'ERR_INVALID_ARGUMENT'],
  ['chat("hi")', () => ai.chat('hi' as never), 'ERR_INVALID_ARGUMENT'],
  ['chat: unknown field (max_tokens)', () => ai.chat(chat({ max_tokens: 5 })), 'ERR_INVALID_ARGUMENT'],
  ['chat: model null', () => ai.chat(chat({ model: null })), 'ERR_INVALID_ARGUMENT'],
  ['chat: messages null', () => ai.chat(chat({ messages: null })), 'ERR_INVALID_ARGUMENT'],
  ['chat: messages[0] null', () => ai.chat(chat({ messages: [null] })), 'ERR_INVALID_ARGUMENT'],
  ['chat: temperature NaN', () => ai.chat(chat({ temperature: Number.NaN })), 'ERR_INVALID_ARGUMENT'],
  ['chat: temperature negative', () => ai.chat(chat({ temperature: -0.1 })), 'ERR_INVALID_ARGUMENT'],
  ['chat: maxTokens huge', () => ai.chat(chat({ maxTokens: HUGE })), 'ERR_INVALID_ARGUMENT'],
  ['chat: maxTokens 0', () => ai.chat(chat({ maxTokens: 0 })), 'ERR_INVALID_ARGUMENT'],
  ['chat: seed huge', () => ai.chat(chat({ seed: HUGE })), 'ERR_INVALID_ARGUMENT'],
  ['chat: tools null', () => ai.chat(chat({ tools: null })), 'ERR_INVALID_ARGUMENT'],
  ['chat: signal not a signal', () => ai.chat(chat({ signal: {} })), 'ERR_INVALID_ARGUMENT'],
  ['chat: headers null', () => ai.chat(chat({ headers: null })), 'ERR_INVALID_ARGUMENT'],
  ['chat: cache null', () => ai.chat(chat({ cache: null })), 'ERR_INVALID_ARGUMENT'],
  ['chat: cache unknown name', () => ai.chat(chat({ cache: { ttl: 5 } })), 'ERR_INVALID_ARGUMENT'],
  ['chat: cache.ttlMs huge', () => ai.chat(chat({ cache: { ttlMs: HUGE } })), 'ERR_INVALID_ARGUMENT'],
  ['chat: priority unknown', () => ai.chat(chat({ priority: 'urgent' })), 'ERR_INVALID_ARGUMENT'],
  ['chat: unknown model', () => ai.chat(chat({ model: 'nobody/m' })), 'ERR_INVALID_ARGUMENT'],
  ['stream(null)', () => ai.stream(null as never), 'ERR_INVALID_ARGUMENT'],
  ['stream: unknown field', () => ai.stream(chat({ stream: true })), 'ERR_INVALID_ARGUMENT'],
  ['stream: topP huge', () => ai.stream(chat({ topP: HUGE })), 'ERR_INVALID_ARGUMENT'],

  // embed
  ['embed(null)', () => ai.embed(null as never), 'ERR_INVALID_ARGUMENT'],
  ['embed: unknown field', () => ai.embed(embed({ dimension: 8 })), 'ERR_INVALID_ARGUMENT'],
  ['embed: input null', () => ai.embed(embed({ input: null })), 'ERR_INVALID_ARGUMENT'],
  ['embed: dimensions NaN', () => ai.embed(embed({ dimensions: Number.NaN })), 'ERR_INVALID_ARGUMENT'],
  ['embed: dimensions negative', () => ai.embed(embed({ dimensions: -1 })), 'ERR_INVALID_ARGUMENT'],
  ['embed: dimensions huge', () => ai.embed(embed({ dimensions: HUGE })), 'ERR_INVALID_ARGUMENT'],

  // session() and send()
  ['session()', () => ai.session(undefined as never, undefined as never), 'ERR_INVALID_ARGUMENT'],
  ["session('id', null)", () => ai.session('id', null as never), 'ERR_INVALID_ARGUMENT'],
  ["session(null, { model })", () => ai.session(null as never, { model: 'p/m' }), 'ERR_INVALID_ARGUMENT'],
  ['session: unknown option name', () => ai.session('id', { model: 'p/m', systemPrompt: 'x' } as never), 'ERR_INVALID_ARGUMENT'],
  ['session: maxContextTokens NaN', () => ai.session('id', { model: 'p/m', maxContextTokens: Number.NaN }), 'ERR_INVALID_ARGUMENT'],
  ['session: maxContextTokens huge', () => ai.session('id', { model: 'p/m', maxContextTokens: HUGE }), 'ERR_INVALID_ARGUMENT'],
  ['send(null)', () => ai.session('s1', { model: 'p/m' }).send(null as never), 'ERR_INVALID_ARGUMENT'],
  ["send('hi', null)", () => ai.session('s1', { model: 'p/m' }).send('hi', null as never), 'ERR_INVALID_ARGUMENT'],
  ["send('hi', { maxTokens: 'many' })", () => ai.session('s1', { model: 'p/m' }).send('hi', { maxTokens: 'many' } as never), 'ERR_INVALID_ARGUMENT'],
  ["send('hi', unknown name)", () => ai.session('s1', { model: 'p/m' }).send('hi', { max_tokens: 5 } as never), 'ERR_INVALID_ARGUMENT'],

  // models()
  ['models(null)', () => ai.models(null as never), 'ERR_INVALID_ARGUMENT'],
  ["models('p', null)", () => ai.models('p', null as never), 'ERR_INVALID_ARGUMENT'],
  ["models('p', { signal: 5 })", () => ai.models('p', { signal: 5 } as never), 'ERR_INVALID_ARGUMENT'],

  // after close(); close() again is fine
  ['chat after close', () => closed.chat(chat({})), 'ERR_AI_CLOSED'],
  ['stream after close', () => closed.stream(chat({})), 'ERR_AI_CLOSED'],
  ['embed after close', () => closed.embed(embed({})), 'ERR_AI_CLOSED'],
  ['session after close', () => closed.session('id', { model: 'p/m' }), 'ERR_AI_CLOSED'],
  ['models after close', () => closed.models('p'), 'ERR_AI_CLOSED'],
  ['close twice', () => closed.close(), 'no error'],
  ['stats after close', () => closed.stats(), 'no error'],
];

describe('AIClient: bad input is ERR_INVALID_ARGUMENT, never a TypeError', () => {
  test.each(rows)('%s', async (_what, call, code) => {
    expect(await codeOf(call)).toBe(code);
  });
});
