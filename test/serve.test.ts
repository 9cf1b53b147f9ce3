// `myelin serve`: flags and usage, the wiring from config to Bus, AIClient and Gateway,
// the banner, the listen-failure message, graceful and forced shutdown; then the real
// command end to end (spawned, real gateway) once the gateway is built.
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type GatewayConstructorOptions, type GatewayLike, type ServeIO, parseServeArgs, serveCommand } from '../lib/cli/serve.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

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

async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** An env with no provider keys, and the local-server probe aimed where nothing listens. */
async function quietEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  return { OLLAMA_HOST: `127.0.0.1:${await deadPort()}`, ...extra };
}

/** Stands in for the Gateway: records what serve gives it and what serve does to it. */
class FakeGateway implements GatewayLike {
  static last: FakeGateway | undefined;
  static listenError: unknown;
  readonly events: string[] = [];
  constructor(readonly options: GatewayConstructorOptions) {
    FakeGateway.last = this;
  }
  async listen() {
    if (FakeGateway.listenError) throw FakeGateway.listenError;
    this.events.push('listen');
    return this.address();
  }
  address() {
    return { host: this.options.host, port: this.options.port === 0 ? 45678 : this.options.port };
  }
  stats() {
    return { io: 'epoll', ioThreads: 2 };
  }
  async close() {
    this.events.push(`close bus.closed=${String((this.options.bus as unknown as { closed?: boolean }).closed)}`);
  }
}

function fakeIO(extra: Partial<ServeIO> = {}) {
  const signals = new EventEmitter();
  const out = sink();
  const err = sink();
  const exits: number[] = [];
  let listening: (info: { url: string }) => void = () => {};
  const ready = new Promise<{ url: string }>((r) => (listening = r));
  const io: ServeIO = {
    stdout: out,
    stderr: err,
    cwd: mkdtempSync(join(tmpdir(), 'myelin-serve-')),
    signals,
    exit: (code) => exits.push(code),
    onListening: (info) => listening(info),
    Gateway: FakeGateway,
    probeTimeoutMs: 100,
    ...extra,
  };
  return { io, signals, out, err, exits, ready };
}

describe('myelin serve: flags', () => {
  it('parses --config, --port and --host in both forms', () => {
    expect(parseServeArgs(['--config', 'a.json', '--port=0', '--host', '::1'])).toEqual({ help: false, config: 'a.json', port: '0', host: '::1' });
    expect(parseServeArgs(['-h']).help).toBe(true);
  });

  it('--help prints the usage with the env variables and precedence, exit 0', async () => {
    const { io, out } = fakeIO();
    expect(await serveCommand(['--help'], io)).toBe(0);
    for (const s of ['--config', '--port', 'MYELIN_PORT', 'MYELIN_TOKENS', 'OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'OLLAMA_HOST', 'precedence']) expect(out.text).toContain(s);
  });

  it('refuses unknown flags and missing values with exit 2 and the usage', async () => {
    for (const [args, msg] of [
      [['--prot', '1'], /unknown flag '--prot'/],
      [['extra'], /unknown argument 'extra'/],
      [['--port'], /--port expects a value/],
      [['--port', '--host', 'x'], /--port expects a value/],
      [['--config='], /--config expects a value/],
    ] as Array<[string[], RegExp]>) {
      const { io, err, out } = fakeIO();
      expect(await serveCommand(args, io), args.join(' ')).toBe(2);
      expect(err.text).toMatch(msg);
      expect(err.text).toContain('usage: myelin serve');
      expect(out.text).toBe('');
    }
  });

  it('a bad config, env value or flag value exits 2 with each problem on its own line, nothing started', async () => {
    const { io, err, out } = fakeIO({ env: { MYELIN_PORT: '80a', MYELIN_IO: 'kqueue' } });
    FakeGateway.last = undefined;
    expect(await serveCommand([], io)).toBe(2);
    expect(err.text).toContain('MYELIN_PORT: expected an integer from 0 to 65535, got "80a"\n');
    expect(err.text).toContain("MYELIN_IO: expected one of 'auto', 'epoll', 'io_uring', got \"kqueue\"\n");
    expect(out.text).toBe('');
    expect(FakeGateway.last).toBeUndefined();

    const bad = fakeIO({ env: {} });
    writeFileSync(join(bad.io.cwd!, 'myelin.config.json'), JSON.stringify({ port: 1, auth: { tokens: ['sk-SECRET x'] } }));
    expect(await serveCommand([], bad.io)).toBe(2);
    expect(bad.err.text).toContain('auth.tokens[0]: expected a non-empty token');
    expect(bad.err.text).not.toContain('SECRET');
  });
});

describe('myelin serve: wiring, banner and shutdown (stand-in gateway)', () => {
  it('builds the gateway from the config, prints the URLs, and closes gracefully on SIGTERM with exit 0', async () => {
    const env = await quietEnv({ MYELIN_TOKENS: 'tok-SECRET-1', MYELIN_IO: 'epoll', MYELIN_IO_THREADS: '2' });
    const { io, signals, out, err, exits, ready } = fakeIO({ env });
    writeFileSync(join(io.cwd!, 'myelin.config.json'), JSON.stringify({ maxPayloadBytes: 65536, maxConnections: 500, bus: { capacity: 1024, overflow: 'reject' } }));
    const done = serveCommand(['--port', '0'], io);
    const { url } = await ready;
    expect(url).toBe('http://127.0.0.1:45678');
    const gw = FakeGateway.last!;
    expect(gw.options).toMatchObject({
      port: 0,
      host: '127.0.0.1',
      auth: { tokens: ['tok-SECRET-1'] },
      maxPayloadBytes: 65536,
      maxConnections: 500,
      io: 'epoll',
      ioThreads: 2,
      simulated: true,
    });
    expect(Object.values(gw.options)).not.toContain(undefined);
    // The bus got the config's settings; the AI client answers through the simulator.
    expect(gw.options.bus.stats().lanes.normal.capacity).toBe(1024);
    expect(() => {
      for (let i = 0; i < 2000; i++) gw.options.bus.publish('x', i);
    }).toThrow(expect.objectContaining({ code: 'ERR_BUS_FULL' })); // overflow: 'reject' from the file
    const r = await gw.options.ai.chat({ model: 'default', messages: [{ role: 'user', content: 'hi' }] });
    expect(r.provider).toBe('simulator');

    expect(out.text).toBe(
      [
        'myelin gateway listening on http://127.0.0.1:45678',
        '  WebSocket   ws://127.0.0.1:45678/ws',
        '  OpenAI API  http://127.0.0.1:45678/v1/chat/completions',
        '  metrics     http://127.0.0.1:45678/metrics',
        '  dashboard   http://127.0.0.1:45678/dashboard',
        '  I/O         epoll, 2 threads',
        '  AI          built-in simulator (answers are simulated)',
        '  auth        bearer token required (except /healthz)',
        '',
      ].join('\n'),
    );
    expect(err.text).toMatch(/myelin serve: AI: no provider configured and none found at 127\.0\.0\.1:\d+; using the built-in simulator \(answers are simulated\)\n/);
    expect(err.text).toContain('myelin serve: environment: MYELIN_IO, MYELIN_IO_THREADS, MYELIN_TOKENS, OLLAMA_HOST\n');

    signals.emit('SIGTERM', 'SIGTERM');
    expect(await done).toBe(0);
    expect(exits).toEqual([]);
    // The gateway closed first, while the bus was still open; then the bus closed.
    expect(gw.events).toEqual(['listen', 'close bus.closed=false']);
    expect((gw.options.bus as unknown as { closed: boolean }).closed).toBe(true);
    await expect(gw.options.ai.chat({ model: 'default', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ code: 'ERR_AI_CLOSED' });
    expect(err.text).toMatch(/SIGTERM: shutting down/);
    expect(err.text).toMatch(/closed\n$/);
    expect(out.text + err.text).not.toContain('SECRET');
    expect(signals.listenerCount('SIGTERM') + signals.listenerCount('SIGINT')).toBe(0);
  });

  it('a second signal while closing exits at once with 130', async () => {
    const { io, signals, exits, ready } = fakeIO({ env: await quietEnv() });
    let release: () => void = () => {};
    class SlowClose extends FakeGateway {
      override close() {
        return new Promise<void>((r) => (release = r));
      }
    }
    const done = serveCommand(['--port', '0'], { ...io, Gateway: SlowClose });
    await ready;
    signals.emit('SIGINT', 'SIGINT');
    await new Promise((r) => setImmediate(r));
    expect(exits).toEqual([]);
    signals.emit('SIGINT', 'SIGINT');
    expect(exits).toEqual([130]);
    release();
    expect(await done).toBe(0);
  });

  it('the address in use: a clear message naming the address and --port, exit 1, everything started is closed', async () => {
    const { io, err, out } = fakeIO({ env: await quietEnv() });
    FakeGateway.listenError = Object.assign(new Error('listen failed: address already in use (EADDRINUSE)'), { code: 'ERR_GATEWAY_LISTEN' });
    try {
      expect(await serveCommand(['--port', '8181'], io)).toBe(1);
    } finally {
      FakeGateway.listenError = undefined;
    }
    expect(err.text).toContain(
      'myelin serve: cannot listen on 127.0.0.1:8181: the address is already in use (another server is running there). Choose another port with --port N (or MYELIN_PORT), or --port 0 for a free one.\n',
    );
    expect(out.text).toBe('');
    expect((FakeGateway.last!.options.bus as unknown as { closed: boolean }).closed).toBe(true);
  });

  it('warns when it listens beyond loopback without auth tokens', async () => {
    const { io, signals, err, out, ready } = fakeIO({ env: await quietEnv() });
    const done = serveCommand(['--host', '0.0.0.0', '--port', '0'], io);
    await ready;
    signals.emit('SIGTERM', 'SIGTERM');
    expect(await done).toBe(0);
    expect(out.text.split('\n')[0]).toBe('myelin gateway listening on http://127.0.0.1:45678 (every interface)');
    expect(err.text).toMatch(/warning: listening on 0\.0\.0\.0 without auth tokens/);
  });
});

// ---- the real command, end to end ------------------------------------------------------------

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function start(args: string[], env: Record<string, string>): Running {
  // Provider keys in the developer's environment must not turn the simulator off.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(MYELIN_|OPENAI_|ANTHROPIC_|OLLAMA_)/.test(k)));
  const child = spawn(process.execPath, [join(root, 'bin', 'myelin.mjs'), 'serve', ...args], {
    cwd: mkdtempSync(join(tmpdir(), 'myelin-serve-e2e-')),
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Resolves with the banner's URL once it is printed, or rejects with what the process said. */
function banner(r: Running): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = /myelin gateway listening on (http:\/\/\S+)/.exec(r.stdout());
      if (m && r.stdout().includes('  AI ')) resolve(m[1]);
    };
    r.child.stdout!.on('data', check);
    void r.exited.then((code) => reject(new Error(`serve exited ${code} before listening:\n${r.stderr()}`)));
  });
}

describe('myelin serve: end to end (real gateway)', () => {
  it('starts with no config at all, answers /healthz and /v1/models (simulated), exits 0 on SIGTERM', async () => {
    const r = start(['--port', '0'], await quietEnv());
    try {
      const url = await banner(r);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(r.stdout()).toContain(`ws://${url.slice('http://'.length)}/ws`);
      expect(r.stdout()).toMatch(/ {2}I\/O {9}(epoll|io_uring)/);
      expect(r.stderr()).toContain('using the built-in simulator (answers are simulated)');
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);
      await health.arrayBuffer();
      const models = await fetch(`${url}/v1/models`);
      expect(models.status).toBe(200);
      expect(JSON.stringify(await models.json())).toMatch(/simulat/);
      r.child.kill('SIGTERM');
      expect(await r.exited).toBe(0);
      expect(r.stderr()).toMatch(/closed\n$/);
    } finally {
      r.child.kill('SIGKILL');
    }
  });

  it('a port in use: exit 1 and a message naming the address and --port', async () => {
    const blocker = createServer();
    await new Promise<void>((res) => blocker.listen(0, '127.0.0.1', res));
    const { port } = blocker.address() as AddressInfo;
    try {
      const r = start(['--port', String(port)], await quietEnv());
      expect(await r.exited).toBe(1);
      expect(r.stderr()).toContain(`cannot listen on 127.0.0.1:${port}`);
      expect(r.stderr()).toContain('--port');
      expect(r.stdout()).toBe('');
    } finally {
      await new Promise<void>((res) => blocker.close(() => res()));
    }
  });
});
