// Keys never leak; redirects are never followed; options and requests are validated;
// close() ends the client.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AIClient } from '../../lib/ai/client/index.js';
import { UpstreamSimulator } from '../../lib/ai/simulator/index.js';
import { KEY, PROVIDERS, TARGETS, client, drain, everything, hello, providers, rawServer, rejection } from './client-fixtures.js';

let sim: UpstreamSimulator;
let url: string;

beforeAll(async () => {
  sim = new UpstreamSimulator({ apiKey: KEY, tokens: 6 });
  url = (await sim.listen(0)).url;
});
afterAll(() => sim.close());

describe('key leak', () => {
  test('the key appears in no error message, stack, field or cause, whatever fails (RELIABILITY: keys forced into failures)', async () => {
    // The echo upstream quotes the Authorization header and the key header back in its
    // error text, as some proxies do, and answers 401 with part of the key, as OpenAI does.
    const echo = await rawServer((req, res) => {
      const auth = String(req.headers.authorization ?? req.headers['x-api-key'] ?? '');
      const status = req.url?.includes('/messages') ? 529 : 401;
      res.writeHead(status, { 'content-type': 'application/json', 'x-echo': auth.replace(/^Bearer /, '') });
      res.end(JSON.stringify({ error: { message: `Incorrect API key provided: ${auth.slice(7, 18)}***; full: ${auth}`, type: 'invalid_request_error', code: 'invalid_api_key' } }));
    });
    const redirect = await rawServer((_req, res) => {
      res.writeHead(307, { location: `http://169.254.169.254/latest/meta-data?key=${KEY}` });
      res.end();
    });
    const errors: unknown[] = [];
    const collect = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (err) {
        errors.push(err);
      }
    };
    const ai = client(url, { retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 }, timeouts: { firstTokenMs: 100, idleMs: 100, requestMs: 300 } });
    const others = new AIClient({
      providers: [
        { name: 'echo', kind: 'openai', baseURL: echo.url, apiKey: KEY },
        { name: 'echoa', kind: 'anthropic', baseURL: echo.url, apiKey: KEY },
        { name: 'redir', kind: 'openai', baseURL: redirect.url, apiKey: KEY },
        { name: 'down', kind: 'openai', baseURL: 'http://127.0.0.1:1', apiKey: KEY },
        { name: 'wrong', kind: 'anthropic', baseURL: url, apiKey: `${KEY}-not-this-one` },
      ],
      retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 },
    });
    try {
      for (const name of PROVIDERS) {
        const model = TARGETS[name];
        for (const fault of ['429', 'quota', 'billing', '401', '500', '502', '503', '529']) {
          await collect(ai.chat(hello(model, { headers: { 'x-sim-fault': fault, 'x-sim-retry-after': '0' } })));
        }
        for (const fault of ['midstream-error', 'truncate', 'reset', 'stall']) {
          await collect(ai.chat(hello(model, { headers: { 'x-sim-fault': fault } })));
          const { error } = await drain(ai.stream(hello(model, { headers: { 'x-sim-fault': fault, 'x-sim-fault-after': '1' } })));
          errors.push(error);
        }
        await collect(ai.chat(hello(model, { headers: { 'x-sim-fault': 'bogus' } })));
      }
      for (const target of ['echo/m', 'echoa/m', 'redir/m', 'down/m', 'wrong/claude-sonnet-4']) {
        await collect(others.chat(hello(target)));
        errors.push((await drain(others.stream(hello(target)))).error);
      }
      await collect(others.embed({ model: 'echo/m', input: 'x' }));
      await collect(others.models('echo'));
      // Validation errors must not quote a key either.
      await collect(Promise.resolve().then(() => new AIClient({ providers: [{ name: 'x', kind: 'openai', apiKey: `${KEY}\n` }] })));
      await collect(Promise.resolve().then(() => new AIClient({ providers: [{ name: 'x', kind: 'openai', baseURL: `http://user:${KEY}@h` }] })));
      await collect(ai.chat(hello(TARGETS.openai, { headers: { authorization: `Bearer ${KEY}` } })));

      expect(errors.length).toBeGreaterThan(60);
      for (const err of errors) {
        expect(err).toBeDefined();
        const text = everything(err);
        expect(text).not.toContain('SECRET123');
        expect(text).not.toContain(KEY.slice(0, 12));
      }
      // The echo's message survived, redacted.
      const echoed = errors.find((e) => String((e as Error).message).includes('Incorrect API key')) as Error;
      expect(echoed.message).toContain('[REDACTED]');
      const stats = JSON.stringify(ai.stats()) + JSON.stringify(others.stats());
      expect(stats).not.toContain('SECRET123');
    } finally {
      await ai.close();
      await others.close();
      await echo.close();
      await redirect.close();
    }
  });
});

describe('redirects', () => {
  test('a 3xx is an upstream error, never followed, never retried', async () => {
    const target = await rawServer((_req, res) => res.end('{}'));
    const redirect = await rawServer((_req, res) => {
      res.writeHead(302, { location: `${target.url}/v1/chat/completions` });
      res.end();
    });
    const ai = new AIClient({ providers: [{ name: 'r', kind: 'openai', baseURL: redirect.url, apiKey: KEY }] });
    try {
      const err = await rejection(ai.chat(hello('r/m')));
      expect(err.code).toBe('ERR_AI_UPSTREAM');
      expect(err.status).toBe(302);
      expect(err.attempts).toBe(1);
      expect(err.message).not.toContain(target.url);
      expect(redirect.requests).toHaveLength(1);
      expect(target.requests).toHaveLength(0);
    } finally {
      await ai.close();
      await redirect.close();
      await target.close();
    }
  });

  test('the upstream comes from configuration only: request fields cannot pick it', async () => {
    const raw = await rawServer((_req, res) => res.end('{}'));
    const ai = client(url);
    try {
      for (const field of ['baseURL', 'api_base', 'apiKey', 'host']) {
        const req = { ...hello(TARGETS.openai), [field]: field === 'apiKey' ? 'other' : raw.url } as never;
        expect((await rejection(ai.chat(req))).code).toBe('ERR_INVALID_ARGUMENT');
        expect(() => ai.stream(req)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
      }
      expect(raw.requests).toHaveLength(0);
    } finally {
      await ai.close();
      await raw.close();
    }
  });
});

describe('maxResponseSize', () => {
  test('a body or a stream past the limit is ERR_AI_UPSTREAM, not retried', async () => {
    const big = 'x'.repeat(50_000);
    const raw = await rawServer((_req, res, body) => {
      if (JSON.parse(body).stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (let i = 0; i < 20; i++) res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: big.slice(0, 5000) } }] })}\n\n`);
        res.end('data: [DONE]\n\n');
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: big } }] }));
      }
    });
    const ai = new AIClient({ providers: [{ name: 'big', kind: 'openai', baseURL: raw.url }], maxResponseSize: 20_000 });
    try {
      const err = await rejection(ai.chat(hello('big/m')));
      expect(err.code).toBe('ERR_AI_UPSTREAM');
      expect(err.failure).toBe('too-large');
      expect(err.attempts).toBe(1);
      const { error } = await drain(ai.stream(hello('big/m')));
      expect(error?.code).toBe('ERR_AI_UPSTREAM');
      expect(error?.failure).toBe('too-large');
      expect(raw.requests).toHaveLength(2);
    } finally {
      await ai.close();
      await raw.close();
    }
  });
});

describe('validation', () => {
  // Built at collection time, before the simulator listens: no request is made.
  const base = () => ({ providers: providers('http://127.0.0.1:9') });
  test.each([
    ['providers', { providers: [] }],
    ['providers[0].kind', { providers: [{ name: 'a', kind: 'gemini' }] }],
    ['providers[0].name', { providers: [{ name: 'a/b', kind: 'openai' }] }],
    ['providers[1].name', { providers: [{ name: 'a', kind: 'openai' }, { name: 'a', kind: 'ollama' }] }],
    ['providers[0].baseURL', { providers: [{ name: 'a', kind: 'openai', baseURL: 'ftp://x' }] }],
    ['providers[0].connections', { providers: [{ name: 'a', kind: 'openai', connections: 0 }] }],
    ['providers[0].headers', { providers: [{ name: 'a', kind: 'openai', headers: { authorization: 'x' } }] }],
    ['models.fast', { ...base(), models: { fast: { targets: ['nobody/x'] } } }],
    ['models.fast.strategy', { ...base(), models: { fast: { strategy: 'random', targets: [TARGETS.openai] } } }],
    ['models.fast.hedgeAfterMs', { ...base(), models: { fast: { targets: [TARGETS.openai], hedgeAfterMs: -1 } } }],
    ['models.fast.targets[0].weight', { ...base(), models: { fast: { strategy: 'weighted', targets: [{ target: TARGETS.openai, weight: -1 }] } } }],
    ['retry.attempts', { ...base(), retry: { attempts: 0 } }],
    ['retry.minDelayMs', { ...base(), retry: { minDelayMs: Number.NaN } }],
    ['retry.maxDelayMs', { ...base(), retry: { minDelayMs: 10, maxDelayMs: 5 } }],
    ['timeouts.idleMs', { ...base(), timeouts: { idleMs: -1 } }],
    ['prices', { ...base(), prices: { nokey: { inputPerMTok: 1, outputPerMTok: 1 } } }],
    ['breaker.failureRate', { ...base(), breaker: { failureRate: 2 } }],
    ['limits.openai.rpm', { ...base(), limits: { openai: { rpm: 0 } } }],
    ['cache.maxEntries', { ...base(), cache: { maxEntries: 1.5 } }],
    ['store.redis', { ...base(), store: { redis: 1 } }],
    ['metrics', { ...base(), metrics: 5 }],
  ])('bad %s is ERR_INVALID_ARGUMENT naming it', (name, opts) => {
    let caught: any;
    try {
      new AIClient(opts as never);
    } catch (err) {
      caught = err;
    }
    expect(caught?.code).toBe('ERR_INVALID_ARGUMENT');
    expect(caught.message).toContain(name.replace(/\[\d+\]\.name$/, ''));
  });

  test('resilience options are validated and kept; a store connects only when used', () => {
    const ai = new AIClient({ ...base(), breaker: { failureRate: 0.5 }, limits: { openai: { rpm: 10 } }, cache: { ttlMs: 1000 }, store: { redis: 'redis://x' } });
    expect(ai.resilience.breaker).toEqual({ failureRate: 0.5 });
    return ai.close();
  });

  test('metrics: a sink with counter(), gauge() and histogram() is accepted; anything else names the option', () => {
    const noop = { inc() {}, set() {}, observe() {} };
    const metrics = { counter: () => noop, gauge: () => noop, histogram: () => noop };
    const ai = new AIClient({ ...base(), metrics });
    expect(ai.stats().metrics).toEqual({ errors: 0 });
    let caught: any;
    try {
      new AIClient({ ...base(), metrics: { counter() {}, gauge() {} } as never });
    } catch (err) {
      caught = err;
    }
    expect(caught?.code).toBe('ERR_INVALID_ARGUMENT');
    expect(caught.message).toContain('metrics');
    return ai.close();
  });

  test.each([
    ['model', { messages: [{ role: 'user', content: 'x' }] }],
    ['messages', { model: TARGETS.openai, messages: [] }],
    ['messages[0]', { model: TARGETS.openai, messages: [{ role: 'robot', content: 'x' }] }],
    ['messages[0].tool_call_id', { model: TARGETS.openai, messages: [{ role: 'tool', content: 'x' }] }],
    ['temperature', { ...hello(TARGETS.openai), temperature: Number.NaN }],
    ['maxTokens', { ...hello(TARGETS.openai), maxTokens: -3 }],
    ['tools[0]', { ...hello(TARGETS.openai), tools: [{ type: 'function', function: {} }] }],
    ['toolChoice', { ...hello(TARGETS.openai), toolChoice: 'always' }],
    ['responseFormat', { ...hello(TARGETS.openai), responseFormat: { type: 'yaml' } }],
    ['signal', { ...hello(TARGETS.openai), signal: {} }],
    ['headers', { ...hello(TARGETS.openai), headers: { 'x-api-key': 'k' } }],
  ])('bad request %s is ERR_INVALID_ARGUMENT, for chat (a rejection) and stream (a throw at the call)', async (name, req) => {
    const ai = client(url);
    try {
      const a = await rejection(ai.chat(req as never));
      expect(a.code).toBe('ERR_INVALID_ARGUMENT');
      expect(a.message).toContain(name);
      let caught: any;
      try {
        ai.stream(req as never);
      } catch (err) {
        caught = err;
      }
      expect(caught?.code).toBe('ERR_INVALID_ARGUMENT');
      expect(caught.message).toContain(name);
    } finally {
      await ai.close();
    }
  });
});

test('close() closes the pools; later calls are ERR_AI_CLOSED; close is idempotent', async () => {
  const ai = client(url);
  await ai.chat(hello(TARGETS.openai));
  expect(ai.stats().pools[url].connected).toBeGreaterThan(0);
  await ai.close();
  await ai.close();
  expect(ai.stats().pools).toEqual({});
  const err = await rejection(Promise.resolve().then(() => ai.chat(hello(TARGETS.openai))));
  expect(err.code).toBe('ERR_AI_CLOSED');
});
