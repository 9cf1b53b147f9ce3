// Builds and runs the native unit tests with CMake + ctest.
//   node scripts/native-tests.mjs                     plain Release build (build-native/)
//   node scripts/native-tests.mjs --sanitize=address  ASan+UBSan (build-asan/)
//   node scripts/native-tests.mjs --sanitize=thread   TSan (build-tsan/)
// Exits non-zero when a build step or a test fails.
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = process.argv.find((a) => a.startsWith('--sanitize='));
const sanitize = arg ? arg.slice('--sanitize='.length) : '';
if (!['', 'address', 'thread'].includes(sanitize)) {
  console.error(`native-tests: --sanitize must be address or thread, got ${sanitize}`);
  process.exit(2);
}
const dir = join(root, sanitize === '' ? 'build-native' : sanitize === 'address' ? 'build-asan' : 'build-tsan');
const jobs = String(Math.max(1, availableParallelism()));

function step(label, cmd, args, env = {}) {
  console.log(`native-tests: ${label}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) {
    console.error(`native-tests: ${label} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}

step('configure', 'cmake', ['-S', '.', '-B', dir, `-DMYELIN_SANITIZE=${sanitize}`, '-DCMAKE_BUILD_TYPE=Release',
  sanitize ? '-DMYELIN_BENCH=OFF' : '-DMYELIN_BENCH=ON']);
step('build', 'cmake', ['--build', dir, '-j', jobs]);
const env = {};
if (sanitize === 'address') env.ASAN_OPTIONS = 'detect_leaks=1:abort_on_error=1';
if (sanitize === 'thread') env.TSAN_OPTIONS = 'halt_on_error=1:second_deadlock_stack=1';
step('run', 'ctest', ['--test-dir', dir, '--output-on-failure'], env);
