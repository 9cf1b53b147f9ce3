// `myelin serve` on a cluster: the bus on a transport (NATS JetStream, Redis Streams),
// configuration sync with hot reload, and the /api/cluster route.
//
// Data flow of a reload:
//   operator --myelin config put--> cluster store (bus.cluster.putConfig, a new version)
//   ConfigSync polls bus.cluster.getConfig every pollMs -> a version it has not judged:
//     parseClusterEntry (the config file's `ai` schema) -> resolveAISection (this node's
//     environment: apiKeyEnv, OPENAI_API_KEY, ...) -> apply(): AIProviders picks the
//     providers and aliases, a new AIClient is built, Gateway.replaceAI() routes new
//     requests to it and resolves once the requests that started on the old client are
//     done; the old client is closed then.
//   A version that fails any step is logged with its issues and skipped: the node keeps
//   the version it runs.
//
// The version reported in the registry (NodeInfo.config[name]): bus.cluster.watchConfig
// records every version its callback is given, before the callback can refuse it. So
// this file never keeps a watch open: it detects versions by polling getConfig (which
// records nothing), and after applying version v it opens a watch only until its first
// callback, which records the version stored then, v, in the registry. Only when another
// version is put between the read and that watch (a window of one store round trip)
// does the watch hand over the newer one first; it is judged on the spot, and when it is
// rejected the registry shows it until the next version is applied (logged as such).
import { AIClient } from '../ai/client/ai-client.js';
import type { AIClientOptions, ModelRoute, ProviderConfig } from '../ai/client/options.js';
import { Bus } from '../bus/bus.js';
import type { ClusterHandle } from '../cluster/cluster-bus.js';
import { MyelinError } from '../errors.js';
import { type ClusterEntry, type ConfigIssue, type Env, type ResolvedAI, type ServeConfig, parseClusterEntry, resolveAISection } from './serve-config.js';
import { type Discovered, discoverProviders } from './serve-providers.js';

/** Default interval between reads of the configuration entry. */
export const DEFAULT_POLL_MS = 1000;
/** How long a replaced AI client waits for its in-flight calls before it is closed anyway. */
export const RETIRE_MAX_MS = 5 * 60_000;
/** How long the registry-recording watch stays open when no version comes. */
const RECORD_WATCH_MS = 10_000;

type Log = (line: string) => void;

// ---- the bus -------------------------------------------------------------------------

/** A transport URL without its credentials, for log lines. */
export function redactURL(u: string): string {
  return u.replace(/^([a-z]+:\/\/)[^@/]*@/i, '$1***@');
}

/** Where a transport points, for log lines and the banner. */
export function describeTransport(t: NonNullable<ServeConfig['bus']['transport']>): string {
  if (t.kind === 'redis') return `redis ${redactURL(String(t.url))}${typeof t.prefix === 'string' ? ` (prefix ${t.prefix})` : ''}`;
  const servers = Array.isArray(t.servers) ? t.servers.map(String) : [String(t.servers)];
  const stream = t.stream === false ? ', core NATS' : typeof t.stream === 'string' ? `, stream ${t.stream}` : '';
  return `nats ${servers.map(redactURL).join(',')}${stream}`;
}

/**
 * The bus serve runs: in memory, or on the configured transport once connected.
 * Throws ERR_INVALID_ARGUMENT for a transport the bus refuses (a config error), and
 * ERR_TRANSPORT_UNAVAILABLE, with what to check, when the engine cannot be reached.
 */
export async function openBus(cfg: ServeConfig): Promise<Bus> {
  const t = cfg.bus.transport;
  const base = { ...(cfg.bus.capacity !== undefined ? { capacity: cfg.bus.capacity } : {}), ...(cfg.bus.overflow !== undefined ? { overflow: cfg.bus.overflow } : {}) };
  if (t === undefined) return new Bus(base);
  let bus: Bus;
  try {
    bus = new Bus({ ...base, transport: t });
  } catch (err) {
    if (err instanceof MyelinError && err.code === 'ERR_INVALID_ARGUMENT') {
      throw new MyelinError('ERR_INVALID_ARGUMENT', `invalid bus.transport (config file or MYELIN_BUS_TRANSPORT): ${err.message}`, { cause: err });
    }
    throw err;
  }
  try {
    await bus.ready;
  } catch (err) {
    await bus.close().catch(() => {});
    const why = (err as Error).message;
    throw new MyelinError(
      'ERR_TRANSPORT_UNAVAILABLE',
      `cannot reach the cluster bus (${describeTransport(t)}): ${why}. Check that the server runs and bus.transport / MYELIN_BUS_TRANSPORT point at it.`,
      { cause: err },
    );
  }
  return bus;
}

// ---- providers -----------------------------------------------------------------------

export interface ChosenProviders {
  providers: ProviderConfig[];
  models: Record<string, ModelRoute | string>;
  simulated: boolean;
  /** For the banner and logs. */
  names: string[];
}

/**
 * The providers an `ai` section runs with. Configured providers are used as they are
 * (discoverProviders adds `default`); a section without any uses what discovery finds
 * (a local OpenAI-compatible server, else the built-in simulator), found once and kept
 * for every later version, with the section's aliases over the discovered ones.
 */
export class AIProviders {
  #discovered: Discovered | undefined;
  #discovering: Promise<Discovered> | undefined;
  readonly #opts: { ollamaURL: string; probeTimeoutMs?: number; simulator: ServeConfig['simulator']; log: Log };

  constructor(opts: { ollamaURL: string; probeTimeoutMs?: number; simulator: ServeConfig['simulator']; log: Log }) {
    this.#opts = opts;
  }

  async choose(ai: ResolvedAI): Promise<ChosenProviders> {
    if (ai.providers.length > 0) {
      const d = await discoverProviders({ providers: ai.providers, models: ai.models, log: this.#opts.log });
      return { providers: d.providers, models: d.models, simulated: false, names: d.providers.map((p) => p.name) };
    }
    this.#discovering ??= discoverProviders({
      providers: [],
      models: {},
      ollamaURL: this.#opts.ollamaURL,
      probeTimeoutMs: this.#opts.probeTimeoutMs,
      simulator: this.#opts.simulator,
      log: this.#opts.log,
    }).then((d) => (this.#discovered = d));
    const d = await this.#discovering;
    return { providers: d.providers, models: { ...d.models, ...ai.models }, simulated: d.simulated, names: d.providers.map((p) => p.name) };
  }

  /** Stops what discovery started (the simulator). */
  async close(): Promise<void> {
    const d = this.#discovered ?? (await this.#discovering?.catch(() => undefined));
    await d?.close();
  }
}

export function aiClientOptions(ai: ResolvedAI, chosen: ChosenProviders): AIClientOptions {
  const o: AIClientOptions = { providers: chosen.providers, models: chosen.models };
  if (ai.retry !== undefined) o.retry = ai.retry;
  if (ai.breaker !== undefined) o.breaker = ai.breaker;
  if (ai.limits !== undefined) o.limits = ai.limits;
  if (ai.cache !== undefined) o.cache = ai.cache;
  if (ai.timeouts !== undefined) o.timeouts = ai.timeouts;
  return o;
}

// ---- configuration sync ----------------------------------------------------------------

export interface SyncState {
  name: string;
  /** The store version this node runs; null while it runs its config file's `ai`. */
  version: number | null;
  source: 'cluster' | 'file';
  appliedAt: number | null;
  /** The last version refused, and why (null: none). */
  rejected: { version: number; at: number; issues: ConfigIssue[] } | null;
  /** The last failure to read the store, while it lasts (null: none). */
  readError: string | null;
}

export interface ConfigSyncOptions {
  cluster: ClusterHandle;
  name: string;
  pollMs?: number;
  env?: Env;
  log: Log;
  /** Puts a validated version into service; throws (nothing changed) when it cannot. */
  apply?: (ai: ResolvedAI, version: number) => Promise<void>;
}

/** A refusal's reasons as path/message lines, from a config error or any other failure. */
function issuesOf(err: unknown): ConfigIssue[] {
  const issues = (err as { issues?: unknown }).issues;
  if (Array.isArray(issues) && issues.length > 0) return issues as ConfigIssue[];
  const e = err as { code?: unknown; message?: unknown };
  // The AIClient's own checks (a model naming an unknown provider) are about the ai section.
  return [{ path: 'ai', message: `${typeof e.code === 'string' ? `${e.code}: ` : ''}${String(e.message ?? err)}` }];
}

/** Follows one configuration entry: see the top of the file. */
export class ConfigSync {
  readonly #o: ConfigSyncOptions;
  readonly #pollMs: number;
  #apply: ((ai: ResolvedAI, version: number) => Promise<void>) | undefined;
  /** The highest version judged (applied or refused): a version is judged once. */
  #judged = 0;
  #version: number | undefined;
  #appliedAt: number | undefined;
  #rejected: { version: number; at: number; issues: ConfigIssue[] } | undefined;
  #readError: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();
  #stopWatch: (() => void) | undefined;
  #closed = false;

  constructor(o: ConfigSyncOptions) {
    this.#o = o;
    this.#pollMs = o.pollMs ?? DEFAULT_POLL_MS;
    this.#apply = o.apply;
  }

  state(): SyncState {
    return {
      name: this.#o.name,
      version: this.#version ?? null,
      source: this.#version === undefined ? 'file' : 'cluster',
      appliedAt: this.#appliedAt ?? null,
      rejected: this.#rejected ?? null,
      readError: this.#readError ?? null,
    };
  }

  /**
   * The entry's current version, validated and resolved, to start with; undefined when
   * there is none or it is refused (logged). Read errors propagate: a node told to
   * follow an entry does not start without being able to read it.
   */
  async initial(): Promise<{ ai: ResolvedAI; version: number } | undefined> {
    const e = await this.#o.cluster.getConfig(this.#o.name);
    if (e === undefined) {
      this.#o.log(`configuration ${this.#o.name}: not in the cluster store yet; running the config file's ai section until a version is put`);
      return undefined;
    }
    this.#judged = e.version;
    const r = this.#validate(e.value, e.version);
    if (r === undefined) return undefined;
    return { ai: r, version: e.version };
  }

  /**
   * Starts following the entry. `version`: the one serve started with (from initial()),
   * now in service; it is recorded in the registry.
   */
  start(apply: (ai: ResolvedAI, version: number) => Promise<void>, version?: number): void {
    this.#apply = apply;
    if (version !== undefined) this.#applied(version, false);
    this.#schedule();
  }

  /** Reads the store now and applies a new version (tests, and the poll loop). */
  check(): Promise<void> {
    return this.#serial(() => this.#poll());
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#stopWatch?.();
    this.#stopWatch = undefined;
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      void this.check().finally(() => this.#schedule());
    }, this.#pollMs);
    this.#timer.unref();
  }

  #serial(f: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(f, f);
    this.#chain = next.catch(() => {});
    return this.#chain;
  }

  async #poll(): Promise<void> {
    if (this.#closed) return;
    let e;
    try {
      e = await this.#o.cluster.getConfig(this.#o.name);
    } catch (err) {
      const why = (err as Error).message;
      if (this.#readError === undefined) this.#o.log(`configuration ${this.#o.name}: cannot read the cluster store (${why}); still running ${this.#running()}`);
      this.#readError = why;
      return;
    }
    if (this.#readError !== undefined) {
      this.#o.log(`configuration ${this.#o.name}: the cluster store answers again`);
      this.#readError = undefined;
    }
    if (e === undefined || e.version <= this.#judged) return;
    await this.#consider(e.value, e.version);
  }

  /** What this node runs, for log lines. */
  #running(): string {
    return this.#version === undefined ? "the config file's ai section" : `version ${this.#version}`;
  }

  /** The entry checked with the file's schema and resolved against this node's environment; undefined (logged) when refused. */
  #validate(value: unknown, version: number): ResolvedAI | undefined {
    const where = `configuration ${this.#o.name} version ${version}`;
    let entry: ClusterEntry;
    try {
      entry = parseClusterEntry(value, where);
      return resolveAISection(entry.ai, this.#o.env ?? process.env, where).ai;
    } catch (err) {
      this.#refuse(version, err);
      return undefined;
    }
  }

  #refuse(version: number, err: unknown): void {
    const issues = issuesOf(err);
    this.#rejected = { version, at: Date.now(), issues };
    this.#o.log(
      `configuration ${this.#o.name}: version ${version} rejected; still running ${this.#running()}\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`,
    );
  }

  async #consider(value: unknown, version: number): Promise<void> {
    this.#judged = Math.max(this.#judged, version);
    const ai = this.#validate(value, version);
    if (ai === undefined || this.#closed) return;
    try {
      await this.#apply!(ai, version);
    } catch (err) {
      this.#refuse(version, err);
      return;
    }
    this.#applied(version, true);
  }

  #applied(version: number, reload: boolean): void {
    const before = this.#running();
    this.#version = version;
    this.#appliedAt = Date.now();
    if (reload) this.#o.log(`configuration ${this.#o.name}: reloaded version ${version} (was ${before})`);
    this.#record(version);
  }

  /** Records the applied version in the registry: a watch open until its first callback (see the top of the file). */
  #record(version: number): void {
    this.#stopWatch?.();
    let stop: (() => void) | undefined;
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stop?.();
      if (this.#stopWatch === end) this.#stopWatch = undefined;
    };
    const timer = setTimeout(end, RECORD_WATCH_MS);
    timer.unref();
    this.#stopWatch = end;
    stop = this.#o.cluster.watchConfig(this.#o.name, (value, v) => {
      // Once: later versions are the poll's to judge.
      const first = !done;
      end();
      if (!first || v <= this.#judged) return;
      this.#o.log(`configuration ${this.#o.name}: version ${v} arrived while version ${version} was being recorded; the registry reports ${v} until it is judged`);
      void this.#serial(() => this.#consider(value, v));
    });
    if (done) stop();
  }
}

// ---- /api/cluster ----------------------------------------------------------------------

/** GET /api/cluster: the registry's live nodes and what this node runs. */
export function clusterRoute(bus: Bus, sync: ConfigSync | undefined): () => Promise<{ status: number; body: unknown }> {
  return async () => {
    const cluster = bus.cluster;
    if (cluster === undefined) {
      return {
        status: 404,
        body: { error: { message: 'this node runs an in-memory bus: set bus.transport (or MYELIN_BUS_TRANSPORT) to join a cluster', type: 'invalid_request_error', code: 'not_found' } },
      };
    }
    let nodes: unknown;
    try {
      nodes = await cluster.nodes();
    } catch (err) {
      return { status: 503, body: { error: { message: `the cluster store does not answer: ${(err as Error).message}`, type: 'server_error', code: 'ERR_TRANSPORT_UNAVAILABLE' } } };
    }
    const t = bus.stats().transport;
    return {
      status: 200,
      body: {
        node: { id: cluster.id, transport: t?.kind, connected: t?.connected, config: sync?.state() ?? null },
        nodes,
      },
    };
  };
}
