// STYLE.md's misuse list against the bindings: a callback that throws, re-entrant calls
// from a callback, close from inside a callback, GC while handles and threads are live.
// Native producer threads (startProducer) exist only in the test build of the addon,
// so these tests load it (test/native-test-build.ts), in this process and in children.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { SpscRingView } from '../lib/internal/ring.js';
import { testAddon, testAddonPath } from './native-test-build.js';

const addon = testAddon();

function child(code: string, flags: string[] = []) {
  const r = spawnSync(process.execPath, [...flags, '-e', `const a = require(${JSON.stringify(testAddonPath)});\n${code}`], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, signal: r.signal, stderr: r.stderr, stdout: r.stdout.trim() };
}

describe('misuse', () => {
  it('a watch callback that throws surfaces as an uncaught JS error, not an abort', () => {
    const r = child(`
      const sab = new SharedArrayBuffer(a.SpscRing.bytesFor(8));
      const ring = new a.SpscRing(new Int32Array(sab), 8, true);
      process.on('uncaughtException', (e) => { console.log('caught:' + e.message); ring.close(); process.exit(0); });
      ring.watch(() => { throw new Error('handler boom'); });
      ring.startProducer(4);`);
    expect(r.signal).toBeNull();
    expect(r.stdout).toBe('caught:handler boom');
    expect(r.status).toBe(0);
  });

  it('closing the ring from inside its own watch callback is safe', async () => {
    const sab = new SharedArrayBuffer(addon.SpscRing.bytesFor(64));
    const ring = new addon.SpscRing(new Int32Array(sab), 64, true);
    const view = new SpscRingView(sab, 64, false);
    let calls = 0;
    await new Promise<void>((resolve) => {
      ring.watch(() => {
        calls++;
        view.popPairs(new Uint32Array(128));
        ring.close(); // joins the producer thread from its own callback's thread
        resolve();
      });
      ring.startProducer(1e9);
    });
    expect(calls).toBe(1);
    ring.close();
  });

  it('re-entrant pushes and pops from a watch callback keep order', async () => {
    const sab = new SharedArrayBuffer(addon.SpscRing.bytesFor(32));
    const ring = new addon.SpscRing(new Int32Array(sab), 32, true);
    const view = new SpscRingView(sab, 32, false, () => ring.wake());
    const buf = new Uint32Array(64);
    let next = 0;
    await new Promise<void>((resolve, reject) => {
      ring.watch(() => {
        let k;
        while ((k = view.popPairs(buf)) > 0) {
          for (let i = 0; i < k; i++) if (buf[i * 2] !== next++) reject(new Error('order'));
          ring.size(); // re-enter the binding mid-drain
        }
        if (view.closed && view.size() === 0) resolve();
      });
      ring.startProducer(10_000, 3);
    });
    ring.close();
    expect(next).toBe(10_000);
  });

  it('survives GC of open handles with live native threads and leased memory', () => {
    const r = child(
      `
      for (let i = 0; i < 50; i++) {
        const sab = new SharedArrayBuffer(a.SpscRing.bytesFor(16));
        const ring = new a.SpscRing(new Int32Array(sab), 16, true);
        ring.startProducer(1e12);          // parked on a full ring forever
        const h = new a.Histogram(); h.acquireShard()[4]++;
        const s = new a.Slab(); s.alloc(64); s.alloc(4096);
        const m = new a.SubjectMatcher(); m.subscribe('x.>', 1); m.match('x.y');
      }
      global.gc(); global.gc();
      setTimeout(() => { global.gc(); console.log('alive'); process.exit(0); }, 20);`,
      ['--expose-gc'],
    );
    expect(r.signal).toBeNull();
    expect(r.stdout).toBe('alive');
    expect(r.status).toBe(0);
  });

  it('a closed handle rejects every method with ERR_CLOSED', () => {
    const sab = new SharedArrayBuffer(addon.SpscRing.bytesFor(8));
    const ring = new addon.SpscRing(new Int32Array(sab), 8, true);
    ring.close();
    for (const call of [() => ring.pop(new BigUint64Array(1)), () => ring.size(), () => ring.watch(() => {}), () => ring.startProducer(1), () => ring.markClosed()]) {
      expect(call).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    }
  });
});
