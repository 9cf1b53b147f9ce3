// Compiles lib/ to dist/esm (ESM) and dist/cjs (CommonJS), both with .d.ts, then fixes
// the one file whose body differs between the formats (lib/internal/here.ts). Last it
// writes dist/.build-stamp, dated when the build started, which scripts/build-test.mjs
// compares with lib/ to tell whether dist/ is stale.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function run(args) {
  const r = spawnSync(process.execPath, [tsc, ...args], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const started = new Date();
rmSync(join(root, 'dist'), { recursive: true, force: true });
console.log('build:ts: dist/esm');
run(['-p', 'tsconfig.json']);
console.log('build:ts: dist/cjs');
run(['-p', 'tsconfig.json', '--module', 'commonjs', '--moduleResolution', 'node10', '--outDir', 'dist/cjs']);
mkdirSync(join(root, 'dist', 'cjs'), { recursive: true });
writeFileSync(join(root, 'dist', 'esm', 'package.json'), '{ "type": "module" }\n');
writeFileSync(join(root, 'dist', 'cjs', 'package.json'), '{ "type": "commonjs" }\n');
writeFileSync(
  join(root, 'dist', 'cjs', 'internal', 'here.js'),
  '"use strict";\nObject.defineProperty(exports, "__esModule", { value: true });\nexports.moduleDir = __dirname;\n',
);
// Dated at the start: a source saved while tsc ran is newer, so the next check rebuilds.
const stamp = join(root, 'dist', '.build-stamp');
writeFileSync(stamp, `${started.toISOString()}\n`);
utimesSync(stamp, started, started);
console.log('build:ts: done');
