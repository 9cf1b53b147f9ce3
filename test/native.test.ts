// The addon as a whole: loading, the error table, context-awareness in workers, what
// the shipping build leaves out, and C++ exceptions that must not abort the process.
// Tests that need a native thread of the addon's own use the test build
// (test/native-test-build.ts); the error tables are checked in test/errors.test.ts.
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, MyelinError } from '../lib/errors.js';
import { native } from '../lib/internal/native.js';
import { expectCode } from './helpers.js';
import { testAddon, testAddonPath } from './native-test-build.js';

/** The names of the test hooks; the shipping addon must have none of them. */
const HOOKS = { addon: ['failThreadStarts', 'throwNative'], ring: ['startProducer'], histogram: ['recordNative'] };

function hooksOf(a: object): string[] {
  const x = a as { SpscRing: { prototype: object }; Histogram: { prototype: object } };
  return [
    ...HOOKS.addon.filter((k) => k in a),
    ...HOOKS.ring.filter((k) => k in x.SpscRing.prototype),
    ...HOOKS.histogram.filter((k) => k in x.Histogram.prototype),
  ];
}

describe('native addon', () => {
  it('loads and pins its N-API version', () => {
    expect(native().napiVersion).toBe(8);
  });

  it('throws the TS MyelinError class with a code', () => {
    try {
      new (native().SubjectMatcher)().subscribe('a..b', 1);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(MyelinError);
      expect((err as MyelinError).code).toBe('ERR_INVALID_ARGUMENT');
      expect((err as MyelinError).message).toMatch(/a\.\.b/);
    }
  });

  it('loads in worker threads, each with its own instance, and survives terminate()', async () => {
    const src = `
      const { parentPort } = require('node:worker_threads');
      const addon = require(${JSON.stringify(testAddonPath)});
      const m = new addon.SubjectMatcher();
      m.subscribe('w.*', 7);
      // a native producer thread keeps pushing while the worker is terminated
      const sab = new SharedArrayBuffer(addon.SpscRing.bytesFor(64));
      const ring = new addon.SpscRing(new Int32Array(sab), 64, true);
      ring.startProducer(1e12);
      parentPort.postMessage(Array.from(m.match('w.x')));
    `;
    for (let i = 0; i < 3; i++) {
      const w = new Worker(src, { eval: true });
      const ids = await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      expect(ids).toEqual([7]);
      await w.terminate();
    }
    // The main thread's instance is untouched.
    expect(Array.from(new (native().SubjectMatcher)().match('z'))).toEqual([]);
  });

  it('exits cleanly with native threads still running at process exit', () => {
    const r = spawnSync(
      process.execPath,
      [
        '-e',
        `const a = require(${JSON.stringify(testAddonPath)});
         const sab = new SharedArrayBuffer(a.SpscRing.bytesFor(8));
         const ring = new a.SpscRing(new Int32Array(sab), 8, true);
         ring.startProducer(1e12); ring.watch(() => {});
         setTimeout(() => process.exit(0), 50);`,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('ships no test hooks: the shipping addon lacks them, the test build has them', () => {
    expect(hooksOf(native())).toEqual([]);
    expect(hooksOf(testAddon())).toEqual([...HOOKS.addon, ...HOOKS.ring, ...HOOKS.histogram]);
  });
});

describe('C++ exceptions at the binding boundary', () => {
  const a = testAddon();

  it('a refused thread start in startProducer is ERR_RESOURCE_EXHAUSTED, and the ring stays usable', async () => {
    const sab = new SharedArrayBuffer(a.SpscRing.bytesFor(64));
    const ring = new a.SpscRing(new Int32Array(sab), 64, true);
    a.failThreadStarts(1);
    const err = expectCode(() => ring.startProducer(10), 'ERR_RESOURCE_EXHAUSTED', /startProducer/);
    expect(err.unknownCode).toBeUndefined();
    // The next start succeeds: the producer pushes 0..9 and marks the ring closed.
    const out = new BigUint64Array(64);
    let got = 0;
    await new Promise<void>((resolve) => {
      ring.watch(() => {
        got += ring.pop(out);
        if (ring.isClosed() && ring.size() === 0) resolve();
      });
      ring.startProducer(10);
    });
    expect(got).toBe(10);
    ring.close();
  });

  it('a refused thread start in threaded recordNative joins the threads already started', () => {
    const h = new a.Histogram();
    a.failThreadStarts(1, 2); // the third of four starts is refused
    expectCode(() => h.recordNative(3, 1000, 4), 'ERR_RESOURCE_EXHAUSTED', /recordNative/);
    // The two that started ran to the end before the throw: nothing still records.
    expect(h.snapshot().count).toBe(2000);
    h.recordNative(3, 1000, 4);
    expect(h.snapshot().count).toBe(6000);
    h.close();
  });

  it('a refused thread start does not abort the process (child process)', () => {
    const r = spawnSync(
      process.execPath,
      [
        '-e',
        `const a = require(${JSON.stringify(testAddonPath)});
         const sab = new SharedArrayBuffer(a.SpscRing.bytesFor(8));
         const ring = new a.SpscRing(new Int32Array(sab), 8, true);
         a.failThreadStarts(1);
         try { ring.startProducer(4); } catch (e) { console.log(e.code); }
         const h = new a.Histogram();
         a.failThreadStarts(1, 1);
         try { h.recordNative(1, 10, 3); } catch (e) { console.log(e.code, h.snapshot().count); }
         ring.close();`,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.signal).toBeNull();
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(['ERR_RESOURCE_EXHAUSTED', 'ERR_RESOURCE_EXHAUSTED 10']);
    expect(r.status).toBe(0);
  });

  it('any other C++ exception becomes a JS Error, not an abort (NODE_ADDON_API_CPP_EXCEPTIONS_ALL)', () => {
    for (const [kind, message] of [
      ['bad_alloc', /bad_alloc/],
      ['runtime_error', /myelin test: runtime_error/],
      ['int', /native exception/],
    ] as const) {
      let caught: unknown;
      try {
        a.throwNative(kind);
      } catch (err) {
        caught = err;
      }
      expect(caught, kind).toBeInstanceOf(Error);
      expect((caught as Error).message).toMatch(message);
    }
    // The addon still works afterwards.
    expect(a.SpscRing.bytesFor(8)).toBeGreaterThan(0);
  });

  it('statuses thrown by the binding carry their table code in a MyelinError', () => {
    expect(Object.hasOwn(ErrorCodes, 'ERR_RESOURCE_EXHAUSTED')).toBe(true);
    const err = expectCode(() => new (native().SubjectMatcher)().subscribe('a'.repeat(2000), 1), 'ERR_INVALID_ARGUMENT');
    expect(err).toBeInstanceOf(MyelinError);
  });
});
