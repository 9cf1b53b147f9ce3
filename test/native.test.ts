// The addon as a whole: loading, the error table, context-awareness in workers.
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, MyelinError } from '../lib/errors.js';
import { native, packageRoot } from '../lib/internal/native.js';

describe('native addon', () => {
  it('loads and pins its N-API version', () => {
    expect(native().napiVersion).toBe(8);
  });

  it('maps every native status to a code in the TS table', () => {
    const rows = native().statusTable();
    expect(rows.length).toBeGreaterThan(10);
    for (const row of rows) expect(Object.keys(ErrorCodes)).toContain(row.code);
    expect(rows.find((r) => r.name === 'kInvalidSubject')?.code).toBe('ERR_INVALID_ARGUMENT');
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
    const root = packageRoot();
    const src = `
      const { parentPort } = require('node:worker_threads');
      const addon = require('node-gyp-build')(${JSON.stringify(root)});
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
    const root = packageRoot();
    const r = spawnSync(
      process.execPath,
      [
        '-e',
        `const a = require('node-gyp-build')(${JSON.stringify(root)});
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
});
