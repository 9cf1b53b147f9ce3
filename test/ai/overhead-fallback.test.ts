// The AIClient without the native addon: its overhead histogram falls back to the pure-JS
// histogram (lib/internal/histogram.ts JsHistogram). First the two histograms agree on
// the same values; then a real chat runs in a child process whose package copy has no
// addon at all (no build/, no prebuilds/), so native() fails there as it would for a
// user, and stats().overheadUs still reads.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { HistogramRecorder, JsHistogram, createHistogram } from '../../lib/internal/histogram.js';
import { packageRoot } from '../../lib/internal/native.js';

describe('JsHistogram', () => {
  test('records and reads like the native histogram: count, sum, min, max and percentiles', () => {
    const native = new HistogramRecorder(createHistogram());
    const js = new HistogramRecorder(new JsHistogram());
    let x = 12345;
    const next = () => (x = (x * 1103515245 + 12345) % 2 ** 31);
    const values = [0, 1, 2047, 2048, 2049, 4095, 4096, 1e6 + 0.7, 2 ** 31, 2 ** 32 + 5, 3.6e12, 7e12];
    for (let i = 0; i < 5000; i++) values.push(next() % 50_000_000);
    for (const v of values) {
      native.record(v);
      js.record(v);
    }
    expect(js.snapshot()).toEqual(native.snapshot());
    native.close();
    js.close();
  });

  test("a released shard's counts stay; records after close() are dropped; empty reads zeros", () => {
    const h = new JsHistogram();
    expect(h.snapshot()).toEqual({ count: 0, sum: 0, min: 0, max: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0 });
    const a = new HistogramRecorder(h);
    const b = new HistogramRecorder(h);
    a.record(10);
    b.record(30);
    a.close();
    a.record(1_000);
    expect(h.snapshot()).toMatchObject({ count: 2, sum: 40, min: 10, max: 30, p50: 10 });
  });
});

describe('AIClient where the addon cannot load', () => {
  const root = packageRoot();
  const dir = mkdtempSync(join(tmpdir(), 'myelin-no-addon-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('a chat succeeds and stats().overheadUs counts it', async () => {
    cpSync(join(root, 'lib'), join(dir, 'lib'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'myelin', type: 'module' }));
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
    const fixtures = join(root, 'test', 'fixtures');
    const child = spawn(process.execPath, ['--import', join(fixtures, 'ts-register.mjs'), join(fixtures, 'ai-chat-no-addon.mjs'), join(dir, 'lib')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', resolve);
    });
    expect(code, err).toBe(0);
    const r = JSON.parse(out) as { addon: string; texts: string[]; overheadUs: { count: number; p50: number; max: number } };
    expect(r.addon).toBe('ERR_NATIVE_UNAVAILABLE');
    expect(r.texts).toHaveLength(3);
    for (const t of r.texts) expect(t.length).toBeGreaterThan(0);
    expect(r.overheadUs.count).toBe(3);
    expect(r.overheadUs.max).toBeGreaterThan(0);
  });
});
