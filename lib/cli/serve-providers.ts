// Which AI providers `myelin serve` uses, in order:
//   1. the configured ones (config file, OPENAI_API_KEY, ANTHROPIC_API_KEY, ...);
//   2. else an OpenAI-compatible server on this machine, if one answers GET /v1/models
//      quickly (Ollama at 127.0.0.1:11434, or OLLAMA_HOST);
//   3. else the built-in upstream simulator, started in this process on a loopback port,
//      said plainly in the log and marked `simulated` (the gateway's /v1/models says so).
// Each choice also yields aliases, so that `model: 'default'` and the bare model ids the
// server lists ('llama3.2', 'gpt-4o-mini') name a target.
import { Agent, request } from 'undici';
import type { ModelRoute, ProviderConfig, ProviderKind } from '../ai/client/options.js';
import { UpstreamSimulator } from '../ai/simulator/index.js';

/** What `default` means for a configured provider of each kind, unless the config says. */
export const DEFAULT_MODEL: Record<ProviderKind, string> = {
  openai: 'gpt-4o-mini',
  anthropic: 'claude-sonnet-4-0',
  ollama: 'llama3.2',
};

/** The models the built-in simulator lists, each also a bare alias; the first is `default`. */
export const SIMULATOR_MODELS: readonly string[] = ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small', 'claude-sonnet-4', 'llama3.2'];

/** How long the local-server probe waits: the whole GET, connect included. */
export const PROBE_TIMEOUT_MS = 300;
/** A /v1/models answer longer than this is not a model list. */
const PROBE_MAX_BYTES = 1 << 20;

export type ProviderSource = 'configured' | 'local' | 'simulator';

export interface DiscoverOptions {
  /** Providers from the config file and env; non-empty means no discovery. */
  providers: ProviderConfig[];
  /** Aliases from the config; they win over the ones made here. */
  models?: Record<string, ModelRoute | string>;
  /** The local server's origin. Default http://127.0.0.1:11434. */
  ollamaURL?: string;
  probeTimeoutMs?: number;
  /** Settings of the built-in simulator, when it is used. */
  simulator?: { latencyMs?: number; tokensPerS?: number };
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
}

export interface Discovered {
  providers: ProviderConfig[];
  /** The config's aliases plus `default` and the discovered models' bare ids. */
  models: Record<string, ModelRoute | string>;
  source: ProviderSource;
  /** True when answers come from the built-in simulator. */
  simulated: boolean;
  /** The model ids found (local server or simulator); empty for configured providers. */
  discoveredModels: string[];
  /** The in-process simulator, when it runs (closed by close()). */
  simulator?: UpstreamSimulator;
  /** Stops what discovery started (the simulator). Idempotent. */
  close(): Promise<void>;
}

/** host:port of an origin, for log lines. */
function hostPort(origin: string): string {
  try {
    return new URL(origin).host;
  } catch {
    return origin;
  }
}

/** Bare aliases for `provider/<id>`: `default` first, then each id an alias can name. */
function aliasesFor(provider: string, ids: string[], configured: Record<string, ModelRoute | string>): Record<string, ModelRoute | string> {
  const out: Record<string, ModelRoute | string> = {};
  const chat = ids.find((id) => !/embed/i.test(id)) ?? ids[0];
  if (chat !== undefined) out.default = `${provider}/${chat}`;
  // An alias cannot contain '/' (it would shadow 'provider/model'); such ids stay reachable as targets.
  for (const id of ids) if (!id.includes('/') && !(id in out)) out[id] = `${provider}/${id}`;
  return { ...out, ...configured };
}

/**
 * Asks `origin` for its OpenAI model list. Returns the ids, or undefined when nothing
 * answers in time or the answer is not a model list (with the reason, for the log).
 */
export async function probeOpenAICompatible(origin: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<{ ids: string[] } | { why: string }> {
  const agent = new Agent({ connect: { timeout: timeoutMs }, pipelining: 0 });
  try {
    const res = await request(`${origin}/v1/models`, {
      method: 'GET',
      dispatcher: agent,
      signal: AbortSignal.timeout(timeoutMs),
      headers: { accept: 'application/json' },
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return { why: `answered ${res.statusCode}` };
    }
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > PROBE_MAX_BYTES) return { why: 'answered with more than a model list' };
      chunks.push(chunk as Buffer);
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data?: unknown };
    if (!Array.isArray(body.data)) return { why: 'answered, but not with an OpenAI model list' };
    const ids = body.data.map((m) => (m as { id?: unknown })?.id).filter((id): id is string => typeof id === 'string' && id !== '');
    return { ids };
  } catch (err) {
    const e = err as { name?: string; code?: string };
    if (e.name === 'SyntaxError') return { why: 'answered, but not with JSON' };
    if (e.name === 'TimeoutError' || e.code === 'UND_ERR_CONNECT_TIMEOUT' || e.name === 'AbortError') return { why: `did not answer within ${timeoutMs} ms` };
    return { why: e.code === 'ECONNREFUSED' ? 'nothing listening' : (e.code ?? 'unreachable') };
  } finally {
    await agent.destroy().catch(() => {});
  }
}

export async function discoverProviders(opts: DiscoverOptions): Promise<Discovered> {
  const log = opts.log ?? (() => {});
  const configuredModels = opts.models ?? {};
  const none = async () => {};

  if (opts.providers.length > 0) {
    const models: Record<string, ModelRoute | string> = {};
    const targets = opts.providers.map((p) => `${p.name}/${DEFAULT_MODEL[p.kind]}`);
    models.default = targets.length === 1 ? targets[0] : { strategy: 'fallback', targets };
    log(`AI: providers ${opts.providers.map((p) => `${p.name} (${p.kind}${p.baseURL ? `, ${p.baseURL}` : ''})`).join(', ')}`);
    return { providers: opts.providers, models: { ...models, ...configuredModels }, source: 'configured', simulated: false, discoveredModels: [], close: none };
  }

  const origin = (opts.ollamaURL ?? 'http://127.0.0.1:11434').replace(/\/+$/, '');
  const probe = await probeOpenAICompatible(origin, opts.probeTimeoutMs ?? PROBE_TIMEOUT_MS);
  if ('ids' in probe && probe.ids.length > 0) {
    const provider: ProviderConfig = { name: 'local', kind: 'openai', baseURL: `${origin}/v1` };
    log(`AI: no provider configured; using the OpenAI-compatible server at ${origin}/v1 (models: ${probe.ids.join(', ')})`);
    return {
      providers: [provider],
      models: aliasesFor('local', probe.ids, configuredModels),
      source: 'local',
      simulated: false,
      discoveredModels: probe.ids,
      close: none,
    };
  }
  const at = hostPort(origin);
  if ('ids' in probe) log(`AI: the server at ${at} lists no models (with Ollama: ollama pull llama3.2)`);
  else if (probe.why !== 'nothing listening' && !probe.why.startsWith('did not answer')) log(`AI: something at ${at} ${probe.why}; not using it`);

  const ids = [...SIMULATOR_MODELS];
  const sim = new UpstreamSimulator({ latencyMs: opts.simulator?.latencyMs, tokensPerS: opts.simulator?.tokensPerS, models: ids });
  const { url } = await sim.listen(0, '127.0.0.1');
  log(`AI: no provider configured and none found at ${at}; using the built-in simulator (answers are simulated)`);
  let closing: Promise<void> | undefined;
  return {
    providers: [{ name: 'simulator', kind: 'openai', baseURL: `${url}/v1` }],
    models: aliasesFor('simulator', ids, configuredModels),
    source: 'simulator',
    simulated: true,
    discoveredModels: ids,
    simulator: sim,
    close: () => (closing ??= sim.close()),
  };
}
