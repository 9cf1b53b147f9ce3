// `myelin serve` configuration and provider discovery: the config file's schema and its
// messages, env overrides and their precedence, secrets kept out of messages, and the
// three ways to get an AI provider (configured, a local OpenAI-compatible server, the
// built-in simulator), each checked with a real AIClient call.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AIClient } from '../lib/ai/client/ai-client.js';
import { UpstreamSimulator } from '../lib/ai/simulator/index.js';
import { type Env, loadServeConfig, ollamaURLFrom, parseClusterEntry, parseServeConfig, readServeConfigFile, resolveAISection } from '../lib/cli/serve-config.js';
import { discoverProviders, type Discovered } from '../lib/cli/serve-providers.js';
import { MyelinError } from '../lib/errors.js';

/** The example of the README section. */
const EXAMPLE = {
  $schema: './node_modules/myelin/serve.schema.json',
  port: 8080,
  host: '127.0.0.1',
  ioThreads: 2,
  io: 'auto',
  maxPayloadBytes: 1048576,
  maxConnections: 20000,
  auth: { tokens: ['change-me'] },
  bus: { capacity: 65536, overflow: 'wait' },
  ai: {
    providers: [
      { name: 'openai', kind: 'openai', apiKeyEnv: 'OPENAI_API_KEY' },
      { name: 'local', kind: 'openai', baseURL: 'http://127.0.0.1:11434/v1' },
      { name: 'claude', kind: 'anthropic', apiKeyEnv: 'ANTHROPIC_API_KEY', defaultMaxTokens: 2048 },
    ],
    models: {
      default: { strategy: 'fallback', targets: ['local/llama3.2', 'openai/gpt-4o-mini'] },
      smart: { strategy: 'weighted', targets: [{ target: 'openai/gpt-4o', weight: 2 }, { target: 'claude/claude-sonnet-4-0', weight: 1 }] },
      quick: 'openai/gpt-4o-mini',
    },
    retry: { attempts: 3, minDelayMs: 200, maxDelayMs: 8000, deadlineMs: 60000 },
    breaker: { failureRate: 0.5, minRequests: 20, windowMs: 30000, openMs: 15000 },
    limits: { openai: { rpm: 3000, tpm: 1000000 } },
    cache: { ttlMs: 600000, maxEntries: 10000 },
    timeouts: { requestMs: 60000, firstTokenMs: 20000, idleMs: 15000 },
  },
  simulator: { latencyMs: 0, tokensPerS: 80 },
};

const tmp = mkdtempSync(join(tmpdir(), 'myelin-serve-config-'));
let n = 0;
/** A fresh directory, holding `config` as myelin.config.json when given (text or a value). */
function dirWith(config?: unknown): string {
  const dir = join(tmp, String(n++));
  mkdirSync(dir);
  if (config !== undefined) writeFileSync(join(dir, 'myelin.config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}

function configError(fn: () => unknown): MyelinError & { issues: Array<{ path: string; message: string }> } {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected ERR_INVALID_ARGUMENT').toBeInstanceOf(MyelinError);
  expect((caught as MyelinError).code).toBe('ERR_INVALID_ARGUMENT');
  return caught as MyelinError & { issues: Array<{ path: string; message: string }> };
}

/** The `path: message` lines of a config error (the title line dropped). */
function lines(err: Error): string[] {
  return err.message.split('\n').slice(1);
}

const KEYS = { OPENAI_API_KEY: 'sk-test-openai-0123456789', ANTHROPIC_API_KEY: 'sk-ant-test-0123456789' };

describe('serve config: the schema', () => {
  it('accepts the example config, and an empty one', () => {
    expect(parseServeConfig(EXAMPLE)).toEqual(EXAMPLE);
    expect(parseServeConfig({})).toEqual({});
  });

  it('rejects each bad field with a line naming its path and what was expected', () => {
    const cases: Array<[unknown, string]> = [
      [{ port: '80a' }, 'port: expected an integer from 0 to 65535, got "80a"'],
      [{ port: 65536 }, 'port: expected an integer from 0 to 65535, got 65536'],
      [{ port: -1 }, 'port: expected an integer from 0 to 65535, got -1'],
      [{ port: 80.5 }, 'port: expected an integer from 0 to 65535, got 80.5'],
      [{ port: null }, 'port: expected an integer from 0 to 65535, got null'],
      [{ port: 2 ** 60 }, `port: expected an integer from 0 to 65535, got ${2 ** 60}`],
      [{ host: '' }, 'host: expected a host name or IP address, got ""'],
      [{ host: 'a b' }, 'host: expected a host name or IP address, got "a b"'],
      [{ ioThreads: 0 }, 'ioThreads: expected an integer from 1 to 1024, got 0'],
      [{ io: 'kqueue' }, "io: expected one of 'auto', 'epoll', 'io_uring', got \"kqueue\""],
      [{ maxPayloadBytes: 0 }, 'maxPayloadBytes: expected an integer from 1 to 2147483647, got 0'],
      [{ maxConnections: 'many' }, 'maxConnections: expected an integer from 1 to 10000000, got "many"'],
      [{ auth: { tokens: 'abc' } }, 'auth.tokens: expected an array of tokens, got "abc"'],
      [{ auth: {} }, 'auth.tokens: required (an array of tokens)'],
      [{ bus: { capacity: 0 } }, 'bus.capacity: expected an integer from 1 to 1073741824, got 0'],
      [{ bus: { overflow: 'block' } }, "bus.overflow: expected one of 'wait', 'reject', 'drop-oldest', 'drop-newest', got \"block\""],
      [{ ai: { providers: {} } }, 'ai.providers: expected an array of providers, got a JSON object'],
      [{ ai: { providers: [{ kind: 'openai' }] } }, "ai.providers[0].name: required (a name of letters, digits, '_', '.' or '-')"],
      [{ ai: { providers: [{ name: 'x', kind: 'gemini' }] } }, "ai.providers[0].kind: expected one of 'openai', 'anthropic', 'ollama', got \"gemini\""],
      [{ ai: { providers: [{ name: 'a b', kind: 'openai' }] } }, "ai.providers[0].name: expected a name of letters, digits, '_', '.' or '-', got \"a b\""],
      [{ ai: { providers: [{ name: 'x', kind: 'openai', baseURL: 'ftp://h' }] } }, 'ai.providers[0].baseURL: expected an absolute http(s) URL without credentials or fragment'],
      [{ ai: { providers: [{ name: 'x', kind: 'openai', connections: 0 }] } }, 'ai.providers[0].connections: expected an integer from 1 to 4096, got 0'],
      [{ ai: { providers: [{ name: 'x', kind: 'openai', apiKeyEnv: 'not a name' }] } }, 'ai.providers[0].apiKeyEnv: expected an environment variable name, got "not a name"'],
      [
        { ai: { providers: [{ name: 'x', kind: 'openai' }, { name: 'x', kind: 'ollama' }] } },
        "ai.providers[1].name: 'x' is used by an earlier provider",
      ],
      [{ ai: { models: { fast: 'gpt-4o' } } }, "ai.models.fast: expected a 'provider/model' string, got \"gpt-4o\""],
      [{ ai: { models: { fast: { targets: [] } } } }, 'ai.models.fast.targets: expected a non-empty array of targets, got an array'],
      [{ ai: { models: { fast: { strategy: 'random', targets: ['a/b'] } } } }, "ai.models.fast.strategy: expected one of 'fallback', 'weighted', 'least-latency', got \"random\""],
      [{ ai: { models: { fast: { targets: [{ target: 'a/b', weight: 0 }] } } } }, 'ai.models.fast.targets[0].weight: expected a number above 0, got 0'],
      [{ ai: { models: { fast: { targets: [5] } } } }, "ai.models.fast.targets[0]: expected a 'provider/model' string or { target, weight }, got 5"],
      [{ ai: { models: { fast: { targets: ['a/b'], hedgeAfterMs: -1 } } } }, 'ai.models.fast.hedgeAfterMs: expected a number from 0 to 2147483647, got -1'],
      [
        { ai: { models: { fast: { targets: [{ target: 'a/b', wieght: 1 }] } } } },
        "ai.models.fast.targets[0].wieght: unknown key; did you mean 'weight'? (known: target, weight)",
      ],
      [{ ai: { cache: { ttlMs: 0 } } }, 'ai.cache.ttlMs: expected a number above 0, got 0'],
      [{ ai: { models: { 'a/b': 'x/y' } } }, `ai.models["a/b"]: invalid key: an alias cannot contain '/' (it would shadow a 'provider/model' target)`],
      [{ ai: { retry: { attempts: 0 } } }, 'ai.retry.attempts: expected an integer from 1 to 100, got 0'],
      [{ ai: { retry: { deadlineMs: 0 } } }, 'ai.retry.deadlineMs: expected a number above 0 and at most 2147483647, got 0'],
      [{ ai: { retry: { minDelayMs: -5 } } }, 'ai.retry.minDelayMs: expected a number from 0 to 2147483647, got -5'],
      [{ ai: { breaker: { failureRate: 1.5 } } }, 'ai.breaker.failureRate: expected a number above 0 and at most 1, got 1.5'],
      [{ ai: { limits: { openai: { rpm: -1 } } } }, 'ai.limits.openai.rpm: expected a number above 0, got -1'],
      [{ ai: { cache: true } }, 'ai.cache: expected false or { ttlMs, maxEntries }, got true'],
      [{ ai: { timeouts: { idleMs: 'soon' } } }, 'ai.timeouts.idleMs: expected a number above 0 and at most 2147483647, got "soon"'],
      [{ simulator: { tokensPerS: -1 } }, 'simulator.tokensPerS: expected a number >= 0, got -1'],
    ];
    for (const [config, line] of cases) {
      const err = configError(() => parseServeConfig(config, 'test.json'));
      expect(err.message.split('\n')[0]).toBe('test.json is not a valid myelin serve config:');
      expect(lines(err), JSON.stringify(config)).toEqual([line]);
      expect(err.issues).toEqual([{ path: line.slice(0, line.indexOf(': ')), message: line.slice(line.indexOf(': ') + 2) }]);
    }
  });

  it('rejects unknown keys at every level, naming the known ones and a near match', () => {
    expect(lines(configError(() => parseServeConfig({ prot: 80 })))).toEqual([
      "prot: unknown key; did you mean 'port'? (known: port, host, ioThreads, io, maxPayloadBytes, maxConnections, auth, bus, ai, cluster, simulator)",
    ]);
    expect(lines(configError(() => parseServeConfig({ ai: { retries: {} } })))[0]).toMatch(/^ai\.retries: unknown key; did you mean 'retry'\? \(known: providers, models, retry,/);
    expect(lines(configError(() => parseServeConfig({ ai: { providers: [{ name: 'x', kind: 'openai', api_key: 'k' }] } })))).toEqual([
      "ai.providers[0].api_key: unknown key; did you mean 'apiKey'? (known: name, kind, baseURL, apiKey, apiKeyEnv, headers, connections, anthropicVersion, defaultMaxTokens)",
    ]);
    expect(lines(configError(() => parseServeConfig({ ai: { models: { f: { targets: ['a/b'], hegdeAfterMs: 1 } } } })))).toEqual([
      "ai.models.f.hegdeAfterMs: unknown key; did you mean 'hedgeAfterMs'? (known: strategy, targets, hedgeAfterMs)",
    ]);
    expect(lines(configError(() => parseServeConfig({ bus: { transport: 'nats' } })))).toEqual([
      'bus.transport: expected { kind: \'nats\', servers } or { kind: \'redis\', url }, got "nats"',
    ]);
  });

  it('bus.transport and cluster: the kind and the engine URL checked here, the rest passed through; env overrides', () => {
    expect(lines(configError(() => parseServeConfig({ bus: { transport: { kind: 'kafka' } } })))).toEqual(["bus.transport.kind: expected one of 'nats', 'redis', got \"kafka\""]);
    // A Redis URL may carry a password: never quoted.
    expect(lines(configError(() => parseServeConfig({ bus: { transport: { kind: 'redis', url: 'http://:secret@x' } } })))).toEqual(['bus.transport.url: expected a redis:// or rediss:// URL']);
    expect(lines(configError(() => parseServeConfig({ bus: { transport: { kind: 'nats', servers: [], stream: 'a b' } }, cluster: { config: 'a b', pollMs: 5 } }))).sort()).toEqual([
      "bus.transport.servers: expected a non-empty array of nats:// URLs",
      "bus.transport.stream: expected a JetStream stream name (letters, digits, '_', '-'), got \"a b\"",
      "cluster.config: expected a name of 1 to 128 letters, digits, '_' or '-', got \"a b\"",
      'cluster.pollMs: expected an integer from 100 to 3600000, got 5',
    ]);
    // Other fields are the bus's to check.
    expect(parseServeConfig({ bus: { transport: { kind: 'nats', servers: 'nats://h:4222', stream: false, ackTimeoutMs: 'x' } } }).bus?.transport).toEqual({
      kind: 'nats', servers: 'nats://h:4222', stream: false, ackTimeoutMs: 'x',
    });
    const cwd = mkdtempSync(join(tmpdir(), 'myelin-cfg-'));
    expect(loadServeConfig({ cwd, env: { MYELIN_BUS_TRANSPORT: 'nats://a:1, nats://b:2', MYELIN_CLUSTER_CONFIG: 'prod-ai' } })).toMatchObject({
      bus: { transport: { kind: 'nats', servers: ['nats://a:1', 'nats://b:2'] } },
      cluster: { config: 'prod-ai' },
    });
    writeFileSync(join(cwd, 'myelin.config.json'), JSON.stringify({ bus: { transport: { kind: 'redis', url: 'redis://old:6379', prefix: 'p1' } } }));
    // The same engine: only the URL changes; the file's other settings stay.
    expect(loadServeConfig({ cwd, env: { MYELIN_BUS_TRANSPORT: 'redis://new:6379' } }).bus.transport).toEqual({ kind: 'redis', url: 'redis://new:6379', prefix: 'p1' });
    expect(loadServeConfig({ cwd, env: { MYELIN_BUS_TRANSPORT: 'nats://n:4222' } }).bus.transport).toEqual({ kind: 'nats', servers: 'nats://n:4222' });
    expect(lines(configError(() => loadServeConfig({ cwd, env: { MYELIN_BUS_TRANSPORT: 'http://:pw@x' } })))).toEqual([
      'MYELIN_BUS_TRANSPORT: expected a nats:// URL (or a comma-separated list of them) or a redis:// URL',
    ]);
  });

  it('a cluster entry: the ai schema, keys from this node\'s environment', () => {
    expect(lines(configError(() => parseClusterEntry({ ai: { models: { a: 'nope' } }, port: 1 }))).sort()).toEqual([
      "ai.models.a: expected a 'provider/model' string, got \"nope\"",
      'port: unknown key (known: ai)',
    ]);
    const entry = parseClusterEntry({ ai: { providers: [{ name: 'p', kind: 'openai', apiKeyEnv: 'P_KEY' }], models: { a: 'p/m' } } });
    expect(resolveAISection(entry.ai, { P_KEY: 'k1' }).ai.providers).toEqual([{ name: 'p', kind: 'openai', apiKey: 'k1' }]);
    expect(lines(configError(() => resolveAISection(entry.ai, {})))).toEqual(['ai.providers[0].apiKeyEnv: environment variable P_KEY is empty or unset']);
  });

  it('lists every problem at once, one per line', () => {
    const err = configError(() => parseServeConfig({ port: '80a', io: 'x', zzz: 1, bus: { capacity: 0 } }));
    expect(lines(err).sort()).toEqual(
      [
        'port: expected an integer from 0 to 65535, got "80a"',
        "io: expected one of 'auto', 'epoll', 'io_uring', got \"x\"",
        'zzz: unknown key (known: port, host, ioThreads, io, maxPayloadBytes, maxConnections, auth, bus, ai, cluster, simulator)',
        'bus.capacity: expected an integer from 1 to 1073741824, got 0',
      ].sort(),
    );
    expect(err.issues).toHaveLength(4);
  });

  it('offers a near key only when one is near', () => {
    expect(lines(configError(() => parseServeConfig({ x: 1 })))[0]).toMatch(/^x: unknown key \(known/);
    expect(lines(configError(() => parseServeConfig({ ai: { timeout: {} } })))[0]).toMatch(/^ai\.timeout: unknown key; did you mean 'timeouts'\?/);
    expect(lines(configError(() => parseServeConfig({ ai: { provider: [] } })))[0]).toMatch(/^ai\.provider: unknown key; did you mean 'providers'\?/);
  });

  it('refuses a config that is not an object', () => {
    for (const v of [[], 'x', 5, null]) expect(lines(configError(() => parseServeConfig(v)))[0]).toMatch(/^\(root\): expected a JSON object, got /);
  });

  it('the example config makes a valid AIClient (the schema is no wider than the client)', async () => {
    const cfg = loadServeConfig({ cwd: dirWith(EXAMPLE), env: KEYS });
    const ai = new AIClient({ providers: cfg.ai.providers, models: cfg.ai.models, retry: cfg.ai.retry, breaker: cfg.ai.breaker, limits: cfg.ai.limits, cache: cfg.ai.cache, timeouts: cfg.ai.timeouts });
    await ai.close();
    expect(cfg.ai.providers.map((p) => p.name)).toEqual(['openai', 'local', 'claude']);
    expect(cfg.ai.providers[0].apiKey).toBe(KEYS.OPENAI_API_KEY);
    expect(cfg.ai.providers[2].apiKey).toBe(KEYS.ANTHROPIC_API_KEY);
    // The keys went to the providers that name them (apiKeyEnv): no second openai or anthropic provider.
    expect(cfg.envUsed).toEqual(['OPENAI_API_KEY', 'ANTHROPIC_API_KEY']);
  });
});

describe('serve config: files', () => {
  it('reads ./myelin.config.json when there is no --config, and --config relative to the working directory', () => {
    expect(loadServeConfig({ cwd: dirWith({ port: 9001 }), env: {} }).port).toBe(9001);
    const dir = dirWith();
    writeFileSync(join(dir, 'other.json'), JSON.stringify({ port: 9002 }));
    const cfg = loadServeConfig({ cwd: dir, env: {}, flags: { config: 'other.json' } });
    expect(cfg.port).toBe(9002);
    expect(cfg.configFile).toBe(join(dir, 'other.json'));
  });

  it('uses the defaults with no file: 127.0.0.1:8080, no auth, the local Ollama URL', () => {
    const cfg = loadServeConfig({ cwd: dirWith(), env: {} });
    expect(cfg).toMatchObject({ port: 8080, host: '127.0.0.1', tokens: [], ollamaURL: 'http://127.0.0.1:11434', configFile: undefined, envUsed: [] });
    expect(cfg.ai.providers).toEqual([]);
  });

  it('reports a missing file, and invalid JSON by line and column without quoting the text', () => {
    const dir = dirWith();
    expect(configError(() => loadServeConfig({ cwd: dir, env: {}, flags: { config: 'nope.json' } })).message).toBe(`config file ${join(dir, 'nope.json')}: not found`);
    const secretText = '{\n  "port": 8080,\n  "auth": { "tokens": ["tok-SECRET-1"] }\n  "host": "x"\n}';
    const file = join(dirWith(secretText), 'myelin.config.json');
    const err = configError(() => readServeConfigFile(file));
    expect(err.message).toBe(`config file ${file}: not valid JSON at line 4, column 3`);
    expect(err.message).not.toContain('SECRET');
    expect(configError(() => readServeConfigFile(join(dirWith('{"port": 80'), 'myelin.config.json'))).message).toMatch(/not valid JSON/);
    // A byte-order mark is not an error.
    expect(readServeConfigFile(join(dirWith('\ufeff{"port": 81}'), 'myelin.config.json'))).toEqual({ port: 81 });
  });

  it('names the file in the title of a schema error', () => {
    const dir = dirWith({ port: 'x' });
    expect(configError(() => loadServeConfig({ cwd: dir, env: {} })).message.split('\n')[0]).toBe(`config file ${join(dir, 'myelin.config.json')} is not a valid myelin serve config:`);
  });
});

describe('serve config: environment and flags', () => {
  it('flags beat env, env beats the file, the file beats the defaults', () => {
    const cwd = dirWith({ port: 9000, host: '127.0.0.2', io: 'epoll', ioThreads: 1, auth: { tokens: ['file-token'] } });
    const env: Env = { MYELIN_PORT: '9001', MYELIN_HOST: '127.0.0.3', MYELIN_IO: 'io_uring', MYELIN_IO_THREADS: '3', MYELIN_TOKENS: 'env-a, env-b' };
    expect(loadServeConfig({ cwd, env, flags: { port: '9002', host: '127.0.0.4' } })).toMatchObject({ port: 9002, host: '127.0.0.4' });
    expect(loadServeConfig({ cwd, env })).toMatchObject({ port: 9001, host: '127.0.0.3', io: 'io_uring', ioThreads: 3, tokens: ['env-a', 'env-b'] });
    expect(loadServeConfig({ cwd, env: {} })).toMatchObject({ port: 9000, host: '127.0.0.2', io: 'epoll', ioThreads: 1, tokens: ['file-token'] });
    expect(loadServeConfig({ cwd: dirWith(), env: {} })).toMatchObject({ port: 8080, host: '127.0.0.1' });
    // An empty variable counts as unset (compose files often write NAME= for "none").
    expect(loadServeConfig({ cwd, env: { MYELIN_PORT: '' } }).port).toBe(9000);
    expect(loadServeConfig({ cwd, env: { MYELIN_PORT: '0' } }).port).toBe(0);
  });

  it('refuses bad env values and flags, naming the variable or flag', () => {
    const cases: Array<[Env, Record<string, string>, string]> = [
      [{ MYELIN_PORT: '80a' }, {}, 'MYELIN_PORT: expected an integer from 0 to 65535, got "80a"'],
      [{ MYELIN_PORT: '70000' }, {}, 'MYELIN_PORT: expected an integer from 0 to 65535, got 70000'],
      [{ MYELIN_PORT: '-1' }, {}, 'MYELIN_PORT: expected an integer from 0 to 65535, got "-1"'],
      [{ MYELIN_HOST: 'bad host' }, {}, 'MYELIN_HOST: expected a host name or IP address, got "bad host"'],
      [{ MYELIN_IO: 'kqueue' }, {}, "MYELIN_IO: expected one of 'auto', 'epoll', 'io_uring', got \"kqueue\""],
      [{ MYELIN_IO_THREADS: '0' }, {}, 'MYELIN_IO_THREADS: expected an integer from 1 to 1024, got 0'],
      [{ MYELIN_IO_THREADS: 'two' }, {}, 'MYELIN_IO_THREADS: expected an integer from 1 to 1024, got "two"'],
      [{ MYELIN_TOKENS: ' , ,' }, {}, 'MYELIN_TOKENS: expected a comma-separated list of tokens'],
      [{ OPENAI_BASE_URL: 'ftp://example.com' }, {}, 'OPENAI_BASE_URL: expected an absolute http(s) URL without credentials or fragment'],
      [{ ANTHROPIC_BASE_URL: 'not a url' }, {}, 'ANTHROPIC_BASE_URL: expected an absolute http(s) URL without credentials or fragment'],
      [{}, { port: '80a' }, '--port: expected an integer from 0 to 65535, got "80a"'],
      [{}, { port: '1e3' }, '--port: expected an integer from 0 to 65535, got "1e3"'],
      [{}, { host: 'a/b' }, '--host: expected a host name or IP address, got "a/b"'],
    ];
    for (const [env, flags, line] of cases) {
      const err = configError(() => loadServeConfig({ cwd: dirWith(), env, flags }));
      expect(err.message.split('\n')[0]).toBe('myelin serve: invalid settings from the environment or flags:');
      expect(lines(err), line).toEqual([line]);
    }
    // Every bad one at once.
    expect(lines(configError(() => loadServeConfig({ cwd: dirWith(), env: { MYELIN_PORT: 'x', MYELIN_IO: 'y' }, flags: { host: ' ' } })))).toHaveLength(3);
  });

  it('OPENAI_API_KEY and OPENAI_BASE_URL add a provider named openai, or fill in the file one; ANTHROPIC_API_KEY adds anthropic', () => {
    const none = dirWith();
    expect(loadServeConfig({ cwd: none, env: { OPENAI_API_KEY: 'sk-1' } }).ai.providers).toEqual([{ name: 'openai', kind: 'openai', apiKey: 'sk-1' }]);
    expect(loadServeConfig({ cwd: none, env: { OPENAI_API_KEY: 'sk-1', OPENAI_BASE_URL: 'http://127.0.0.1:8000/v1' } }).ai.providers).toEqual([
      { name: 'openai', kind: 'openai', apiKey: 'sk-1', baseURL: 'http://127.0.0.1:8000/v1' },
    ]);
    // A keyless OpenAI-compatible server (vLLM, llama.cpp) by its URL alone.
    expect(loadServeConfig({ cwd: none, env: { OPENAI_BASE_URL: 'http://127.0.0.1:8000/v1' } }).ai.providers).toEqual([
      { name: 'openai', kind: 'openai', baseURL: 'http://127.0.0.1:8000/v1' },
    ]);
    expect(loadServeConfig({ cwd: none, env: { ANTHROPIC_API_KEY: 'sk-ant-1' } }).ai.providers).toEqual([{ name: 'anthropic', kind: 'anthropic', apiKey: 'sk-ant-1' }]);

    const file = dirWith({ ai: { providers: [{ name: 'openai', kind: 'openai', baseURL: 'https://proxy.example/v1', apiKey: 'sk-file', connections: 4 }] } });
    expect(loadServeConfig({ cwd: file, env: { OPENAI_API_KEY: 'sk-env' } }).ai.providers).toEqual([
      { name: 'openai', kind: 'openai', baseURL: 'https://proxy.example/v1', apiKey: 'sk-env', connections: 4 },
    ]);
    expect(loadServeConfig({ cwd: file, env: {} }).ai.providers[0].apiKey).toBe('sk-file');
    const both = loadServeConfig({ cwd: file, env: { ANTHROPIC_API_KEY: 'sk-ant-2' } });
    expect(both.ai.providers.map((p) => p.name)).toEqual(['openai', 'anthropic']);
    expect(both.envUsed).toEqual(['ANTHROPIC_API_KEY']);
  });

  it("resolves a provider's apiKeyEnv, and names the variable when it is unset", () => {
    const cwd = dirWith({ ai: { providers: [{ name: 'corp', kind: 'openai', baseURL: 'https://llm.corp.example/v1', apiKeyEnv: 'CORP_LLM_KEY' }] } });
    const cfg = loadServeConfig({ cwd, env: { CORP_LLM_KEY: 'corp-key-1' } });
    expect(cfg.ai.providers).toEqual([{ name: 'corp', kind: 'openai', baseURL: 'https://llm.corp.example/v1', apiKey: 'corp-key-1' }]);
    expect(cfg.envUsed).toEqual(['CORP_LLM_KEY']);
    expect(lines(configError(() => loadServeConfig({ cwd, env: {} })))).toEqual(['ai.providers[0].apiKeyEnv: environment variable CORP_LLM_KEY is empty or unset']);
  });

  it("OLLAMA_HOST sets the local server's URL in Ollama's own forms, and points a configured ollama provider without a URL", () => {
    expect(ollamaURLFrom('127.0.0.1')).toBe('http://127.0.0.1:11434');
    expect(ollamaURLFrom('0.0.0.0:11500')).toBe('http://127.0.0.1:11500');
    expect(ollamaURLFrom('http://gpu-box:11434')).toBe('http://gpu-box:11434');
    expect(ollamaURLFrom('https://ollama.example')).toBe('https://ollama.example');
    expect(loadServeConfig({ cwd: dirWith(), env: { OLLAMA_HOST: '10.0.0.5:11434' } }).ollamaURL).toBe('http://10.0.0.5:11434');
    const cwd = dirWith({ ai: { providers: [{ name: 'ol', kind: 'ollama' }, { name: 'ol2', kind: 'ollama', baseURL: 'http://other:11434' }] } });
    expect(loadServeConfig({ cwd, env: { OLLAMA_HOST: 'gpu-box' } }).ai.providers).toEqual([
      { name: 'ol', kind: 'ollama', baseURL: 'http://gpu-box:11434' },
      { name: 'ol2', kind: 'ollama', baseURL: 'http://other:11434' },
    ]);
    expect(lines(configError(() => loadServeConfig({ cwd: dirWith(), env: { OLLAMA_HOST: 'ftp://x' } })))).toEqual([
      'OLLAMA_HOST: expected an absolute http(s) URL without credentials or fragment',
    ]);
  });
});

describe('serve config: secrets never appear in messages', () => {
  const SECRET = 'sk-SECRET-do-not-print';
  it('not from the file', () => {
    const bad: unknown[] = [
      { auth: { tokens: [`${SECRET} x`] } },
      { auth: { tokens: [`${SECRET},x`] } },
      { auth: { tokens: [''] } },
      { ai: { providers: [{ name: 'x', kind: 'openai', apiKey: `${SECRET}\n` }] } },
      { ai: { providers: [{ name: 'x', kind: 'openai', apiKey: 42 }] } },
      { ai: { providers: [{ name: 'x', kind: 'openai', headers: { 'x-token': `${SECRET}\r\nx: y` } }] } },
      { ai: { providers: [{ name: 'x', kind: 'openai', baseURL: `https://user:${SECRET}@host/v1` }] } },
      { ai: { providers: [{ name: 'x', kind: 'openai', baseURL: `https://host/v1#${SECRET}` }] } },
    ];
    for (const config of bad) {
      const err = configError(() => parseServeConfig(config));
      expect(err.message, JSON.stringify(config)).not.toContain('SECRET');
      expect(JSON.stringify(err.issues)).not.toContain('SECRET');
      expect(lines(err)).toHaveLength(1);
    }
    expect(lines(configError(() => parseServeConfig(bad[0])))).toEqual(['auth.tokens[0]: expected a non-empty token without spaces, commas or control characters']);
    expect(lines(configError(() => parseServeConfig(bad[3])))).toEqual(['ai.providers[0].apiKey: expected a non-empty key without spaces or control characters']);
  });

  it('not from the environment', () => {
    for (const env of [
      { OPENAI_API_KEY: `${SECRET} x` },
      { ANTHROPIC_API_KEY: `a\u0001${SECRET}` },
      { MYELIN_TOKENS: `good,${SECRET} bad` },
      { OPENAI_BASE_URL: `https://u:${SECRET}@host/v1` },
      { OLLAMA_HOST: `http://u:${SECRET}@host` },
    ]) {
      const err = configError(() => loadServeConfig({ cwd: dirWith(), env }));
      expect(err.message, Object.keys(env)[0]).toContain(Object.keys(env)[0]);
      expect(err.message).not.toContain('SECRET');
    }
    expect(lines(configError(() => loadServeConfig({ cwd: dirWith(), env: { MYELIN_TOKENS: `good,${SECRET} bad` } })))).toEqual([
      'MYELIN_TOKENS (token 2 of 2): expected a non-empty token without spaces, commas or control characters',
    ]);
  });

  it('not in what a valid load reports for the log (variable names only)', () => {
    const cfg = loadServeConfig({ cwd: dirWith(), env: { OPENAI_API_KEY: SECRET, MYELIN_TOKENS: SECRET } });
    expect(cfg.envUsed).toEqual(['MYELIN_TOKENS', 'OPENAI_API_KEY']);
    expect(cfg.envUsed.join(' ')).not.toContain('SECRET');
  });
});

// ---- provider discovery ------------------------------------------------------------------

const hello = (model: string) => ({ model, messages: [{ role: 'user' as const, content: 'hello' }] });

/** A port where nothing listens: bound, then released. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('serve: provider discovery', () => {
  const opened: Array<{ close(): Promise<unknown> }> = [];
  afterEach(async () => {
    for (const o of opened.splice(0).reverse()) await o.close();
  });

  it('(a) configured providers win: no probe, and `default` names each kind\'s usual model', async () => {
    let probes = 0;
    const watcher = createServer((_req, res) => {
      probes++;
      res.end('{}');
    });
    const url = await listen(watcher);
    opened.push({ close: () => new Promise<void>((r) => watcher.close(() => r())) });
    const logs: string[] = [];
    const d = await discoverProviders({
      providers: [
        { name: 'openai', kind: 'openai', apiKey: 'sk-SECRET' },
        { name: 'claude', kind: 'anthropic', apiKey: 'sk-ant-SECRET' },
      ],
      models: { fast: 'openai/gpt-4o-mini' },
      ollamaURL: url,
      log: (l) => logs.push(l),
    });
    expect(probes).toBe(0);
    expect(d.source).toBe('configured');
    expect(d.simulated).toBe(false);
    expect(d.models).toEqual({ default: { strategy: 'fallback', targets: ['openai/gpt-4o-mini', 'claude/claude-sonnet-4-0'] }, fast: 'openai/gpt-4o-mini' });
    expect(logs).toEqual(['AI: providers openai (openai), claude (anthropic)']);
    expect(logs.join('\n')).not.toContain('SECRET');
    // The config's own `default` wins.
    const own = await discoverProviders({ providers: [{ name: 'o', kind: 'ollama' }], models: { default: 'o/qwen3' } });
    expect(own.models).toEqual({ default: 'o/qwen3' });
    await d.close();
  });

  it('(a) configured providers answer through `default` (a real AIClient against the simulator)', async () => {
    const sim = new UpstreamSimulator({ models: ['gpt-4o-mini'] });
    const { url } = await sim.listen(0);
    opened.push(sim);
    const d = await discoverProviders({ providers: [{ name: 'openai', kind: 'openai', baseURL: `${url}/v1`, apiKey: 'sk-x' }] });
    const ai = new AIClient({ providers: d.providers, models: d.models });
    opened.push(ai);
    const r = await ai.chat(hello('default'));
    expect(r.provider).toBe('openai');
    expect(r.model).toBe('gpt-4o-mini');
  });

  it('(b) a local OpenAI-compatible server that answers is used, with its models as aliases', async () => {
    const local = new UpstreamSimulator({ models: ['llama3.2', 'nomic-embed-text', 'hf.co/org/model'] });
    const { url } = await local.listen(0);
    opened.push(local);
    const logs: string[] = [];
    const d = await discoverProviders({ providers: [], ollamaURL: url, log: (l) => logs.push(l), models: { mine: 'local/llama3.2' } });
    expect(d.source).toBe('local');
    expect(d.simulated).toBe(false);
    expect(d.simulator).toBeUndefined();
    expect(d.providers).toEqual([{ name: 'local', kind: 'openai', baseURL: `${url}/v1` }]);
    expect(d.discoveredModels).toEqual(['llama3.2', 'nomic-embed-text', 'hf.co/org/model']);
    // No alias for an id with '/': it is reachable as local/hf.co/org/model.
    expect(d.models).toEqual({ default: 'local/llama3.2', 'llama3.2': 'local/llama3.2', 'nomic-embed-text': 'local/nomic-embed-text', mine: 'local/llama3.2' });
    expect(logs).toEqual([`AI: no provider configured; using the OpenAI-compatible server at ${url}/v1 (models: llama3.2, nomic-embed-text, hf.co/org/model)`]);
    const ai = new AIClient({ providers: d.providers, models: d.models });
    opened.push(ai);
    for (const model of ['default', 'llama3.2', 'local/hf.co/org/model']) {
      const r = await ai.chat(hello(model));
      expect(r.provider, model).toBe('local');
    }
    expect(local.stats().byProvider.openai).toBe(4); // the probe and three chats
  });

  it('(c) nothing there: the built-in simulator starts on a loopback port, said plainly, marked simulated', async () => {
    const port = await deadPort();
    const logs: string[] = [];
    const d = await discoverProviders({ providers: [], ollamaURL: `http://127.0.0.1:${port}`, log: (l) => logs.push(l) });
    opened.push(d);
    expect(d.source).toBe('simulator');
    expect(d.simulated).toBe(true);
    expect(logs).toEqual([`AI: no provider configured and none found at 127.0.0.1:${port}; using the built-in simulator (answers are simulated)`]);
    expect(d.providers).toHaveLength(1);
    expect(d.providers[0]).toMatchObject({ name: 'simulator', kind: 'openai' });
    expect(d.providers[0].baseURL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    expect(d.models.default).toBe('simulator/gpt-4o-mini');
    const ai = new AIClient({ providers: d.providers, models: d.models });
    opened.push(ai);
    for (const model of ['default', 'gpt-4o-mini', 'claude-sonnet-4', 'simulator/llama3.2']) {
      const r = await ai.chat(hello(model));
      expect(r.provider, model).toBe('simulator');
      expect(r.text.length).toBeGreaterThan(0);
    }
    const { vectors } = await ai.embed({ model: 'text-embedding-3-small', input: ['a'] });
    expect(vectors).toHaveLength(1);
    await d.close();
    await d.close(); // idempotent
    await expect(fetch(d.providers[0].baseURL!.replace(/\/v1$/, '/health'))).rejects.toThrow();
  });

  it('(c) a server that does not answer in time, answers non-JSON, or lists no models is not used', async () => {
    const cases: Array<[(req: unknown, res: import('node:http').ServerResponse) => void, RegExp | undefined]> = [
      [() => {}, undefined], // never answers: a slow machine is not a provider; no extra line
      [(_q, res) => res.end('<html>hello</html>'), /^AI: something at 127\.0\.0\.1:\d+ answered, but not with JSON; not using it$/],
      [(_q, res) => res.end('{"models":[]}'), /^AI: something at 127\.0\.0\.1:\d+ answered, but not with an OpenAI model list; not using it$/],
      [(_q, res) => res.writeHead(404).end(), /^AI: something at 127\.0\.0\.1:\d+ answered 404; not using it$/],
      [(_q, res) => res.end('{"object":"list","data":[]}'), /^AI: the server at 127\.0\.0\.1:\d+ lists no models \(with Ollama: ollama pull llama3\.2\)$/],
    ];
    for (const [handler, line] of cases) {
      const server = createServer(handler as never);
      const url = await listen(server);
      const logs: string[] = [];
      const d = await discoverProviders({ providers: [], ollamaURL: url, probeTimeoutMs: 150, log: (l) => logs.push(l) });
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await d.close();
      expect(d.simulated).toBe(true);
      if (line) expect(logs[0]).toMatch(line);
      expect(logs[logs.length - 1]).toMatch(/using the built-in simulator \(answers are simulated\)$/);
      expect(logs).toHaveLength(line ? 2 : 1);
    }
  });
});

describe('serve config: simulator settings reach the simulator', () => {
  let d: Discovered;
  beforeAll(async () => {
    d = await discoverProviders({ providers: [], ollamaURL: `http://127.0.0.1:${await deadPort()}`, simulator: { latencyMs: 120 } });
  });
  afterAll(async () => {
    await d.close();
  });
  it('latencyMs delays the first byte', async () => {
    const t0 = performance.now();
    const res = await fetch(`${d.providers[0].baseURL}/models`);
    await res.text();
    // A lower bound set by the config, not a speed threshold: the simulator waits at least this long.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(115);
  });
});
