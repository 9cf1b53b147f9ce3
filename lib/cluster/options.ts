// Validation of a cluster bus's options: the `transport` object of `new Bus(...)`, and
// the options a publish or a subscription takes only on a cluster transport (`id`,
// `ackWaitMs`, `maxDeliver`). Unknown names are rejected, as everywhere in the bus.
import { invalidArgument } from '../errors.js';
import { checkOptions, describeType } from '../bus/options.js';

export interface NatsTransportConfig {
  /** The durability the caller needs: a warning when the engine is set up for less. */
  durability?: DurabilityRequest;
  kind: 'nats';
  servers: string | string[];
  /** JetStream stream name (default 'MYELIN'); false: core NATS only, nothing stored. */
  stream?: string | false;
  /** Stream replicas when the bus creates the stream (default 1). */
  replicas?: number;
  /** Stream storage when the bus creates the stream (default 'file'). */
  storage?: 'file' | 'memory';
  /** Stream max age (default 24 h): events older than this are removed, read or not. */
  maxAgeMs?: number;
  dedupeWindowMs?: number;
  connectTimeoutMs?: number;
  ackTimeoutMs?: number;
  heartbeatMs?: number;
  /** This node's address in the registry (default host:pid). */
  address?: string;
  /** Client name shown by the server. */
  name?: string;
}

export interface RedisTransportConfig {
  /** The durability the caller needs: a warning when the engine is set up for less. */
  durability?: DurabilityRequest;
  kind: 'redis';
  url: string;
  /** Key prefix (default 'myelin'). */
  prefix?: string;
  /** Streams per subject prefix (default 8): the unit of per-key order and of a group's work split. */
  partitions?: number;
  /** Approximate MAXLEN per stream (default 1,000,000; 0: never trim). */
  maxLen?: number;
  dedupeWindowMs?: number;
  connectTimeoutMs?: number;
  ackTimeoutMs?: number;
  heartbeatMs?: number;
  address?: string;
}

export type TransportConfig = NatsTransportConfig | RedisTransportConfig;

/**
 * The durability a caller asks for. The bus cannot make an engine more durable than it
 * is set up to be; it compares this with what the engine reports once connected and
 * warns (process warning MYELIN_DURABILITY, stats().transport.durabilityWarnings) where
 * the engine falls short.
 */
export interface DurabilityRequest {
  /** Copies of each event the engine keeps (NATS stream replicas; Redis: 1 + replicas). */
  replicas?: number;
  /** Events survive an engine restart (NATS file storage; Redis AOF or RDB). */
  persistent?: boolean;
  /** Every acknowledged event is on disk (Redis appendfsync always; NATS sync_interval always, which the client cannot see). */
  fsync?: boolean;
}

/** What every transport shares, resolved. */
export interface ResolvedCommon {
  durability: DurabilityRequest | undefined;
  dedupeWindowMs: number;
  connectTimeoutMs: number;
  ackTimeoutMs: number;
  heartbeatMs: number;
  address: string | undefined;
}

export interface ResolvedNats extends ResolvedCommon {
  kind: 'nats';
  servers: string[];
  stream: string | false;
  replicas: number;
  storage: 'file' | 'memory';
  maxAgeMs: number;
  name: string | undefined;
}

export interface ResolvedRedis extends ResolvedCommon {
  kind: 'redis';
  url: string;
  prefix: string;
  partitions: number;
  maxLen: number;
}

const COMMON = ['kind', 'dedupeWindowMs', 'connectTimeoutMs', 'ackTimeoutMs', 'heartbeatMs', 'address', 'durability'];
const NATS_KEYS: ReadonlySet<string> = new Set([...COMMON, 'servers', 'stream', 'replicas', 'storage', 'maxAgeMs', 'name']);
const REDIS_KEYS: ReadonlySet<string> = new Set([...COMMON, 'url', 'prefix', 'partitions', 'maxLen']);

export const CLUSTER_PUBLISH_KEYS: ReadonlySet<string> = new Set(['key', 'priority', 'headers', 'contentType', 'id']);
export const CLUSTER_BATCH_KEYS: ReadonlySet<string> = new Set(['subject', 'data', 'key', 'priority', 'headers', 'contentType', 'id']);
export const CLUSTER_SUBSCRIBE_KEYS: ReadonlySet<string> = new Set(['queue', 'concurrency', 'signal', 'ackWaitMs', 'maxDeliver']);

function int(v: unknown, where: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalidArgument(`${where} must be an integer from ${min} to ${max}, got ${typeof v === 'number' ? String(v) : describeType(v)}`);
  }
  return v;
}

function str(v: unknown, where: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw invalidArgument(`${where} must be a non-empty string, got ${describeType(v)}`);
  return v;
}

function durabilityRequest(v: unknown): DurabilityRequest | undefined {
  if (v === undefined) return undefined;
  const w = 'Bus(options): transport.durability';
  checkOptions(v, w, new Set(['replicas', 'persistent', 'fsync']));
  const d = v as Record<string, unknown>;
  for (const k of ['persistent', 'fsync']) {
    if (d[k] !== undefined && typeof d[k] !== 'boolean') throw invalidArgument(`${w}.${k} must be a boolean, got ${describeType(d[k])}`);
  }
  return {
    replicas: d.replicas === undefined ? undefined : int(d.replicas, `${w}.replicas`, 1, 16, 1),
    persistent: d.persistent as boolean | undefined,
    fsync: d.fsync as boolean | undefined,
  };
}

function common(o: Record<string, unknown>): ResolvedCommon {
  const w = 'Bus(options): transport.';
  return {
    durability: durabilityRequest(o.durability),
    dedupeWindowMs: int(o.dedupeWindowMs, `${w}dedupeWindowMs`, 1, 2 ** 31 - 1, 120_000),
    connectTimeoutMs: int(o.connectTimeoutMs, `${w}connectTimeoutMs`, 1, 2 ** 31 - 1, 5000),
    ackTimeoutMs: int(o.ackTimeoutMs, `${w}ackTimeoutMs`, 1, 2 ** 31 - 1, 5000),
    heartbeatMs: int(o.heartbeatMs, `${w}heartbeatMs`, 100, 2 ** 31 - 1, 2000),
    address: str(o.address, `${w}address`),
  };
}

/** Validates `new Bus({ transport })`'s transport object. */
export function resolveTransport(t: unknown): ResolvedNats | ResolvedRedis {
  if (t === null || typeof t !== 'object' || Array.isArray(t)) {
    throw invalidArgument(`Bus(options): transport must be an object such as { kind: 'nats', servers } or { kind: 'redis', url }, got ${describeType(t)}`);
  }
  const o = t as Record<string, unknown>;
  if (o.kind === 'nats') {
    checkOptions(o, 'Bus(options): transport', NATS_KEYS);
    const raw = o.servers;
    const servers = typeof raw === 'string' ? [raw] : Array.isArray(raw) ? raw : undefined;
    if (servers === undefined || servers.length === 0 || !servers.every((s) => typeof s === 'string' && s !== '')) {
      throw invalidArgument(`Bus(options): transport.servers must be a URL string or a non-empty array of them, such as 'nats://127.0.0.1:4222', got ${describeType(raw)}`);
    }
    const stream = o.stream === undefined ? 'MYELIN' : o.stream;
    if (stream !== false && (typeof stream !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(stream))) {
      throw invalidArgument(`Bus(options): transport.stream must be a JetStream stream name (letters, digits, '_' and '-') or false, got ${typeof stream === 'string' ? `'${stream}'` : describeType(stream)}`);
    }
    const storage = o.storage === undefined ? 'file' : o.storage;
    if (storage !== 'file' && storage !== 'memory') throw invalidArgument(`Bus(options): transport.storage must be 'file' or 'memory', got ${String(storage)}`);
    return {
      kind: 'nats',
      ...common(o),
      servers: servers as string[],
      stream,
      replicas: int(o.replicas, 'Bus(options): transport.replicas', 1, 5, 1),
      storage,
      maxAgeMs: int(o.maxAgeMs, 'Bus(options): transport.maxAgeMs', 1000, Number.MAX_SAFE_INTEGER, 24 * 3600 * 1000),
      name: str(o.name, 'Bus(options): transport.name'),
    };
  }
  if (o.kind === 'redis') {
    checkOptions(o, 'Bus(options): transport', REDIS_KEYS);
    const url = str(o.url, 'Bus(options): transport.url');
    if (url === undefined || !/^rediss?:\/\//.test(url)) throw invalidArgument(`Bus(options): transport.url must be a redis:// or rediss:// URL, got ${describeType(o.url)}`);
    const prefix = o.prefix === undefined ? 'myelin' : str(o.prefix, 'Bus(options): transport.prefix');
    return {
      kind: 'redis',
      ...common(o),
      url,
      prefix: prefix as string,
      partitions: int(o.partitions, 'Bus(options): transport.partitions', 1, 1024, 8),
      maxLen: int(o.maxLen, 'Bus(options): transport.maxLen', 0, Number.MAX_SAFE_INTEGER, 1_000_000),
    };
  }
  throw invalidArgument(`Bus(options): transport.kind must be 'nats' or 'redis', got ${typeof o.kind === 'string' ? `'${o.kind}'` : describeType(o.kind)}`);
}

export interface ClusterSubscribeOptions {
  ackWaitMs: number;
  maxDeliver: number;
}

/** The cluster-only subscription options, resolved. */
export function resolveSubscribe(o: { ackWaitMs?: unknown; maxDeliver?: unknown }): ClusterSubscribeOptions {
  return {
    ackWaitMs: int(o.ackWaitMs, 'subscribe: ackWaitMs', 100, 2 ** 31 - 1, 30_000),
    maxDeliver: int(o.maxDeliver, 'subscribe: maxDeliver', 1, 1_000_000, 5),
  };
}

/** A publish's `id`: a non-empty string of at most 256 characters, or undefined. */
export function checkId(id: unknown, where: string): string | undefined {
  if (id === undefined) return undefined;
  if (typeof id !== 'string' || id === '' || id.length > 256 || /[\r\n]/.test(id)) {
    throw invalidArgument(`${where}: id must be a non-empty string of at most 256 characters without line breaks, got ${describeType(id)}`);
  }
  return id;
}
