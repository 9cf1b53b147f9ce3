// AIClient options: their types, defaults and validation. Every bad option throws
// ERR_INVALID_ARGUMENT naming it; a key is never quoted in a message. Unknown option
// names are refused too (a typo such as `retires` must not silently mean "defaults").
// Durations that arm a timer stop at TIMER_MAX_MS, where Node would fire at once
// instead; TTLs and windows, which are only compared with clocks, at MAX_SAFE_INTEGER.
import { invalidArgument } from '../../errors.js';
import { isMetricsSink, type MetricsSink } from '../../internal/metrics-sink.js';

export type ProviderKind = 'openai' | 'anthropic' | 'ollama';

export interface ProviderConfig {
  /** The name used in targets ('name/model'), stats and prices. */
  name: string;
  kind: ProviderKind;
  /** Defaults: openai https://api.openai.com/v1, anthropic https://api.anthropic.com, ollama http://127.0.0.1:11434. */
  baseURL?: string;
  apiKey?: string;
  /** Static headers sent with every request to this provider. */
  headers?: Record<string, string>;
  /** Connections kept to this provider's origin. Default 16. */
  connections?: number;
  /** Anthropic only: the anthropic-version header. Default 2023-06-01. */
  anthropicVersion?: string;
  /** Anthropic only: max_tokens when a request gives none (the API requires one). Default 1024. */
  defaultMaxTokens?: number;
}

export type Strategy = 'fallback' | 'weighted' | 'least-latency';

export interface ModelRoute {
  strategy?: Strategy;
  targets: Array<string | { target: string; weight?: number }>;
  hedgeAfterMs?: number;
}

export interface RetryOptions {
  /** Attempts per target, the first one included. Default 3. */
  attempts?: number;
  minDelayMs?: number;
  maxDelayMs?: number;
  /** Everything (all attempts, all targets, waits included) fits inside this. Default 60000. */
  deadlineMs?: number;
}

export interface TimeoutOptions {
  /** One non-streamed attempt, request to last byte. Default 60000. */
  requestMs?: number;
  /** Request to the first content of a stream. Default 20000. */
  firstTokenMs?: number;
  /** Longest silence between content events of a stream; keep-alives do not count. Default 15000. */
  idleMs?: number;
  /** TCP/TLS connect. Default 10000. */
  connectMs?: number;
}

export interface Price {
  inputPerMTok: number;
  outputPerMTok: number;
}

export interface BreakerOptions {
  failureRate?: number;
  minRequests?: number;
  windowMs?: number;
  openMs?: number;
}

export interface LimitOptions {
  rpm?: number;
  tpm?: number;
  /**
   * With a Redis `store`, what a call does when the store fails: 'open' (default) goes
   * ahead unlimited by this limit, 'closed' is refused with ERR_AI_RATE_LIMITED (the
   * store error as its cause). Either way stats().limits counts it and
   * `myelin:ai:limits:store-error` announces each outage. Without a store, unused.
   * Open by default because the upstream enforces its own limits (a 429, retried after
   * its retry-after): losing the store then costs some 429s, where 'closed' would turn
   * a Redis outage into an outage of every limited call. Choose 'closed' for a limit
   * that must hold (a spend cap shared by many replicas).
   */
  onStoreError?: 'open' | 'closed';
}

export interface CacheOptions {
  ttlMs?: number;
  maxEntries?: number;
}

export interface StoreOptions {
  /** redis:// URL; cache entries, rate-limit buckets and sessions live there. */
  redis: string;
  /** Key prefix for everything the client writes. Default 'myelin:'. */
  prefix?: string;
}

export interface AIClientOptions {
  providers: ProviderConfig[];
  models?: Record<string, ModelRoute | string>;
  retry?: RetryOptions;
  timeouts?: TimeoutOptions;
  prices?: Record<string, Price>;
  /** Largest non-streamed response body in bytes; bigger ones fail with ERR_AI_UPSTREAM. Default 64 MiB. */
  maxResponseSize?: number;
  // Accepted and validated here, wired by the resilience layer.
  breaker?: BreakerOptions;
  limits?: Record<string, LimitOptions>;
  cache?: CacheOptions | false;
  store?: StoreOptions;
  /** Sessions are forgotten this long after their last turn. Default 86 400 000 (a day). */
  sessionTtlMs?: number;
  /**
   * Where the client records its metrics (client-metrics.ts lists them): a Metrics
   * instance or anything with its counter(), gauge() and histogram(). A sink that
   * throws never fails a call (stats().metrics.errors counts it).
   */
  metrics?: MetricsSink;
}

export interface ResolvedProvider {
  name: string;
  kind: ProviderKind;
  /** Origin, e.g. http://127.0.0.1:9100: one connection pool each. */
  origin: string;
  /** The base URL's path without a trailing slash ('' or '/v1'). */
  basePath: string;
  /** The base URL's query string ('' or '?...'), kept for gateways that need one (Azure api-version). */
  query: string;
  apiKey: string | undefined;
  headers: Record<string, string>;
  connections: number;
  anthropicVersion: string;
  defaultMaxTokens: number;
}

export interface ResolvedRetry {
  attempts: number;
  minDelayMs: number;
  maxDelayMs: number;
  deadlineMs: number;
}

export interface ResolvedTimeouts {
  requestMs: number;
  firstTokenMs: number;
  idleMs: number;
  connectMs: number;
}

export interface ResolvedRoute {
  strategy: Strategy;
  targets: Array<{ target: string; weight: number }>;
  hedgeAfterMs: number | undefined;
}

export interface ResolvedOptions {
  providers: Map<string, ResolvedProvider>;
  models: Map<string, ResolvedRoute>;
  retry: ResolvedRetry;
  timeouts: ResolvedTimeouts;
  prices: Map<string, Price>;
  maxResponseSize: number;
  breaker: BreakerOptions | undefined;
  limits: Record<string, LimitOptions> | undefined;
  cache: CacheOptions | false | undefined;
  store: StoreOptions | undefined;
  sessionTtlMs: number;
  metrics: MetricsSink | undefined;
}

const DEFAULT_BASE: Record<ProviderKind, string> = {
  openai: 'https://api.openai.com/v1',
  anthropic: 'https://api.anthropic.com',
  ollama: 'http://127.0.0.1:11434',
};

const KINDS: readonly ProviderKind[] = ['openai', 'anthropic', 'ollama'];
const STRATEGIES: readonly Strategy[] = ['fallback', 'weighted', 'least-latency'];
const NAME = /^[A-Za-z0-9_.-]+$/;

/** Headers a caller may not set: they carry keys or framing that the client owns. */
export const RESERVED_HEADERS = new Set([
  'authorization',
  'x-api-key',
  'api-key',
  'anthropic-version',
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'upgrade',
  'proxy-authorization',
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The longest delay setTimeout honours (2^31 - 1 ms, about 24.8 days). */
export const TIMER_MAX_MS = 2_147_483_647;
const TTL_MAX_MS = Number.MAX_SAFE_INTEGER;

/** Refuses any own key of `o` not in `names`, naming it and the known ones. */
export function onlyKnown(where: string, o: Record<string, unknown>, names: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!names.includes(k)) {
      const shown = k.length > 40 ? `${k.slice(0, 40)}...` : k;
      throw invalidArgument(`${where}: unknown option '${shown}' (known: ${names.join(', ')})`);
    }
  }
}

function num(where: string, v: unknown, def: number, o: { min?: number; max?: number; integer?: boolean; above?: number } = {}): number {
  if (v === undefined) return def;
  const bad =
    typeof v !== 'number' ||
    !Number.isFinite(v) ||
    (o.integer === true && !Number.isSafeInteger(v)) ||
    (o.min !== undefined && v < o.min) ||
    (o.above !== undefined && v <= o.above) ||
    (o.max !== undefined && v > o.max);
  if (bad) {
    const range = [o.min !== undefined ? `>= ${o.min}` : '', o.above !== undefined ? `> ${o.above}` : '', o.max !== undefined ? `<= ${o.max}` : '']
      .filter(Boolean)
      .join(' and ');
    throw invalidArgument(`AIClient: ${where} must be a finite ${o.integer ? 'integer' : 'number'}${range ? ` ${range}` : ''}, got ${typeof v === 'number' ? String(v) : typeof v}`);
  }
  return v as number;
}

/** Validates extra headers (provider or request); never quotes a value, which may be secret. */
export function checkHeaders(where: string, h: unknown): Record<string, string> {
  if (h === undefined) return {};
  if (!isObject(h)) throw invalidArgument(`${where} must be an object of header names to string values`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) throw invalidArgument(`${where}: invalid header name`);
    if (typeof v !== 'string' || /[\r\n\0]/.test(v)) throw invalidArgument(`${where}.${k} must be a string without CR, LF or NUL`);
    const lower = k.toLowerCase();
    if (RESERVED_HEADERS.has(lower)) throw invalidArgument(`${where}: header ${lower} is set by the client and cannot be overridden`);
    out[lower] = v;
  }
  return out;
}

function provider(i: number, p: unknown): ResolvedProvider {
  const where = `AIClient: providers[${i}]`;
  if (!isObject(p)) throw invalidArgument(`${where} must be an object`);
  onlyKnown(where, p, ['name', 'kind', 'baseURL', 'apiKey', 'headers', 'connections', 'anthropicVersion', 'defaultMaxTokens']);
  if (typeof p.name !== 'string' || !NAME.test(p.name)) throw invalidArgument(`${where}.name must be a non-empty string of letters, digits, '_', '.' or '-'`);
  if (typeof p.kind !== 'string' || !KINDS.includes(p.kind as ProviderKind)) {
    throw invalidArgument(`${where}.kind must be one of ${KINDS.join(', ')}`);
  }
  const kind = p.kind as ProviderKind;
  if (p.apiKey !== undefined && (typeof p.apiKey !== 'string' || p.apiKey === '' || /[\r\n\0]/.test(p.apiKey))) {
    throw invalidArgument(`${where}.apiKey must be a non-empty string without CR, LF or NUL`);
  }
  const raw = p.baseURL ?? DEFAULT_BASE[kind];
  if (typeof raw !== 'string') throw invalidArgument(`${where}.baseURL must be a string`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidArgument(`${where}.baseURL must be an absolute http(s) URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidArgument(`${where}.baseURL must be an http(s) URL`);
  // Credentials in a URL end up in logs and error messages; they belong in apiKey.
  if (url.username !== '' || url.password !== '') throw invalidArgument(`${where}.baseURL must not contain credentials; use apiKey`);
  if (url.hash !== '') throw invalidArgument(`${where}.baseURL must not contain a fragment`);
  const anthropicVersion = p.anthropicVersion ?? '2023-06-01';
  if (typeof anthropicVersion !== 'string' || !/^[\w.-]+$/.test(anthropicVersion)) throw invalidArgument(`${where}.anthropicVersion must be a version string`);
  return {
    name: p.name,
    kind,
    origin: url.origin,
    basePath: url.pathname.replace(/\/+$/, ''),
    query: url.search,
    apiKey: p.apiKey as string | undefined,
    headers: checkHeaders(`${where}.headers`, p.headers),
    connections: num(`${where}.connections`, p.connections, 16, { min: 1, max: 4096, integer: true }),
    anthropicVersion,
    defaultMaxTokens: num(`${where}.defaultMaxTokens`, p.defaultMaxTokens, 1024, { min: 1, integer: true }),
  };
}

/** Splits 'provider/model' at the first slash (model ids may contain slashes). */
export function splitTarget(t: string): { provider: string; model: string } | undefined {
  const k = t.indexOf('/');
  if (k <= 0 || k === t.length - 1) return undefined;
  return { provider: t.slice(0, k), model: t.slice(k + 1) };
}

function route(name: string, r: unknown, providers: Map<string, ResolvedProvider>): ResolvedRoute {
  const where = `AIClient: models.${name}`;
  const checkTarget = (t: unknown, w: string): string => {
    const s = typeof t === 'string' ? splitTarget(t) : undefined;
    if (!s) throw invalidArgument(`${w} must be a 'provider/model' string`);
    if (!providers.has(s.provider)) throw invalidArgument(`${w} names provider '${s.provider}', which is not configured`);
    return t as string;
  };
  if (typeof r === 'string') return { strategy: 'fallback', targets: [{ target: checkTarget(r, where), weight: 1 }], hedgeAfterMs: undefined };
  if (!isObject(r)) throw invalidArgument(`${where} must be a 'provider/model' string or { strategy, targets }`);
  onlyKnown(where, r, ['strategy', 'targets', 'hedgeAfterMs']);
  const strategy = (r.strategy ?? 'fallback') as Strategy;
  if (!STRATEGIES.includes(strategy)) throw invalidArgument(`${where}.strategy must be one of ${STRATEGIES.join(', ')}`);
  const hedgeAfterMs = r.hedgeAfterMs === undefined ? undefined : num(`models.${name}.hedgeAfterMs`, r.hedgeAfterMs, 0, { min: 0, max: TIMER_MAX_MS });
  if (!Array.isArray(r.targets) || r.targets.length === 0) throw invalidArgument(`${where}.targets must be a non-empty array`);
  const targets = r.targets.map((t: unknown, i: number) => {
    const w = `${where}.targets[${i}]`;
    if (typeof t === 'string') return { target: checkTarget(t, w), weight: 1 };
    if (!isObject(t)) throw invalidArgument(`${w} must be a 'provider/model' string or { target, weight }`);
    onlyKnown(w, t, ['target', 'weight']);
    return { target: checkTarget(t.target, `${w}.target`), weight: num(`${w}.weight`, t.weight, 1, { above: 0 }) };
  });
  return { strategy, targets, hedgeAfterMs };
}

function optionalObject<T>(name: string, v: unknown, check: (o: Record<string, unknown>) => void, names?: readonly string[]): T | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v)) throw invalidArgument(`AIClient: ${name} must be an object`);
  if (names) onlyKnown(`AIClient: ${name}`, v, names);
  check(v);
  return Object.freeze({ ...v }) as T;
}

export function resolveOptions(o: unknown): ResolvedOptions {
  if (!isObject(o)) throw invalidArgument('AIClient: options must be an object');
  onlyKnown('AIClient: options', o, [
    'providers',
    'models',
    'retry',
    'timeouts',
    'prices',
    'maxResponseSize',
    'breaker',
    'limits',
    'cache',
    'store',
    'sessionTtlMs',
    'metrics',
  ]);
  if (!Array.isArray(o.providers) || o.providers.length === 0) throw invalidArgument('AIClient: providers must be a non-empty array');
  const providers = new Map<string, ResolvedProvider>();
  o.providers.forEach((p: unknown, i: number) => {
    const r = provider(i, p);
    if (providers.has(r.name)) throw invalidArgument(`AIClient: providers[${i}].name '${r.name}' is used twice`);
    providers.set(r.name, r);
  });

  const models = new Map<string, ResolvedRoute>();
  if (o.models !== undefined) {
    if (!isObject(o.models)) throw invalidArgument('AIClient: models must be an object of alias to route');
    for (const [name, r] of Object.entries(o.models)) {
      if (name.includes('/')) throw invalidArgument(`AIClient: models.${name}: an alias cannot contain '/' (it would shadow a 'provider/model' target)`);
      models.set(name, route(name, r, providers));
    }
  }

  const ro = o.retry === undefined ? {} : o.retry;
  if (!isObject(ro)) throw invalidArgument('AIClient: retry must be an object');
  onlyKnown('AIClient: retry', ro, ['attempts', 'minDelayMs', 'maxDelayMs', 'deadlineMs']);
  const retry: ResolvedRetry = {
    attempts: num('retry.attempts', ro.attempts, 3, { min: 1, max: 100, integer: true }),
    minDelayMs: num('retry.minDelayMs', ro.minDelayMs, 200, { min: 0, max: TIMER_MAX_MS }),
    maxDelayMs: num('retry.maxDelayMs', ro.maxDelayMs, 8000, { min: 0, max: TIMER_MAX_MS }),
    deadlineMs: num('retry.deadlineMs', ro.deadlineMs, 60_000, { above: 0, max: TIMER_MAX_MS }),
  };
  if (retry.maxDelayMs < retry.minDelayMs) throw invalidArgument('AIClient: retry.maxDelayMs must be >= retry.minDelayMs');

  const to = o.timeouts === undefined ? {} : o.timeouts;
  if (!isObject(to)) throw invalidArgument('AIClient: timeouts must be an object');
  onlyKnown('AIClient: timeouts', to, ['requestMs', 'firstTokenMs', 'idleMs', 'connectMs']);
  const timeouts: ResolvedTimeouts = {
    requestMs: num('timeouts.requestMs', to.requestMs, 60_000, { above: 0, max: TIMER_MAX_MS }),
    firstTokenMs: num('timeouts.firstTokenMs', to.firstTokenMs, 20_000, { above: 0, max: TIMER_MAX_MS }),
    idleMs: num('timeouts.idleMs', to.idleMs, 15_000, { above: 0, max: TIMER_MAX_MS }),
    connectMs: num('timeouts.connectMs', to.connectMs, 10_000, { above: 0, max: TIMER_MAX_MS }),
  };

  const prices = new Map<string, Price>();
  if (o.prices !== undefined) {
    if (!isObject(o.prices)) throw invalidArgument("AIClient: prices must be an object of 'provider/model' to { inputPerMTok, outputPerMTok }");
    for (const [t, p] of Object.entries(o.prices)) {
      if (!splitTarget(t)) throw invalidArgument(`AIClient: prices key '${t}' must be 'provider/model'`);
      if (!isObject(p)) throw invalidArgument(`AIClient: prices['${t}'] must be { inputPerMTok, outputPerMTok }`);
      onlyKnown(`AIClient: prices['${t}']`, p, ['inputPerMTok', 'outputPerMTok']);
      prices.set(t, {
        inputPerMTok: num(`prices['${t}'].inputPerMTok`, p.inputPerMTok, Number.NaN, { min: 0 }),
        outputPerMTok: num(`prices['${t}'].outputPerMTok`, p.outputPerMTok, Number.NaN, { min: 0 }),
      });
      const got = prices.get(t)!;
      if (Number.isNaN(got.inputPerMTok) || Number.isNaN(got.outputPerMTok)) {
        throw invalidArgument(`AIClient: prices['${t}'] needs both inputPerMTok and outputPerMTok`);
      }
    }
  }

  const breaker = optionalObject<BreakerOptions>(
    'breaker',
    o.breaker,
    (b) => {
      num('breaker.failureRate', b.failureRate, 0.5, { above: 0, max: 1 });
      num('breaker.minRequests', b.minRequests, 20, { min: 1, integer: true });
      num('breaker.windowMs', b.windowMs, 30_000, { above: 0, max: TTL_MAX_MS });
      num('breaker.openMs', b.openMs, 15_000, { above: 0, max: TTL_MAX_MS });
    },
    ['failureRate', 'minRequests', 'windowMs', 'openMs'],
  );
  const limits = optionalObject<Record<string, LimitOptions>>('limits', o.limits, (l) => {
    for (const [name, v] of Object.entries(l)) {
      // A limit nobody's calls pass through would be a silent no-op (a typo, a renamed provider).
      const owner = providers.has(name) ? name : splitTarget(name)?.provider;
      if (owner === undefined || !providers.has(owner)) {
        throw invalidArgument(`AIClient: limits['${name}'] names no configured provider: a key is a provider name or 'provider/model'`);
      }
      if (!isObject(v)) throw invalidArgument(`AIClient: limits.${name} must be { rpm?, tpm?, onStoreError? }`);
      onlyKnown(`AIClient: limits.${name}`, v, ['rpm', 'tpm', 'onStoreError']);
      num(`limits.${name}.rpm`, v.rpm, 1, { above: 0 });
      num(`limits.${name}.tpm`, v.tpm, 1, { above: 0 });
      if (v.onStoreError !== undefined && v.onStoreError !== 'open' && v.onStoreError !== 'closed') {
        throw invalidArgument(`AIClient: limits.${name}.onStoreError must be 'open' or 'closed'`);
      }
    }
  });
  let cache: CacheOptions | false | undefined;
  if (o.cache === false) cache = false;
  else {
    cache = optionalObject<CacheOptions>(
      'cache',
      o.cache,
      (c) => {
        num('cache.ttlMs', c.ttlMs, 1, { above: 0, max: TTL_MAX_MS });
        num('cache.maxEntries', c.maxEntries, 1, { min: 1, integer: true });
      },
      ['ttlMs', 'maxEntries'],
    );
  }
  const store = optionalObject<StoreOptions>(
    'store',
    o.store,
    (s) => {
      if (typeof s.redis !== 'string' || s.redis === '') throw invalidArgument('AIClient: store.redis must be a redis:// URL string');
      if (s.prefix !== undefined && typeof s.prefix !== 'string') throw invalidArgument('AIClient: store.prefix must be a string');
    },
    ['redis', 'prefix'],
  );
  if (o.metrics !== undefined && !isMetricsSink(o.metrics)) {
    throw invalidArgument('AIClient: metrics must be a Metrics instance or a sink with counter(), gauge() and histogram() methods');
  }
  return {
    providers,
    models,
    retry,
    timeouts,
    prices,
    maxResponseSize: num('maxResponseSize', o.maxResponseSize, 64 * 1024 * 1024, { min: 1, integer: true }),
    breaker,
    limits,
    cache,
    store,
    sessionTtlMs: num('sessionTtlMs', o.sessionTtlMs, 86_400_000, { above: 0, max: TTL_MAX_MS }),
    metrics: o.metrics as MetricsSink | undefined,
  };
}
