// `myelin simulate`: flag parsing, refusal of bad values, a real run answering requests
// and a clean stop.
import { describe, expect, it } from 'vitest';
import { parseSimulateArgs, simulateCommand } from '../../lib/cli/simulate.js';
import { call, json } from './sim-client.js';

function sink() {
  let text = '';
  return {
    write(s: string) {
      text += s;
      return true;
    },
    get text() {
      return text;
    },
  };
}

describe('myelin simulate', () => {
  it('parses the flags of shared/API.md and the rest, in --flag value and --flag=value forms', () => {
    const p = parseSimulateArgs([
      '--port', '9200', '--latency-ms=200', '--tokens-per-s', '80', '--error-rate', '0.01', '--rpm=600',
      '--jitter-ms', '5', '--seed', '3', '--tokens', '20', '--models', 'a, b', '--retry-after-format', 'date',
      '--host', '0.0.0.0', '--quiet', '--tpm', '5000', '--embedding-dims', '8', '--max-body-bytes', '1024', '--loading-ms', '10',
    ]);
    expect(p.port).toBe(9200);
    expect(p.host).toBe('0.0.0.0');
    expect(p.quiet).toBe(true);
    expect(p.options).toEqual({
      latencyMs: 200,
      tokensPerS: 80,
      errorRate: 0.01,
      rpm: 600,
      jitterMs: 5,
      seed: 3,
      tokens: 20,
      models: ['a', 'b'],
      retryAfterFormat: 'date',
      tpm: 5000,
      embeddingDims: 8,
      maxBodyBytes: 1024,
      loadingMs: 10,
    });
    expect(parseSimulateArgs([]).port).toBe(9100);
  });

  it('refuses bad values, unknown flags and missing values with exit code 2 and a clear message', async () => {
    for (const [args, msg] of [
      [['--latency-ms', '-5'], /--latency-ms expects a non-negative number, got '-5'/],
      [['--latency-ms', 'NaN'], /--latency-ms expects a non-negative number/],
      [['--tokens-per-s', 'fast'], /--tokens-per-s expects/],
      [['--error-rate', '1.5'], /--error-rate expects a number in \[0, 1\]/],
      [['--error-rate', 'NaN'], /--error-rate expects/],
      [['--rpm', '2.5'], /--rpm expects a non-negative integer/],
      [['--port', '70000'], /--port expects an integer in \[0, 65535\]/],
      [['--port'], /--port expects a value/],
      [['--frobnicate'], /unknown flag '--frobnicate'/],
      [['extra'], /unknown argument 'extra'/],
      [['--retry-after-format', 'weeks'], /seconds or date/],
      [['--api-key-env', 'MYELIN_TEST_SURELY_UNSET_VAR'], /MYELIN_TEST_SURELY_UNSET_VAR is empty or unset/],
    ] as Array<[string[], RegExp]>) {
      const err = sink();
      const out = sink();
      expect(await simulateCommand(args, { stderr: err, stdout: out }), args.join(' ')).toBe(2);
      expect(err.text).toMatch(msg);
      expect(err.text).toContain('usage: myelin simulate');
      expect(out.text).toBe('');
    }
  });

  it('prints help with exit code 0', async () => {
    const out = sink();
    expect(await simulateCommand(['--help'], { stdout: out })).toBe(0);
    expect(out.text).toContain('--tokens-per-s');
  });

  it('runs: prints the URL and the endpoints, serves, logs requests and stops cleanly on the signal', async () => {
    const out = sink();
    const ac = new AbortController();
    let url = '';
    const exit = manualResolvers<number>();
    const listening = new Promise<void>((resolve) => {
      void simulateCommand(['--port', '0', '--seed', '5', '--tokens', '4'], {
        stdout: out,
        stderr: sink(),
        signal: ac.signal,
        onListening: (u) => {
          url = u;
          resolve();
        },
      }).then((code) => exit.resolve(code));
    });
    await listening;
    expect(out.text).toContain(`listening on ${url}`);
    expect(out.text).toContain('POST /v1/chat/completions');
    expect(out.text).toContain('POST /v1/messages');
    expect(out.text).toContain('POST /api/chat');
    expect(out.text).toContain('x-sim-fault');
    const r = await json(url, '/v1/chat/completions', { body: { model: 'm', messages: [{ role: 'user', content: 'x' }] } });
    expect(r.body.usage.completion_tokens).toBe(4);
    expect((await call(url, '/api/tags')).status).toBe(200);
    ac.abort();
    expect(await exit.promise).toBe(0);
    expect(out.text).toMatch(/POST \/v1\/chat\/completions 200 \d+ms/);
    expect(out.text).toContain('closed after 2 requests');
    await expect(call(url, '/api/tags')).rejects.toThrow();
  });

  it('reports a port in use with exit code 1', async () => {
    const ac = new AbortController();
    let url = '';
    const first = simulateCommand(['--port', '0', '--quiet'], {
      stdout: sink(),
      signal: ac.signal,
      onListening: (u) => {
        url = u;
      },
    });
    while (url === '') await new Promise((r) => setTimeout(r, 5));
    const err = sink();
    expect(await simulateCommand(['--port', new URL(url).port, '--quiet'], { stdout: sink(), stderr: err })).toBe(1);
    expect(err.text).toMatch(/cannot listen/);
    ac.abort();
    expect(await first).toBe(0);
  });
});

function manualResolvers<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
