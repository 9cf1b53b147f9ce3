// Publishes from worker threads (ctx.publish, ctx.publishAsync) and the start-up and
// shutdown paths of bus.workers(): nothing a worker publishes may vanish uncounted,
// and no failure leaves threads behind.
import { spawnSync } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Bus, type Overflow } from '../lib/index.js';
import { addsUp, expectRejectCode } from './helpers.js';

const handler = new URL('./fixtures/publish-handler.mjs', import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');


describe('ctx.publish in a worker', () => {
  it('throws ERR_INVALID_ARGUMENT in the worker for a bad subject or options', async () => {
    const bus = new Bus();
    await bus.workers(handler, { threads: 1, subjects: 'wp.>' });
    const cases: Array<[string, unknown]> = [
      ['a..b', undefined],
      ['a.*', undefined],
      ['', undefined],
      ['ok', { priority: 'urgent' }],
      ['ok', { key: 5 }],
      ['ok', { headers: { a: 1 } }],
      ['ok', { prioirty: 'low' }],
      ['ok', null],
    ];
    for (const [subject, opts] of cases) {
      expect(await bus.request('wp.throws', { subject, opts }), `${subject} ${JSON.stringify(opts)}`).toEqual({ code: 'ERR_INVALID_ARGUMENT', name: 'MyelinError' });
      expect(await bus.request('wp.rejects', { subject, opts })).toEqual({ code: 'ERR_INVALID_ARGUMENT' });
    }
    await bus.close();
  });

  for (const overflow of ['wait', 'reject'] as Overflow[]) {
    it(`counts and reports every publish a full bus refuses (${overflow})`, async () => {
      const bus = new Bus({ capacity: 8, overflow });
      const pool = await bus.workers(handler, { threads: 1, subjects: 'wp.>' });
      let delivered = 0;
      bus.subscribe('wp.out', () => void delivered++);
      const reported: Array<{ code: string; worker: number }> = [];
      const onRefused = (m: unknown) => void reported.push(m as { code: string; worker: number });
      diagnostics.subscribe('myelin:bus:worker-publish-refused', onRefused);
      try {
        // 200 publishes arrive in one read of the return ring; the lane holds 8.
        expect(await bus.request('wp.burst', { n: 200 })).toBe(200);
        await bus.drain();
        const s = bus.stats();
        expect(s.refused).toBeGreaterThan(0);
        expect(delivered + s.refused).toBe(200);
        expect(pool.stats().publishRefused).toBe(s.refused);
        expect(reported.length).toBe(s.refused);
        expect(reported.every((r) => r.code === 'ERR_BUS_FULL' && r.worker === 0)).toBe(true);
        addsUp(bus);
      } finally {
        diagnostics.unsubscribe('myelin:bus:worker-publish-refused', onRefused);
      }
      await bus.close();
    });
  }

  it('ctx.publishAsync waits for room under wait, and learns ERR_BUS_FULL under reject', async () => {
    const waiting = new Bus({ capacity: 8, overflow: 'wait' });
    await waiting.workers(handler, { threads: 1, subjects: 'wp.>' });
    const got: number[] = [];
    waiting.subscribe('wp.out', (ev) => void got.push(ev.data as number));
    const outcomes = (await waiting.request('wp.burst-async', { n: 200 }, { timeoutMs: 30_000 })) as string[];
    expect(outcomes.every((o) => o === 'ok')).toBe(true);
    await waiting.drain();
    // All of them, in the order the worker made them.
    expect(got).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(waiting.stats().refused).toBe(0);
    await waiting.close();

    const rejecting = new Bus({ capacity: 8, overflow: 'reject' });
    const pool = await rejecting.workers(handler, { threads: 1, subjects: 'wp.>' });
    let delivered = 0;
    rejecting.subscribe('wp.out', () => void delivered++);
    const r = (await rejecting.request('wp.burst-async', { n: 200 })) as string[];
    await rejecting.drain();
    const full = r.filter((o) => o === 'ERR_BUS_FULL').length;
    expect(full).toBeGreaterThan(0);
    expect(r.filter((o) => o === 'ok').length).toBe(delivered);
    expect(full + delivered).toBe(200);
    expect(pool.stats().publishRefused).toBe(full);
    await rejecting.close();
  });

  it('a publish after the bus closed is refused and counted, not dropped silently', async () => {
    const bus = new Bus();
    const pool = await bus.workers(handler, { threads: 1, subjects: 'wp.>' });
    bus.subscribe('wp.out', () => {});
    const reply = bus.request('wp.rejects', { subject: 'wp.out' });
    const closing = bus.close(); // the request is in flight; the worker's publish arrives after close
    expect(await reply).toEqual({ code: 'ERR_BUS_CLOSED' });
    await closing;
    expect(pool.stats().publishRefused).toBe(1);
  });

  it('drain() covers what workers publish, even when the return ring backs up', async () => {
    for (const fail of [false, true]) {
      const bus = new Bus();
      // 4 KiB rings hold records up to 2 KiB: three 1,500-byte publishes fill one, so
      // the worker's later records wait in its backlog.
      await bus.workers(handler, { threads: 1, subjects: 'wp.>', ringBytes: 4096 });
      let got = 0;
      bus.subscribe('wp.out', () => void got++);
      const dead: string[] = [];
      bus.subscribe('$DLQ.wp.>', (ev) => void dead.push((ev.data as { error: { message: string } }).error.message));
      for (let i = 0; i < 20; i++) bus.publish('wp.big', { n: 6, size: 1500, fail });
      await bus.drain();
      expect(got).toBe(120);
      expect(dead.length).toBe(fail ? 20 : 0);
      expect(bus.stats().failed).toBe(fail ? 20 : 0);
      addsUp(bus);
      await bus.close();
    }
  });
});

describe('bus.workers() start-up', () => {
  it('validates every option before starting a thread, and a failed start leaves no thread behind', () => {
    // In a child process: a thread left running would keep it from exiting.
    const script = `
      import { Bus } from ${JSON.stringify(join(root, 'dist', 'esm', 'index.js'))};
      const url = ${JSON.stringify(handler.href)};
      const bus = new Bus();
      const codes = [];
      for (const opts of [
        { threads: 2, subjects: ['ok', 'a..b'] },
        { threads: 2, subjects: ['ok', 7] },
        { threads: 2, subjects: 'ok', pin: 'yes' },
        { threads: 2, subjects: 'ok', queue: '' },
        { threads: 2, subjects: 'ok', thread: 2 },
        null,
      ]) {
        try { await bus.workers(url, opts); codes.push(['started']); } catch (err) { codes.push([err.code, err.message]); }
      }
      // Closed while its threads start: the subscriptions are refused, the threads stopped.
      const starting = bus.workers(url, { threads: 2, subjects: 'ok' });
      await bus.close();
      try { await starting; codes.push(['started']); } catch (err) { codes.push([err.code, err.message]); }
      console.log(JSON.stringify(codes));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 20_000 });
    expect(r.error, `the process did not exit: ${r.stderr}`).toBeUndefined();
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout.trim()) as string[][];
    expect(got.map((c) => c[0]), JSON.stringify(got)).toEqual([...Array(6).fill('ERR_INVALID_ARGUMENT'), 'ERR_BUS_CLOSED']);
  });

  it('starts workers in a process run with V8 and per-process flags', () => {
    const pool = new URL('./fixtures/pool-handler.mjs', import.meta.url).href;
    const script = `
      import { Bus } from ${JSON.stringify(join(root, 'dist', 'esm', 'index.js'))};
      const bus = new Bus();
      await bus.workers(${JSON.stringify(pool)}, { threads: 1, subjects: 'pool.>' });
      console.log(JSON.stringify(await bus.request('pool.async', 'up')));
      await bus.close();
    `;
    const r = spawnSync(process.execPath, ['--max-semi-space-size=16', '--stack-size=2000', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('"up"');
  });

  it('rejects workers() on a closed bus', async () => {
    const bus = new Bus();
    await bus.close();
    await expectRejectCode(bus.workers(handler, { subjects: 'x' }), 'ERR_BUS_CLOSED');
  });
});
