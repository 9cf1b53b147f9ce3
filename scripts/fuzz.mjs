// libFuzzer runs of the native parsers (native/fuzz/fuzz_*.cc).
//   npm run fuzz                       every target, 600 s each
//   npm run fuzz -- --seconds=60 json  one target, one minute
// Installs clang from Debian's packages when it is missing (needs root and apt).
// Corpora grow in native/fuzz/corpus-<target>/ (git-ignored), seeded from
// native/fuzz/seeds/<target>/; crashes land in native/fuzz/artifacts/.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const seconds = Number(args.find((a) => a.startsWith('--seconds='))?.slice(10) ?? 600);
if (!(seconds > 0)) {
  console.error('fuzz: --seconds must be a positive number');
  process.exit(2);
}
const all = readdirSync(join(root, 'native', 'fuzz'))
  .filter((f) => /^fuzz_.*\.cc$/.test(f))
  .map((f) => f.slice(5, -3));
const wanted = args.filter((a) => !a.startsWith('--'));
for (const w of wanted) {
  if (!all.includes(w)) {
    console.error(`fuzz: no target '${w}'; targets: ${all.join(', ')}`);
    process.exit(2);
  }
}
const targets = wanted.length ? wanted : all;

function sh(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit', ...opts });
  return r.status === 0;
}

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

if (!have('clang++')) {
  console.log('fuzz: clang++ not found; installing clang from Debian packages');
  if (!sh('apt-get', ['update', '-qq']) || !sh('apt-get', ['install', '-y', '-qq', 'clang', 'libclang-rt-14-dev'])) {
    console.error('fuzz: could not install clang (needs root and apt-get)');
    process.exit(1);
  }
}

const build = join(root, 'build-fuzz');
console.log('fuzz: building targets with clang (-fsanitize=fuzzer,address,undefined)');
if (
  !sh('cmake', ['-S', '.', '-B', build, '-DCMAKE_CXX_COMPILER=clang++', '-DMYELIN_FUZZ=ON', '-DMYELIN_SANITIZE=fuzzer', '-DMYELIN_TESTS=OFF', '-DMYELIN_BENCH=OFF']) ||
  !sh('cmake', ['--build', build, '-j', '2'])
) {
  process.exit(1);
}

const artifacts = join(root, 'native', 'fuzz', 'artifacts');
mkdirSync(artifacts, { recursive: true });
let failed = false;
for (const t of targets) {
  const corpus = join(root, 'native', 'fuzz', `corpus-${t}`);
  mkdirSync(corpus, { recursive: true });
  const seeds = join(root, 'native', 'fuzz', 'seeds', t);
  if (existsSync(seeds)) cpSync(seeds, corpus, { recursive: true });
  console.log(`fuzz: ${t} for ${seconds} s`);
  const ok = sh(join(build, `fuzz_${t}`), [corpus, `-max_total_time=${seconds}`, `-artifact_prefix=${artifacts}/${t}-`, '-print_final_stats=1']);
  console.log(`fuzz: ${t} ${ok ? 'finished clean' : 'FOUND A CRASH (see native/fuzz/artifacts)'}`);
  failed ||= !ok;
}
process.exit(failed ? 1 : 0);
