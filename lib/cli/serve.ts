// `myelin serve`: the gateway with embedded defaults (in-memory bus, cache and sessions),
// configured by a JSON file, the environment and flags (serve-config.ts), with AI
// providers found as serve-providers.ts says. The URL banner goes to stdout, progress
// and log lines to stderr. SIGINT/SIGTERM close gracefully (the gateway drains, then the
// bus and the AI client close) and exit 0; a second signal exits at once with 130.
import { AIClient } from '../ai/client/ai-client.js';
import type { AIClientOptions } from '../ai/client/options.js';
import { Bus } from '../bus/bus.js';
import { MyelinError } from '../errors.js';
import { type Env, type ServeConfig, type ServeFlags, DEFAULT_CONFIG_FILE, loadServeConfig } from './serve-config.js';
import { type Discovered, discoverProviders } from './serve-providers.js';

export const SERVE_USAGE = `usage: myelin serve [options]
  --config FILE   JSON config file (default: ./${DEFAULT_CONFIG_FILE} when it exists)
  --port N        port to listen on (default 8080; 0 picks a free one)
  --host H        address to bind (default 127.0.0.1; 0.0.0.0 for every interface)
  --help          this text
environment:
  MYELIN_PORT, MYELIN_HOST          as --port and --host
  MYELIN_IO=auto|epoll|io_uring     the I/O backend;  MYELIN_IO_THREADS=N  its threads
  MYELIN_TOKENS=t1,t2               bearer tokens every path but /healthz requires
  OPENAI_API_KEY [OPENAI_BASE_URL]  adds (or fills in) the provider named openai
  ANTHROPIC_API_KEY [ANTHROPIC_BASE_URL]  adds (or fills in) the provider named anthropic
  OLLAMA_HOST                       where to look for a local server (default 127.0.0.1:11434)
precedence: flags, then the environment, then the config file, then the defaults
AI providers: the configured ones; else an OpenAI-compatible server at OLLAMA_HOST if it
answers; else the built-in simulator (answers are simulated, and /v1/models says so)`;

/** What serve needs of the Gateway (shared/API.md). */
export interface GatewayLike {
  listen(): Promise<unknown>;
  address(): { host: string; port: number } | null | undefined;
  stats(): unknown;
  close(): Promise<void>;
}

export interface GatewayConstructorOptions {
  port: number;
  host: string;
  bus: Bus;
  ai: AIClient;
  auth?: { tokens: string[] };
  maxPayloadBytes?: number;
  ioThreads?: number;
  io?: 'auto' | 'epoll' | 'io_uring';
  maxConnections?: number;
  simulated?: boolean;
}

export type GatewayClass = new (opts: GatewayConstructorOptions) => GatewayLike;

interface Signals {
  on(signal: 'SIGINT' | 'SIGTERM', fn: (signal: NodeJS.Signals) => void): unknown;
  off(signal: 'SIGINT' | 'SIGTERM', fn: (signal: NodeJS.Signals) => void): unknown;
}

export interface ServeIO {
  stdout?: { write(s: string): unknown };
  stderr?: { write(s: string): unknown };
  /** Default process.env. */
  env?: Env;
  /** Where --config and ./myelin.config.json are looked up. Default process.cwd(). */
  cwd?: string;
  /** Where SIGINT/SIGTERM come from. Default process. */
  signals?: Signals;
  /** Exits at once (the second signal). Default process.exit. */
  exit?: (code: number) => void;
  /** Called once listening. */
  onListening?: (info: { url: string; host: string; port: number }) => void;
  /** How long the local-server probe waits. Default 300 ms. */
  probeTimeoutMs?: number;
  /** The Gateway class; default the one in lib/gateway/gateway.ts. */
  Gateway?: GatewayClass;
}

class UsageError extends Error {}

interface ParsedArgs extends ServeFlags {
  help: boolean;
}

export function parseServeArgs(args: readonly string[]): ParsedArgs {
  const out: ParsedArgs = { help: false };
  const names: Record<string, keyof ServeFlags> = { '--config': 'config', '--port': 'port', '--host': 'host' };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--help' || arg === '-h') {
      out.help = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const key = names[flag];
    if (!key) throw new UsageError(`unknown ${arg.startsWith('-') ? 'flag' : 'argument'} '${flag.length > 40 ? `${flag.slice(0, 40)}...` : flag}'`);
    let raw: string;
    if (eq !== -1) raw = arg.slice(eq + 1);
    else {
      if (i + 1 >= args.length || args[i + 1].startsWith('--')) throw new UsageError(`${flag} expects a value`);
      raw = args[++i];
    }
    if (raw === '') throw new UsageError(`${flag} expects a value`);
    out[key] = raw;
  }
  return out;
}

/** A URL's host part: loopback for a wildcard bind, brackets for IPv6. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** "epoll, 2 threads" from gw.stats(), whatever shape its `io` takes; undefined when it has none. */
function ioLine(stats: unknown, cfg: ServeConfig): string | undefined {
  const s = (stats ?? {}) as Record<string, unknown>;
  const io = s.io;
  let backend: string | undefined;
  let threads: unknown = s.ioThreads;
  if (typeof io === 'string') backend = io;
  else if (io && typeof io === 'object') {
    const o = io as Record<string, unknown>;
    const b = o.backend ?? o.kind ?? o.name;
    if (typeof b === 'string') backend = b;
    threads ??= o.threads ?? o.ioThreads;
  }
  if (backend === undefined) return undefined;
  threads ??= cfg.ioThreads;
  return typeof threads === 'number' ? `${backend}, ${threads} thread${threads === 1 ? '' : 's'}` : backend;
}

/** The listen failure said for a person: the address, what is wrong and which flag fixes it. */
function listenMessage(err: unknown, host: string, port: number): string {
  const e = err as { message?: string; cause?: { code?: string }; errno?: string; sysCode?: string };
  const text = `${e.message ?? ''} ${e.cause?.code ?? ''} ${e.errno ?? ''} ${e.sysCode ?? ''}`;
  const where = `${urlHost(host)}:${port}`;
  if (/EADDRINUSE|in use/i.test(text)) {
    return `cannot listen on ${where}: the address is already in use (another server is running there). Choose another port with --port N (or MYELIN_PORT), or --port 0 for a free one.`;
  }
  if (/EACCES|EPERM|permission/i.test(text)) {
    return `cannot listen on ${where}: permission denied (ports below 1024 need privileges). Choose a port from 1024 up with --port N.`;
  }
  if (/EADDRNOTAVAIL|not available|cannot assign/i.test(text)) {
    return `cannot listen on ${where}: this machine has no such address. Check --host (or MYELIN_HOST); 127.0.0.1 and 0.0.0.0 always work.`;
  }
  return `cannot listen on ${where}: ${e.message ?? String(err)}. Try another address with --port N or --host H.`;
}

async function loadGateway(): Promise<GatewayClass> {
  // Imported when serve runs, not when the CLI loads: the other commands do not need it.
  const spec = '../gateway/gateway.js';
  const mod = (await import(/* @vite-ignore */ spec)) as { Gateway?: GatewayClass };
  if (typeof mod.Gateway !== 'function') throw new MyelinError('ERR_INTERNAL', 'myelin serve: lib/gateway/gateway.js exports no Gateway');
  return mod.Gateway;
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export async function serveCommand(args: string[], io: ServeIO = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const log = (line: string) => stderr.write(`myelin serve: ${line}\n`);
  const signals: Signals = io.signals ?? process;
  const exit = io.exit ?? ((code: number) => process.exit(code));

  let parsed: ParsedArgs;
  try {
    parsed = parseServeArgs(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    stderr.write(`myelin serve: ${err.message}\n${SERVE_USAGE}\n`);
    return 2;
  }
  if (parsed.help) {
    stdout.write(`${SERVE_USAGE}\n`);
    return 0;
  }

  let cfg: ServeConfig;
  try {
    cfg = loadServeConfig({ flags: parsed, env: io.env, cwd: io.cwd });
  } catch (err) {
    if (!(err instanceof MyelinError) || err.code !== 'ERR_INVALID_ARGUMENT') throw err;
    stderr.write(`myelin serve: ${err.message}\n`);
    return 2;
  }
  log(`config: ${cfg.configFile ?? `none (no ${DEFAULT_CONFIG_FILE} here; embedded defaults)`}`);
  if (cfg.envUsed.length > 0) log(`environment: ${cfg.envUsed.join(', ')}`);

  // Everything started so far, closed in reverse on a failed start.
  let found: Discovered | undefined;
  let bus: Bus | undefined;
  let ai: AIClient | undefined;
  let gw: GatewayLike | undefined;
  const closeAll = async (): Promise<boolean> => {
    let ok = true;
    const step = async (what: string, fn: (() => Promise<unknown>) | undefined) => {
      if (!fn) return;
      try {
        await fn();
      } catch (err) {
        ok = false;
        log(`closing ${what} failed: ${(err as Error).message}`);
      }
    };
    await step('the gateway', gw && (() => gw!.close()));
    await step('the bus', bus && (async () => {
      await bus!.drain();
      await bus!.close();
    }));
    await step('the AI client', ai && (() => ai!.close()));
    await step('the simulator', found && (() => found!.close()));
    return ok;
  };

  try {
    found = await discoverProviders({
      providers: cfg.ai.providers,
      models: cfg.ai.models,
      ollamaURL: cfg.ollamaURL,
      probeTimeoutMs: io.probeTimeoutMs,
      simulator: cfg.simulator,
      log,
    });
    bus = new Bus(defined({ capacity: cfg.bus.capacity, overflow: cfg.bus.overflow }));
    const aiOptions: AIClientOptions = {
      providers: found.providers,
      models: found.models,
      ...defined({ retry: cfg.ai.retry, breaker: cfg.ai.breaker, limits: cfg.ai.limits, cache: cfg.ai.cache, timeouts: cfg.ai.timeouts }),
    };
    ai = new AIClient(aiOptions);
    const Gateway = io.Gateway ?? (await loadGateway());
    gw = new Gateway({
      port: cfg.port,
      host: cfg.host,
      bus,
      ai,
      ...defined({
        auth: cfg.tokens.length > 0 ? { tokens: cfg.tokens } : undefined,
        maxPayloadBytes: cfg.maxPayloadBytes,
        ioThreads: cfg.ioThreads,
        io: cfg.io,
        maxConnections: cfg.maxConnections,
      }),
      simulated: found.simulated,
    });
    await gw.listen();
  } catch (err) {
    await closeAll();
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_GATEWAY_LISTEN') log(listenMessage(err, cfg.host, cfg.port));
    else log(`${typeof code === 'string' ? `${code}: ` : ''}${(err as Error).message}`);
    return code === 'ERR_INVALID_ARGUMENT' ? 2 : 1;
  }

  const addr = gw.address() ?? { host: cfg.host, port: cfg.port };
  const host = urlHost(addr.host);
  const base = `http://${host}:${addr.port}`;
  const ioDesc = ioLine(gw.stats(), cfg);
  const wildcard = addr.host === '0.0.0.0' || addr.host === '::' || addr.host === '';
  stdout.write(
    [
      `myelin gateway listening on ${base}${wildcard ? ' (every interface)' : ''}`,
      `  WebSocket   ws://${host}:${addr.port}/ws`,
      `  OpenAI API  ${base}/v1/chat/completions`,
      `  metrics     ${base}/metrics`,
      `  dashboard   ${base}/dashboard`,
      ...(ioDesc ? [`  I/O         ${ioDesc}`] : []),
      `  AI          ${found.simulated ? 'built-in simulator (answers are simulated)' : found.providers.map((p) => p.name).join(', ')}`,
      ...(cfg.tokens.length > 0 ? ['  auth        bearer token required (except /healthz)'] : []),
      '',
    ].join('\n'),
  );
  if (!isLoopback(addr.host) && cfg.tokens.length === 0) {
    log(`warning: listening on ${addr.host} without auth tokens: anyone who reaches this port can publish events and spend the AI providers' quota (set MYELIN_TOKENS or auth.tokens)`);
  }
  io.onListening?.({ url: base, host: addr.host, port: addr.port });

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const first = (sig: NodeJS.Signals) => {
      signals.off('SIGINT', first);
      signals.off('SIGTERM', first);
      resolve(sig);
    };
    signals.on('SIGINT', first);
    signals.on('SIGTERM', first);
  });
  // A second signal while draining: the operator wants out now.
  const again = (sig: NodeJS.Signals) => {
    log(`${sig} again: exiting without finishing the shutdown`);
    exit(130);
  };
  signals.on('SIGINT', again);
  signals.on('SIGTERM', again);
  log(`${signal}: shutting down (finishing in-flight requests; ${signal === 'SIGINT' ? 'Ctrl-C' : 'a second signal'} again exits at once)`);
  try {
    const ok = await closeAll();
    log(ok ? 'closed' : 'closed, with errors');
    if (!io.exit) {
      // A handle left open (a native thread, a socket) must not keep a closed server alive.
      setTimeout(() => process.exit(ok ? 0 : 1), 3000).unref();
    }
    return ok ? 0 : 1;
  } finally {
    signals.off('SIGINT', again);
    signals.off('SIGTERM', again);
  }
}
