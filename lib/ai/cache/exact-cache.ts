// The exact-match response cache's key and policy (shared/AI-WIRE.md failure case 7).
//
// The key is a sha256 over a canonical serialisation of the request. It is built from
// a DENY list, not an allow list: every request field except the few that cannot
// change the output goes in, so a parameter added later (by us or by a provider's
// `providerOptions`) can only cause misses, never a wrong answer. Omitted sampling
// parameters are filled with the provider's default, so `temperature: 1` and an
// omitted temperature share an entry on OpenAI but not on Ollama (0.8).
import { createHash } from 'node:crypto';
import { invalidArgument } from '../../errors.js';

export { MemoryCache, type MemoryCacheOptions } from './memory-cache.js';
export { RedisCache, type RedisCacheOptions } from './redis-cache.js';
export { SingleFlight } from './single-flight.js';
export { StreamRecorder, replay, type CachedEntry, type CachePart, type StreamRecorderOptions } from './stream-replay.js';

/** Fields that steer delivery, accounting or caching, never the model's output. */
const NOT_OUTPUT = new Set([
  'model', // replaced by the resolved model
  'signal',
  'cache',
  'stream',
  'streamOptions',
  'user',
  'metadata',
  'timeoutMs',
  'timeouts',
  'deadline',
  'deadlineMs',
  'priority',
  'hedgeAfterMs',
  'retry',
  'requestId',
  'sessionId',
  'onPart',
]);

/** Spellings of one parameter that providers treat alike, mapped to one name. */
const ALIASES: Record<string, string> = {
  maxCompletionTokens: 'maxTokens',
  stopSequences: 'stop',
};

/** Sampling defaults per provider kind, used when the request omits the parameter. */
export const PROVIDER_DEFAULTS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  openai: { temperature: 1, topP: 1 },
  anthropic: { temperature: 1 },
  ollama: { temperature: 0.8, topP: 0.9 },
};

export interface CacheKeyOptions {
  /** The `provider/model` that will serve (or served) the request, never an alias. */
  resolvedModel: string;
  /** Tenant or user scope: entries never cross partitions. */
  partition?: string;
  /** Provider kind ('openai' | 'anthropic' | 'ollama'), selects PROVIDER_DEFAULTS. */
  provider?: string;
  /** Overrides or extends the kind's defaults (e.g. a vLLM server's generation config). */
  providerDefaults?: Readonly<Record<string, unknown>>;
}

export interface CacheableRequest {
  temperature?: number;
  cache?: boolean;
  [field: string]: unknown;
}

const camel = (k: string): string => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** The request's output-changing fields, names normalised and defaults filled in. */
export function outputParameters(request: Readonly<Record<string, unknown>>, defaults: Readonly<Record<string, unknown>> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [rawKey, value] of Object.entries(request)) {
    let key = camel(rawKey);
    key = ALIASES[key] ?? key;
    if (NOT_OUTPUT.has(key) || value === undefined) continue;
    out[key] = key === 'stop' && typeof value === 'string' ? [value] : value;
  }
  for (const [key, value] of Object.entries(defaults)) if (out[key] === undefined) out[key] = value;
  return out;
}

/**
 * Deterministic text for a JSON-like value: object keys sorted, undefined/functions
 * dropped (as JSON does), -0 written as 0, NaN and +-Infinity kept distinct, byte
 * arrays as base64. Throws ERR_INVALID_ARGUMENT on a cycle.
 */
export function canonicalize(value: unknown): string {
  const stack = new Set<object>();
  const walk = (v: unknown): string | undefined => {
    switch (typeof v) {
      case 'string':
        return JSON.stringify(v);
      case 'number':
        return Number.isFinite(v) ? JSON.stringify(v) : String(v);
      case 'boolean':
        return v ? 'true' : 'false';
      case 'bigint':
        return `${v}n`;
      case 'undefined':
      case 'function':
      case 'symbol':
        return undefined;
    }
    if (v === null) return 'null';
    const o = v as object;
    if (stack.has(o)) throw invalidArgument('cache key: the request contains a cycle');
    if (ArrayBuffer.isView(o)) return `b64"${Buffer.from(o.buffer, o.byteOffset, o.byteLength).toString('base64')}"`;
    if (typeof (o as { toJSON?: unknown }).toJSON === 'function') return walk((o as { toJSON(): unknown }).toJSON());
    stack.add(o);
    let s: string;
    if (Array.isArray(o)) {
      s = `[${o.map((x) => walk(x) ?? 'null').join(',')}]`;
    } else if (o instanceof Map) {
      s = walk(Object.fromEntries(o))!;
    } else {
      const parts: string[] = [];
      for (const k of Object.keys(o).sort()) {
        const w = walk((o as Record<string, unknown>)[k]);
        if (w !== undefined) parts.push(`${JSON.stringify(k)}:${w}`);
      }
      s = `{${parts.join(',')}}`;
    }
    stack.delete(o);
    return s;
  };
  return walk(value) ?? 'null';
}

function defaultsFor(options: Pick<CacheKeyOptions, 'provider' | 'providerDefaults'>): Readonly<Record<string, unknown>> {
  const kind = options.provider === undefined ? undefined : PROVIDER_DEFAULTS[options.provider];
  return { ...kind, ...options.providerDefaults };
}

/** `sha256:<hex>` over the resolved model, the partition and the output parameters. */
export function canonicalKey(request: Readonly<Record<string, unknown>>, options: CacheKeyOptions): string {
  if (request === null || typeof request !== 'object') throw invalidArgument('cache key: request must be an object');
  if (typeof options?.resolvedModel !== 'string' || options.resolvedModel === '') {
    throw invalidArgument('cache key: resolvedModel must be a non-empty provider/model string');
  }
  const text = canonicalize({
    v: 1,
    model: options.resolvedModel,
    partition: options.partition ?? null,
    params: outputParameters(request, defaultsFor(options)),
  });
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

export interface CacheableOptions {
  /** The client's or caller's explicit opt-in (as `cache: true` on the request). */
  force?: boolean;
  provider?: string;
  providerDefaults?: Readonly<Record<string, unknown>>;
}

/**
 * Whether to look up and store this request. `cache: false` never caches; `cache: true`
 * (or `force`) always does; otherwise only deterministic requests are cached: an
 * effective temperature of 0 (the provider's default counts when it is omitted; with
 * neither, the request is not cached).
 */
export function isCacheable(request: Readonly<CacheableRequest>, options: CacheableOptions = {}): boolean {
  if (request.cache === false) return false;
  if (request.cache === true || options.force === true) return true;
  const t = request.temperature ?? defaultsFor(options).temperature;
  return typeof t === 'number' && t <= 0;
}
