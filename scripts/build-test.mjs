// Builds what the tests run, so that a test always runs the code it names:
//   dist/                        the TypeScript build (worker threads run lib/ from it)
//   build/Release/myelin.node    the shipping addon, incrementally, where node-gyp
//                                configured build/ (skipped for a prebuild-only tree)
//   build-test/myelin_test.node  the addon with test hooks (build-test-addon.mjs)
//
//   node scripts/build-test.mjs             everything (npm test runs this first)
//   node scripts/build-test.mjs --if-stale  dist/ only when a source is newer than its
//                                           stamp; the addons as above (vitest's
//                                           globalSetup, so `npx vitest run <file>` is safe)
//
// Builds serialise on one lock file where flock(1) exists, since several test runs may
// share a working tree: two build:ts runs at once would delete each other's dist/.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ifStale = process.argv.includes('--if-stale');

if (!process.env.MYELIN_BUILD_LOCKED && spawnSync('flock', ['--version'], { stdio: 'ignore' }).status === 0) {
  const r = spawnSync('flock', [join(tmpdir(), 'myelin-build.lock'), process.execPath, ...process.argv.slice(1)], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, MYELIN_BUILD_LOCKED: '1' },
  });
  process.exit(r.status ?? 1);
}

function run(label, cmd, args) {
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) {
    console.error(`build-test: ${label} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
  console.log(`build-test: ${label} ${Date.now() - t0} ms`);
}

/** The newest mtime under the inputs of build:ts (directories too: a deleted file changes its directory's). */
function newestInput() {
  let newest = 0;
  const visit = (p) => {
    const st = statSync(p);
    newest = Math.max(newest, st.mtimeMs);
    if (st.isDirectory()) for (const e of readdirSync(p)) visit(join(p, e));
  };
  for (const p of ['lib', 'tsconfig.json', 'scripts/build-ts.mjs']) visit(join(root, p));
  return newest;
}

function distIsStale() {
  const stamp = join(root, 'dist', '.build-stamp');
  return !existsSync(stamp) || newestInput() > statSync(stamp).mtimeMs;
}

if (!ifStale || distIsStale()) run('build:ts', process.execPath, [join(root, 'scripts', 'build-ts.mjs')]);
if (existsSync(join(root, 'build', 'Makefile'))) {
  run('shipping addon (node-gyp build)', process.execPath, [join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'), 'build', '--loglevel=warn']);
}
run('test addon', process.execPath, [join(root, 'scripts', 'build-test-addon.mjs')]);
