// Builds build-test/myelin_test.node: the binding compiled with MYELIN_TEST_HOOKS
// (CMakeLists.txt's myelin_test target), which test/native-test-build.ts loads. The
// shipping addon (binding.gyp, prebuildify) never has the hooks. Incremental: a second
// run with nothing changed only lets make check its dependencies.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'build-test');

/** Node's headers: the ones node-gyp used for the shipping build, else the ones next to node. */
function nodeIncludeDir() {
  const candidates = [];
  const gypi = join(root, 'build', 'config.gypi');
  if (existsSync(gypi)) {
    const m = /"nodedir":\s*"([^"]+)"/.exec(readFileSync(gypi, 'utf8'));
    if (m) candidates.push(join(m[1], 'include', 'node'));
  }
  candidates.push(join(dirname(process.execPath), '..', 'include', 'node'));
  const found = candidates.find((d) => existsSync(join(d, 'node_api.h')));
  if (!found) {
    console.error(`build-test-addon: node_api.h not found in ${candidates.join(', ')}; run \`npm run build:native\` first`);
    process.exit(1);
  }
  return found;
}

function step(label, args) {
  const r = spawnSync('cmake', args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) {
    console.error(`build-test-addon: ${label} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}

if (!existsSync(join(dir, 'CMakeCache.txt'))) {
  step('configure', ['-S', '.', '-B', dir, '-DCMAKE_BUILD_TYPE=Release', '-DMYELIN_TEST_ADDON=ON',
    '-DMYELIN_TESTS=OFF', '-DMYELIN_BENCH=OFF', `-DNODE_INCLUDE_DIR=${nodeIncludeDir()}`]);
}
step('build', ['--build', dir, '--target', 'myelin_test', '-j', String(Math.max(1, availableParallelism()))]);
