// The test build of the addon (build-test/myelin_test.node: the binding compiled with
// MYELIN_TEST_HOOKS by scripts/build-test-addon.mjs, which `npm test` and vitest's
// globalSetup run). Only tests that drive the hooks load it; everything else tests the
// shipping addon through lib/internal/native.ts.
//
// It is a separate shared object from the shipping addon, with its own statics: a
// Histogram id from one is unknown to the other. Workers and child processes that must
// share state with a test-build handle load `testAddonPath` themselves.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { MyelinError } from '../lib/errors.js';
import { packageRoot, type NativeAddon, type NativeHistogram, type NativeSpscRing } from '../lib/internal/native.js';

export interface TestSpscRing extends NativeSpscRing {
  /** A native thread pushes 0..count-1 in batches, then marks the ring closed. */
  startProducer(count: number, batch?: number): void;
}

export interface TestHistogram extends NativeHistogram {
  /** Records `value` `times` times from native code; from `threads` native threads when > 0. */
  recordNative(value: number, times?: number, threads?: number): void;
}

export interface TestAddon extends Omit<NativeAddon, 'SpscRing' | 'Histogram'> {
  SpscRing: { new (memory: ArrayBufferView, capacity: number, init: boolean): TestSpscRing; bytesFor(capacity: number): number };
  Histogram: { new (): TestHistogram; attach(id: number): TestHistogram };
  /** After `pass` successful thread starts, the next `fail` ones are refused as by the system. */
  failThreadStarts(fail: number, pass?: number): void;
  /** Lets a C++ exception of `kind` escape an entry point. */
  throwNative(kind: 'bad_alloc' | 'runtime_error' | 'int'): never;
}

export const testAddonPath = join(packageRoot(), 'build-test', 'myelin_test.node');

let addon: TestAddon | undefined;

export function testAddon(): TestAddon {
  if (addon) return addon;
  if (!existsSync(testAddonPath)) {
    throw new Error(`${testAddonPath} is missing: run \`node scripts/build-test.mjs\` (npm test and vitest's globalSetup do)`);
  }
  const loaded = createRequire(import.meta.url)(testAddonPath) as TestAddon;
  loaded.setErrorClass(MyelinError);
  addon = loaded;
  return loaded;
}
