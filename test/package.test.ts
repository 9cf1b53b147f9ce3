// The package as users get it: ESM import and CommonJS require of 'myelin' (including
// from inside the package, through the exports map), and loading a prebuild with no
// build/ folder present (PREBUILDS_ONLY=1).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../lib/internal/native.js';

const root = packageRoot();

function node(args: string[], cwd: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { status: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
}

describe('package entry points', () => {
  it('has a built dist/ (npm install runs prepare)', () => {
    expect(existsSync(join(root, 'dist', 'esm', 'index.js')), 'run npm run build:ts').toBe(true);
    expect(existsSync(join(root, 'dist', 'cjs', 'index.js'))).toBe(true);
    expect(existsSync(join(root, 'dist', 'esm', 'index.d.ts'))).toBe(true);
  });

  it("imports as ESM and requires as CommonJS from inside the package", () => {
    const esm = node(
      ['--input-type=module', '-e', "import { MyelinError } from 'myelin'; const e = new MyelinError('ERR_ABORTED', 'x'); console.log(e.code, e instanceof Error);"],
      root,
    );
    expect(esm.err).toBe('');
    expect(esm.out).toBe('ERR_ABORTED true');
    const cjs = node(['-e', "const { MyelinError } = require('myelin'); console.log(typeof MyelinError, new MyelinError('ERR_BUS_FULL', 'y').code);"], root);
    expect(cjs.err).toBe('');
    expect(cjs.out).toBe('function ERR_BUS_FULL');
  });

  it('loads the native addon from both builds', () => {
    const code = (kind: string) =>
      `const n = ${kind}; const m = new (n.native().SubjectMatcher)(); m.subscribe('a.*', 3); console.log(Array.from(m.match('a.b')).join());`;
    const cjs = node(['-e', code("require('./dist/cjs/internal/native.js')")], root);
    expect(cjs.err).toBe('');
    expect(cjs.out).toBe('3');
    const esm = node(['--input-type=module', '-e', code("await import('./dist/esm/internal/native.js')")], root);
    expect(esm.err).toBe('');
    expect(esm.out).toBe('3');
  });

  it('ships neither the test build nor build stamps, and the shipping builds hold one addon each', () => {
    // npm's own file list (scripts off: prepare would rebuild dist/ under the other tests).
    const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const files: string[] = JSON.parse(r.stdout)[0].files.map((f: { path: string }) => f.path);
    expect(files).toContain('dist/esm/index.js');
    expect(files).toContain('native/binding/thread_start.h');
    expect(files.filter((f) => f.startsWith('build') || f.includes('myelin_test') || f.endsWith('.build-stamp'))).toEqual([]);
    // prebuildify and node-gyp-build both take the first .node file in build/Release:
    // there must be exactly one, the shipping addon, with no test hooks.
    const nodeFiles = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.node')) : []);
    expect(nodeFiles(join(root, 'build', 'Release'))).toEqual(['myelin.node']);
    const prebuilt = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
    const addons = [join(root, 'build', 'Release', 'myelin.node'), ...nodeFiles(prebuilt).map((f) => join(prebuilt, f))];
    if (existsSync(prebuilt)) expect(nodeFiles(prebuilt)).toHaveLength(1);
    for (const file of addons) {
      const probe = node(
        ['-e', `const a = require(${JSON.stringify(file)}); console.log(['failThreadStarts' in a, 'startProducer' in a.SpscRing.prototype, 'recordNative' in a.Histogram.prototype].join());`],
        root,
      );
      expect(probe.err).toBe('');
      expect(probe.out, file).toBe('false,false,false');
    }
  });

  describe('prebuilds', () => {
    const dir = mkdtempSync(join(tmpdir(), 'myelin-prebuild-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('loads prebuilds/linux-x64 with no build/ folder (PREBUILDS_ONLY=1)', () => {
      // A copy of the package with dist/ and prebuilds/ but no build/. In CI the
      // prebuild comes from `npm run prebuild` (prebuildify); elsewhere, if none was
      // made, the compiled addon is placed where prebuildify would put it.
      const pkg = join(dir, 'node_modules', 'myelin');
      mkdirSync(pkg, { recursive: true });
      cpSync(join(root, 'package.json'), join(pkg, 'package.json'));
      cpSync(join(root, 'dist'), join(pkg, 'dist'), { recursive: true });
      const prebuilt = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
      if (existsSync(prebuilt)) {
        cpSync(prebuilt, join(pkg, 'prebuilds', `${process.platform}-${process.arch}`), { recursive: true });
      } else {
        expect(process.env.CI, 'CI must run `npm run prebuild` before the tests').toBeFalsy();
        mkdirSync(join(pkg, 'prebuilds', `${process.platform}-${process.arch}`), { recursive: true });
        cpSync(join(root, 'build', 'Release', 'myelin.node'), join(pkg, 'prebuilds', `${process.platform}-${process.arch}`, 'myelin.napi.node'));
      }
      expect(readdirSync(join(pkg, 'prebuilds', `${process.platform}-${process.arch}`)).some((f) => f.endsWith('.node'))).toBe(true);
      cpSync(join(root, 'node_modules', 'node-gyp-build'), join(dir, 'node_modules', 'node-gyp-build'), { recursive: true });
      expect(existsSync(join(pkg, 'build'))).toBe(false);
      writeFileSync(
        join(dir, 'main.cjs'),
        "const { native } = require('myelin/package.json') && require('./node_modules/myelin/dist/cjs/internal/native.js');\n" +
          "const m = new (native().SubjectMatcher)(); m.subscribe('p.>', 1); console.log(Array.from(m.match('p.q.r')).join());\n",
      );
      const r = node(['main.cjs'], dir, { PREBUILDS_ONLY: '1' });
      expect(r.err).toBe('');
      expect(r.out).toBe('1');
    });
  });
});
