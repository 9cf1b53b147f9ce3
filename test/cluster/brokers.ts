// Our own broker instances for the cluster fault tests: a nats-server (JetStream on,
// its store in a temp dir) or a redis-server on a free loopback port, which a test may
// kill -9, SIGSTOP/SIGCONT, or restart on the same port and store, without touching
// the shared servers on 4222/6379.
//
// Flow: start -> spawn the binary -> poll the port until the server speaks its protocol
// (NATS sends INFO; Redis answers PING with PONG once it has loaded its AOF) -> the
// handle. Every spawned server is registered so that a process exit (a test that
// failed before its afterAll) still kills it; stop() removes the temp dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Broker {
  /** nats://127.0.0.1:<port> or redis://127.0.0.1:<port>. */
  readonly url: string;
  readonly port: number;
  /** The running server's pid (changes on restart; 0 while it is down). */
  readonly pid: number;
  /** The server's data directory (JetStream store, Redis AOF). */
  readonly dir: string;
  /** Sends a signal (SIGKILL, SIGSTOP, SIGCONT, ...) to the running server. */
  kill(signal?: NodeJS.Signals): void;
  /** Stops the server if it runs (SIGKILL), then starts it again on the same port and store; resolves once it answers. */
  restart(): Promise<void>;
  /** Stops the server for good and removes its data directory. Idempotent. */
  stop(): Promise<void>;
}

export interface NatsOptions {
  /** Enable JetStream with a file store in the temp dir (default true). */
  jetstream?: boolean;
  /** How long start()/restart() wait for the server to answer (default 10 s). */
  readyTimeoutMs?: number;
}

export interface RedisOptions {
  /**
   * Persist every write: `--appendonly yes --appendfsync always` in the temp dir, so a
   * kill -9 and restart keeps what was acknowledged. Default false: `--save ''
   * --appendonly no`, where a restart starts empty (by design).
   */
  appendonly?: boolean;
  readyTimeoutMs?: number;
}

const live = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHook) {
    exitHook = true;
    // Synchronous by necessity: an 'exit' listener cannot await.
    process.on('exit', () => {
      for (const c of live) {
        try {
          c.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
}

/** A port nobody listens on right now (the kernel's pick for an ephemeral bind). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** One attempt: connect, optionally write `hello`, resolve true when the reply contains `expect`. */
function probe(port: number, hello: string | undefined, expect: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    const finish = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), 1000);
    sock.setEncoding('utf8');
    sock.on('connect', () => {
      if (hello) sock.write(hello);
    });
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.includes(expect)) {
        clearTimeout(timer);
        finish(true);
      } else if (buf.includes('\r\n') && !buf.startsWith('INFO')) {
        // A Redis still loading its AOF answers -LOADING: not ready yet.
        clearTimeout(timer);
        finish(false);
      }
    });
    sock.on('error', () => {
      clearTimeout(timer);
      finish(false);
    });
  });
}

async function waitReady(child: ChildProcess, port: number, hello: string | undefined, expect: string, timeoutMs: number, what: string, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before it answered on port ${port}: ${log()}`);
    }
    if (await probe(port, hello, expect)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not answer on port ${port} within ${timeoutMs} ms: ${log()}`);
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

interface Spec {
  what: string;
  bin: string;
  args: string[];
  hello: string | undefined;
  expect: string;
  scheme: string;
  readyTimeoutMs: number;
}

async function startServer(port: number, dir: string, spec: Spec): Promise<Broker> {
  let child: ChildProcess | undefined;
  let output = '';
  let stopped = false;
  const launch = async () => {
    output = '';
    const c = spawn(spec.bin, spec.args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    // Keep the last few KB of its output for the error message when it fails to start.
    const keep = (d: Buffer) => {
      output = (output + d.toString('utf8')).slice(-4000);
    };
    c.stdout?.on('data', keep);
    c.stderr?.on('data', keep);
    c.on('error', (err) => {
      output += `\nspawn error: ${err.message}`;
    });
    track(c);
    child = c;
    await waitReady(c, port, spec.hello, spec.expect, spec.readyTimeoutMs, spec.what, () => output);
  };
  const down = async () => {
    const c = child;
    if (!c) return;
    if (c.exitCode === null && c.signalCode === null) {
      // A stopped server must be continued for SIGKILL to be reaped promptly on every kernel.
      c.kill('SIGKILL');
      c.kill('SIGCONT');
    }
    await waitExit(c);
    child = undefined;
  };
  try {
    await launch();
  } catch (err) {
    await down();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: `${spec.scheme}://127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      const c = child;
      return c && c.exitCode === null && c.signalCode === null ? (c.pid ?? 0) : 0;
    },
    kill(signal: NodeJS.Signals = 'SIGKILL') {
      const c = child;
      if (c && c.exitCode === null && c.signalCode === null) c.kill(signal);
    },
    async restart() {
      if (stopped) throw new Error(`${spec.what} on port ${port} was stopped; start a new one`);
      await down();
      await launch();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await down();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A nats-server on a free port: `-a 127.0.0.1 -p <port> [-js -sd <tmpdir>]`. */
export async function startNats(opts: NatsOptions = {}): Promise<Broker> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'myelin-nats-'));
  const args = ['-a', '127.0.0.1', '-p', String(port)];
  if (opts.jetstream ?? true) args.push('-js', '-sd', dir);
  return startServer(port, dir, {
    what: 'nats-server',
    bin: 'nats-server',
    args,
    hello: undefined,
    expect: 'INFO ',
    scheme: 'nats',
    readyTimeoutMs: opts.readyTimeoutMs ?? 10_000,
  });
}

/** A redis-server on a free port, with no persistence, or with an fsync-always AOF (opts.appendonly). */
export async function startRedis(opts: RedisOptions = {}): Promise<Broker> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'myelin-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''];
  if (opts.appendonly) args.push('--appendonly', 'yes', '--appendfsync', 'always');
  else args.push('--appendonly', 'no');
  return startServer(port, dir, {
    what: 'redis-server',
    bin: 'redis-server',
    args,
    hello: 'PING\r\n',
    expect: '+PONG',
    scheme: 'redis',
    readyTimeoutMs: opts.readyTimeoutMs ?? 10_000,
  });
}
