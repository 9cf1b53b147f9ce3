// Loads the native addon (a prebuild from prebuilds/, or build/Release) once per
// thread and gives it a typed face. Only lib/ code imports this; the public API never
// exposes native handles directly. This is the shipping addon: the test hooks
// (startProducer, recordNative, failThreadStarts) exist only in the test build, typed
// and loaded by test/native-test-build.ts.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { MyelinError } from '../errors.js';
import { moduleDir } from './here.js';

export interface NativeSpscRing {
  readonly capacity: number;
  push(items: BigUint64Array, count?: number): number;
  pop(out: BigUint64Array): number;
  size(): number;
  markClosed(): void;
  isClosed(): boolean;
  watch(onItems: () => void): void;
  wake(): void;
  unwatch(): void;
  close(): void;
}

export interface NativeSlab {
  alloc(bytes: number): ArrayBuffer;
  release(block: ArrayBuffer): void;
  classSizeFor(bytes: number): number;
  stats(): { chunks: number; bytesReserved: number; blocksInUse: number };
  close(): void;
}

export interface NativeHistogramSnapshot {
  count: number;
  sum: number;
  min: number;
  max: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
}

export interface NativeHistogram {
  readonly id: number;
  acquireShard(): Float64Array;
  releaseShard(shard: Float64Array): void;
  snapshot(): NativeHistogramSnapshot;
  valueAtPercentile(p: number): number;
  reset(): void;
  close(): void;
}

export interface NativeJsonExtractor {
  readonly names: readonly string[];
  /** Writes [offset, length, type | escaped << 8] per name into out; throws on bad JSON. */
  extract(doc: Uint8Array, out: Uint32Array): void;
  /** Batch: docs are (offset, length) pairs into buf; returns the number of good docs. */
  extractBatch(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, out: Uint32Array, statuses: Int32Array): number;
}

export interface NativeSubjectMatcher {
  subscribe(pattern: string, id: number): void;
  unsubscribe(pattern: string, id: number): void;
  match(subject: string): Uint32Array;
  matchInto(subject: string, out: Uint32Array): number;
  bindOutput(out: Uint32Array): void;
  matchBound(subject: string): number;
  readonly patternCount: number;
  readonly cacheSize: number;
}

export interface NativeGatewayStats {
  accepted: number;
  refused: number;
  open: number;
  websockets: number;
  httpRequests: number;
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  eventsIn: number;
  errorsSent: number;
  rateLimited: number;
  authFailures: number;
  ingressStalls: number;
  stateBytes: number;
  closes: Record<string, number>;
}

export interface NativeGatewayServer {
  listen(): number;
  wake(thread: number): void;
  stopAccepting(): void;
  closeWebSockets(code: number): void;
  close(): void;
  stats(): NativeGatewayStats;
  readonly backend: string;
}

export interface NativeGatewayOptions {
  host: string;
  port: number;
  ioThreads: number;
  io: 'epoll' | 'io_uring';
  pin?: boolean;
  maxConnections?: number;
  maxPayloadBytes?: number;
  maxHeadBytes?: number;
  maxHeaders?: number;
  maxBufferedBytes?: number;
  headTimeoutMs?: number;
  idleTimeoutMs?: number;
  pingIntervalMs?: number;
  pubPerSecond?: number;
  pubPerSecondPerToken?: number;
  tokens?: string[];
}

export interface NativeAddon {
  GatewayServer: new (
    options: NativeGatewayOptions,
    rings: Array<{ ingress: Uint8Array; egress: Uint8Array }>,
    onWake: (thread: number) => void,
  ) => NativeGatewayServer;
  ioUringUsable(): boolean;
  gatewayLayout: Record<string, number | Record<string, number>>;
  napiVersion: number;
  setErrorClass(ctor: typeof MyelinError): void;
  statusTable(): Array<{ name: string; code: string; message: string }>;
  ringHeaderBytes: number;
  SpscRing: { new (memory: ArrayBufferView, capacity: number, init: boolean): NativeSpscRing; bytesFor(capacity: number): number };
  Slab: new (options?: { sizeClasses?: number[]; chunkBytes?: number; maxBytes?: number }) => NativeSlab;
  Histogram: { new (): NativeHistogram; attach(id: number): NativeHistogram };
  histogramLayout: { subBucketHalfCountMagnitude: number; subBucketCount: number; bucketCount: number; countsLen: number; shardDoubles: number; highestTrackable: number };
  JsonExtractor: new (names: string[]) => NativeJsonExtractor;
  jsonImplementation(): string;
  setJsonImplementation(name: string): void;
  unescapeJsonString(raw: Uint8Array): string;
  SubjectMatcher: new (cacheEntries?: number) => NativeSubjectMatcher;
  validateSubject(subject: string, pattern: boolean): void;
  cpuInfo(): { supported: boolean; online: number; allowed: number[] };
  pinThread(cpu: number): string;
  unpinThread(): string;
  currentCpu(): number;
}

/** The package root: the nearest directory above this module with myelin's package.json. */
export function packageRoot(): string {
  let dir = moduleDir;
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, 'utf8')).name === 'myelin') return dir;
      } catch {
        // an unreadable package.json is not ours; keep walking
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new MyelinError('ERR_NATIVE_UNAVAILABLE', `myelin: package root not found above ${moduleDir}`);
    dir = up;
  }
}

let addon: NativeAddon | undefined;

/** The addon for this thread (each worker loads its own instance: it is context-aware). */
export function native(): NativeAddon {
  if (addon) return addon;
  const root = packageRoot();
  const require = createRequire(join(root, 'package.json'));
  let loaded: NativeAddon;
  try {
    // node-gyp-build honours PREBUILDS_ONLY=1 (skip build/) and picks the prebuild
    // matching this platform, arch and N-API version.
    loaded = require('node-gyp-build')(root) as NativeAddon;
  } catch (cause) {
    throw new MyelinError(
      'ERR_NATIVE_UNAVAILABLE',
      'myelin: the native addon is not built for this platform; run `npm rebuild myelin` (needs a C++20 compiler and python3)',
      { cause },
    );
  }
  loaded.setErrorClass(MyelinError);
  addon = loaded;
  return loaded;
}
