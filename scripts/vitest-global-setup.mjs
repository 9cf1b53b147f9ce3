// vitest globalSetup: before any test file runs, bring dist/ and the addons up to date
// (scripts/build-test.mjs --if-stale), so that `npx vitest run <file>` runs the code
// the test names, like `npm test` does. Worker-pool tests run lib/ from dist/.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup() {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-test.mjs'), '--if-stale'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`scripts/build-test.mjs --if-stale failed (exit ${r.status ?? r.signal})`);
}
