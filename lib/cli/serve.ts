// `myelin serve`: the gateway with embedded defaults (in-memory bus, cache and sessions),
// configured by a JSON file, the environment and flags (serve-config.ts), with AI
// providers found as serve-providers.ts says. The URL banner goes to stdout, progress
// and log lines to stderr. SIGINT/SIGTERM close gracefully (the gateway drains, then the
// bus and the AI client close) and exit 0; a second signal exits at once with 130.
//
// On a cluster (bus.transport, serve-cluster.ts): the bus runs on NATS or Redis, the node
// is in the registry, GET /api/cluster lists the nodes, and with cluster.config the `ai`
// section comes from the cluster store and is hot-reloaded on every new version.
import { AIClient } from '../ai/client/ai-client.js';
import type { Bus } from '../bus/bus.js';
import { MyelinError } from '../errors.js';
import { type Env, type ResolvedAI, type ServeConfig, type ServeFlags, DEFAULT_CONFIG_FILE, loadServeConfig } from './serve-config.js';
import { AIProviders, type ChosenProviders, ConfigSync, RETIRE_MAX_MS, aiClientOptions, clusterRoute, describeTransport, openBus } from './serve-cluster.js';

export const SERVE_USAGE = `usage: myelin serve [options]
  --config FILE   JSON config file (default: ./${DEFAULT_CONFIG_FILE} when it exists)
  --port N        port to listen on (default 8080; 0 picks a free one)
  --host H        address to bind (default 127.0.0.1; 0.0.0.0 for every interface)
  --help          this text
environment:
  MYELIN_PORT, MYELIN_HOST          as --port and --host
  MYELIN_IO=auto|epoll|io_uring     the I/O backend;  MYELIN_IO_THREADS=N  its threads
  MYELIN_TOKENS=t1,t2               bearer tokens every path but /healthz requires
  MYELIN_BUS_TRANSPORT=nats://h:4222|redis://h:6379   run the bus on a cluster (as bus.transport)
  MYELIN_CLUSTER_CONFIG=NAME        take the ai section from the cluster store entry NAME and
                                    hot-reload it (as cluster.config; myelin config put NAME file)
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
  /** Adds a route (GET /api/cluster). */
  route?(method: string, path: string, handler: () => unknown): unknown;
  /** Hot reload: new OpenAI requests go to `ai`; resolves once those on the previous client are done. */
  replaceAI?(ai: AIClient, options?: { simulated?: boolean }): Promise<void>;
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

  if (cfg.cluster.config !== undefined && cfg.bus.transport === undefined) {
    stderr.write('myelin serve: cluster.config (or MYELIN_CLUSTER_CONFIG) needs a cluster bus: set bus.transport or MYELIN_BUS_TRANSPORT\n');
    return 2;
  }

  // Everything started so far, closed in reverse on a failed start.
  const providers = new AIProviders({ ollamaURL: cfg.ollamaURL, probeTimeoutMs: io.probeTimeoutMs, simulator: cfg.simulator, log });
  let bus: Bus | undefined;
  let ai: AIClient | undefined;
  let gw: GatewayLike | undefined;
  let sync: ConfigSync | undefined;
  /** Replaced AI clients, closed once their in-flight calls are done (or at shutdown). */
  const retiring = new Set<AIClient>();
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
    sync?.close();
    await step('the gateway', gw && (() => gw!.close()));
    await step('the bus', bus && (async () => {
      await bus!.drain();
      await bus!.close();
    }));
    await step('the AI client', ai && (() => ai!.close()));
    for (const old of retiring) await step('a replaced AI client', () => old.close());
    await step('the simulator', () => providers.close());
    return ok;
  };

  let chosen: ChosenProviders;
  let startVersion: number | undefined;
  try {
    const transport = cfg.bus.transport;
    if (transport !== undefined) log(`bus: connecting to ${describeTransport(transport)}`);
    bus = await openBus(cfg);
    let startAI: ResolvedAI = cfg.ai;
    if (cfg.cluster.config !== undefined) {
      sync = new ConfigSync({ cluster: bus.cluster!, name: cfg.cluster.config, pollMs: cfg.cluster.pollMs, env: io.env, log });
      const first = await sync.initial();
      if (first !== undefined) {
        startAI = first.ai;
        startVersion = first.version;
        log(`configuration ${cfg.cluster.config}: running version ${first.version} from the cluster store`);
      }
    }
    chosen = await providers.choose(startAI);
    ai = new AIClient(aiClientOptions(startAI, chosen));
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
      simulated: chosen.simulated,
    });
    if (bus.cluster !== undefined) {
      if (typeof gw.route !== 'function') throw new MyelinError('ERR_INTERNAL', 'myelin serve: this Gateway cannot add the /api/cluster route');
      gw.route('GET', '/api/cluster', clusterRoute(bus, sync));
    }
    if (sync !== undefined && typeof gw.replaceAI !== 'function') throw new MyelinError('ERR_INTERNAL', 'myelin serve: this Gateway cannot hot-reload its AI client (replaceAI)');
    await gw.listen();
  } catch (err) {
    await closeAll();
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_GATEWAY_LISTEN') log(listenMessage(err, cfg.host, cfg.port));
    else log(`${typeof code === 'string' ? `${code}: ` : ''}${(err as Error).message}`);
    return code === 'ERR_INVALID_ARGUMENT' ? 2 : 1;
  }

  if (sync !== undefined) {
    const gateway = gw;
    // A new version: built aside, swapped in for new requests, the old client closed
    // once the requests that started on it are done. Any throw leaves the old one running.
    sync.start(async (next: ResolvedAI) => {
      const nextChosen = await providers.choose(next);
      const client = new AIClient(aiClientOptions(next, nextChosen));
      let idle: Promise<void>;
      try {
        idle = gateway.replaceAI!(client, { simulated: nextChosen.simulated });
      } catch (err) {
        await client.close().catch(() => {});
        throw err;
      }
      const old = ai!;
      ai = client;
      retiring.add(old);
      let timer: NodeJS.Timeout | undefined;
      const cap = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          log(`a replaced AI client still had calls in flight after ${RETIRE_MAX_MS / 1000} s; closing it (those calls fail)`);
          resolve();
        }, RETIRE_MAX_MS);
        timer.unref();
      });
      void Promise.race([idle, cap])
        .then(() => {
          clearTimeout(timer);
          retiring.delete(old);
          return old.close();
        })
        .catch((e: unknown) => log(`closing a replaced AI client failed: ${(e as Error).message}`));
    }, startVersion);
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
      `  AI          ${chosen.simulated ? 'built-in simulator (answers are simulated)' : chosen.names.join(', ')}`,
      ...(bus.cluster !== undefined
        ? [
            `  cluster     ${describeTransport(cfg.bus.transport!)}, node ${bus.cluster.id}`,
            `              ${base}/api/cluster${cfg.cluster.config !== undefined ? `; configuration ${cfg.cluster.config} ${startVersion !== undefined ? `version ${startVersion}` : "not in the store (the file's ai section)"}` : ''}`,
          ]
        : []),
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
