import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { native } from '../lib/internal/native.js';
import { RingLayout as L } from '../lib/internal/ring-layout.js';
import { SpscRingView, ringBytes } from '../lib/internal/ring.js';
import { expectCode } from './helpers.js';
import { testAddon, testAddonPath } from './native-test-build.js';

// The shipping addon, except where a test needs a native producer thread
// (startProducer exists only in the test build).
const addon = native();

function newRing(capacity: number) {
  const sab = new SharedArrayBuffer(addon.SpscRing.bytesFor(capacity));
  const ring = new addon.SpscRing(new Int32Array(sab), capacity, true);
  return { sab, ring };
}

function newTestRing(capacity: number) {
  const { SpscRing } = testAddon();
  const sab = new SharedArrayBuffer(SpscRing.bytesFor(capacity));
  const ring = new SpscRing(new Int32Array(sab), capacity, true);
  return { sab, ring };
}

describe('SpscRing binding', () => {
  it('agrees with the TS layout byte for byte', () => {
    expect(addon.ringHeaderBytes).toBe(L.HEADER_BYTES);
    for (const cap of [1, 2, 64, 1024]) expect(addon.SpscRing.bytesFor(cap)).toBe(ringBytes(cap));
    const { sab, ring } = newRing(16);
    const i32 = new Int32Array(sab);
    expect(i32[L.MAGIC]).toBe(L.MAGIC_VALUE);
    expect(i32[L.CAPACITY]).toBe(16);
    expect(i32[L.ITEM_SIZE]).toBe(8);
    ring.push(new BigUint64Array([1n, 2n, 3n]));
    expect(i32[L.WRITE]).toBe(3);
    expect(i32[L.READ]).toBe(0);
    ring.pop(new BigUint64Array(2));
    expect(i32[L.READ]).toBe(2);
    ring.markClosed();
    expect(i32[L.CLOSED]).toBe(1);
  });

  it('moves items native -> JS and JS -> native through one buffer', () => {
    const { sab, ring } = newRing(8);
    const view = new SpscRingView(sab, 8, false, () => ring.wake());
    expect(ring.push(new BigUint64Array([5n, 0x1_0000_0002n, 7n]))).toBe(3);
    const out = new Uint32Array(16);
    expect(view.popPairs(out)).toBe(3);
    expect(Array.from(out.subarray(0, 6))).toEqual([5, 0, 2, 1, 7, 0]);
    // JS produces, native consumes, across the wrap point several times. Each role
    // belongs to one party for a ring's life (each side caches its own index), so this
    // direction uses a second ring.
    const b = newRing(8);
    const producer = new SpscRingView(b.sab, 8, false, () => b.ring.wake());
    let next = 0;
    let expectNext = 0;
    const got = new BigUint64Array(8);
    for (let round = 0; round < 50; round++) {
      const pairs = new Uint32Array(10);
      const n = 1 + (round % 5);
      for (let i = 0; i < n; i++) pairs[i * 2] = next + i;
      next += producer.pushPairs(pairs, n);
      const k = b.ring.pop(got);
      for (let i = 0; i < k; i++) expect(got[i]).toBe(BigInt(expectNext++));
    }
    expect(expectNext).toBe(next);
  });

  it('reports full and empty and honours count', () => {
    const { ring } = newRing(4);
    expect(ring.push(new BigUint64Array(10))).toBe(4);
    expect(ring.push(new BigUint64Array(1))).toBe(0);
    expect(ring.size()).toBe(4);
    expect(ring.pop(new BigUint64Array(10))).toBe(4);
    expect(ring.pop(new BigUint64Array(1))).toBe(0);
    expect(ring.push(new BigUint64Array(10), 2)).toBe(2);
  });

  it('rejects zero, non-power-of-two, huge and malformed capacities', () => {
    for (const bad of [0, 3, 1000, 2 ** 31, -4, 1.5, NaN]) {
      expectCode(() => addon.SpscRing.bytesFor(bad), 'ERR_INVALID_ARGUMENT');
      expectCode(() => new addon.SpscRing(new Int32Array(new SharedArrayBuffer(4096)), bad, true), 'ERR_INVALID_ARGUMENT');
      expectCode(() => ringBytes(bad), 'ERR_INVALID_ARGUMENT');
    }
    expectCode(() => new addon.SpscRing(new Int32Array(new SharedArrayBuffer(64)), 64, true), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new addon.SpscRing('nope' as never, 8, true), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new SpscRingView(new SharedArrayBuffer(ringBytes(8)), 8, false), 'ERR_INVALID_ARGUMENT', /does not hold/);
    expectCode(() => new SpscRingView(new ArrayBuffer(4096) as never, 8, true), 'ERR_INVALID_ARGUMENT');
  });

  it('rejects wrong item arrays and use after close', () => {
    const { ring } = newRing(8);
    expectCode(() => ring.push(new Uint32Array(2) as never), 'ERR_INVALID_ARGUMENT', /BigUint64Array/);
    expectCode(() => ring.pop([] as never), 'ERR_INVALID_ARGUMENT');
    expectCode(() => ring.watch('x' as never), 'ERR_INVALID_ARGUMENT');
    ring.close();
    ring.close(); // idempotent
    expectCode(() => ring.push(new BigUint64Array(1)), 'ERR_CLOSED');
  });

  it('startProducer (test build) rejects a bad count and batch', () => {
    const { ring } = newTestRing(8);
    for (const bad of [-1, 1.5, NaN, 2 ** 53]) expectCode(() => ring.startProducer(bad), 'ERR_INVALID_ARGUMENT');
    expectCode(() => ring.startProducer(1, 0), 'ERR_INVALID_ARGUMENT');
    ring.close();
    expectCode(() => ring.startProducer(1), 'ERR_CLOSED');
  });

  it('wakes a JS consumer through libuv when a native producer pushes', async () => {
    const { sab, ring } = newTestRing(256);
    const view = new SpscRingView(sab, 256, false, () => ring.wake());
    const total = 200_000;
    const buf = new Uint32Array(512);
    let seen = 0;
    let sum = 0;
    let wakeups = 0;
    const done = new Promise<void>((resolve) => {
      const drain = () => {
        wakeups++;
        let k;
        while ((k = view.popPairs(buf)) > 0) {
          for (let i = 0; i < k; i++) {
            if (buf[i * 2] !== seen) throw new Error(`out of order at ${seen}`);
            sum += buf[i * 2];
            seen++;
          }
        }
        if (view.closed && view.size() === 0) resolve();
      };
      ring.watch(drain);
    });
    ring.startProducer(total, 64);
    await done;
    ring.close();
    expect(seen).toBe(total);
    expect(sum).toBe((total * (total - 1)) / 2);
    expect(wakeups).toBeGreaterThan(0);
    expect(wakeups).toBeLessThanOrEqual(total / 64 + 1); // coalesced, never one per item
  });

  it('a native producer parked on a full ring is woken by a JS consumer in a worker', async () => {
    const { sab, ring } = newTestRing(16);
    const total = 50_000;
    ring.startProducer(total, 8);
    const worker = new Worker(
      `
      const { workerData, parentPort } = require('node:worker_threads');
      const addon = require(workerData.addonPath);
      const { sab } = workerData;
      // The native handle only to wake the parked native producer (JS cannot reach an OS futex).
      const handle = new addon.SpscRing(new Int32Array(sab), 16, false);
      const i32 = new Int32Array(sab);
      const slots = new Uint32Array(sab, 320, 32);
      let read = 0, sum = 0, count = 0;
      for (;;) {
        const write = Atomics.load(i32, 0) >>> 0;
        if (write === read) {
          if (Atomics.load(i32, 35) !== 0 && (Atomics.load(i32, 0) >>> 0) === read) break;
          continue;
        }
        for (; read !== write; read = (read + 1) >>> 0) { sum += slots[(read & 15) * 2]; count++; }
        Atomics.store(i32, 16, read | 0);
        if (Atomics.add(i32, 65, 0) !== 0) { Atomics.add(i32, 64, 1); handle.wake(); }
      }
      handle.close();
      parentPort.postMessage({ sum, count });
      `,
      { eval: true, workerData: { sab, addonPath: testAddonPath } },
    );
    const result = await new Promise<{ sum: number; count: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    ring.close();
    expect(result.count).toBe(total);
    expect(result.sum).toBe((total * (total - 1)) / 2);
  });
});
