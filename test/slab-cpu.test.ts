import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { native, packageRoot } from '../lib/internal/native.js';
import { expectCode } from './helpers.js';

const addon = native();

describe('Slab binding', () => {
  it('hands out class-sized, writable blocks', () => {
    const slab = new addon.Slab();
    for (const [ask, size] of [
      [0, 64],
      [1, 64],
      [64, 64],
      [65, 128],
      [256, 256],
      [4096, 4096],
    ]) {
      const b = slab.alloc(ask);
      expect(b.byteLength).toBe(size);
      new Uint8Array(b).fill(0xab);
      expect(slab.classSizeFor(ask)).toBe(size);
      slab.release(b);
    }
    expectCode(() => slab.alloc(4097), 'ERR_INVALID_ARGUMENT', /largest size class/);
    expectCode(() => slab.alloc(-1), 'ERR_INVALID_ARGUMENT');
    expectCode(() => slab.alloc(NaN), 'ERR_INVALID_ARGUMENT');
    expectCode(() => slab.alloc('64' as never), 'ERR_INVALID_ARGUMENT');
    expectCode(() => slab.release({} as never), 'ERR_INVALID_ARGUMENT');
  });

  // release() detaches at once; Node runs the external buffer's finalizer (which frees
  // the block) from an immediate, so the memory is back after one loop turn.
  const tick = () => new Promise((resolve) => setImmediate(resolve));

  it('reuses memory: many alloc/release cycles keep the chunk count bounded', async () => {
    const slab = new addon.Slab();
    for (let round = 0; round < 50; round++) {
      const blocks = Array.from({ length: 1000 }, () => slab.alloc(200));
      for (const b of blocks) slab.release(b);
      expect(blocks[0].byteLength).toBe(0);
      await tick();
    }
    expect(slab.stats().blocksInUse).toBe(0);
    expect(slab.stats().chunks).toBeLessThanOrEqual(8);
  });

  it('enforces maxBytes with ERR_OUT_OF_MEMORY and recovers after release', async () => {
    const slab = new addon.Slab({ maxBytes: 64 * 1024 });
    const blocks: ArrayBuffer[] = [];
    let err: unknown;
    try {
      for (let i = 0; i < 10_000; i++) blocks.push(slab.alloc(64));
    } catch (e) {
      err = e;
    }
    expect((err as { code: string }).code).toBe('ERR_OUT_OF_MEMORY');
    expect(blocks.length).toBeGreaterThan(0);
    for (const b of blocks) slab.release(b);
    await tick();
    expect(slab.alloc(64).byteLength).toBe(64);
  });

  it('validates options', () => {
    expectCode(() => new addon.Slab('x' as never), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new addon.Slab({ sizeClasses: [0] }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new addon.Slab({ sizeClasses: 'a' as never }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new addon.Slab({ chunkBytes: -1 }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new addon.Slab({ maxBytes: NaN }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new addon.Slab({ chunkBytes: 1000 }), 'ERR_INVALID_ARGUMENT');
  });

  it('keeps blocks valid after close and frees them on GC', () => {
    const slab = new addon.Slab();
    const keep = slab.alloc(128);
    for (let i = 0; i < 1000; i++) slab.alloc(100); // dropped: freed by finalizers
    slab.close();
    slab.close();
    expectCode(() => slab.alloc(1), 'ERR_CLOSED');
    new Uint8Array(keep).fill(1);
    expect(new Uint8Array(keep)[127]).toBe(1);
    (globalThis as { gc?: () => void }).gc?.();
  });
});

describe('CPU topology and pinning', () => {
  it('reports the allowed CPUs and pins a worker thread to one', async () => {
    const info = addon.cpuInfo();
    expect(info.supported).toBe(true);
    expect(info.online).toBeGreaterThan(0);
    expect(info.allowed.length).toBeGreaterThan(0);
    const target = info.allowed[info.allowed.length - 1];
    const w = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const a = require('node-gyp-build')(workerData.root);
       const status = a.pinThread(workerData.cpu);
       let cpu = -1; for (let i = 0; i < 1e6; i++) cpu = a.currentCpu();
       parentPort.postMessage({ status, cpu, bad: a.pinThread(100000), unpin: a.unpinThread() });`,
      { eval: true, workerData: { root: packageRoot(), cpu: target } },
    );
    const r = await new Promise<{ status: string; cpu: number; bad: string; unpin: string }>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await w.terminate();
    expect(r.status).toBe('OK');
    expect(r.cpu).toBe(target);
    expect(r.bad).toBe('ERR_INVALID_ARGUMENT');
    expect(r.unpin).toBe('OK');
    expectCode(() => addon.pinThread(-1), 'ERR_INVALID_ARGUMENT');
    expectCode(() => addon.pinThread(NaN), 'ERR_INVALID_ARGUMENT');
  });
});
