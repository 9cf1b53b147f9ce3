#!/usr/bin/env node
// Installs Debian's chromium for the headless-browser gateway test
// (test/gateway/browser.test.ts) when /usr/bin/chromium is missing and we are root.
// Exit 0 when the browser is there afterwards; 1 with a reason on stderr otherwise.
// The test calls this itself; CI may run it up front (`node scripts/install-chromium.mjs`).
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

export const CHROMIUM = '/usr/bin/chromium';

export function installChromium({ quiet = false } = {}) {
  if (existsSync(CHROMIUM)) return { ok: true };
  if (process.platform !== 'linux') return { ok: false, reason: `no ${CHROMIUM} and not Linux: install Chromium yourself` };
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return { ok: false, reason: `no ${CHROMIUM} and not root: run 'sudo apt-get install -y chromium'` };
  }
  if (spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status !== 0) {
    return { ok: false, reason: `no ${CHROMIUM} and no apt-get: install Chromium yourself` };
  }
  const stdio = quiet ? 'ignore' : 'inherit';
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], { stdio, env });
  if (r.status !== 0) {
    // A fresh machine's package lists may be empty or stale.
    spawnSync('apt-get', ['update'], { stdio, env });
    r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], { stdio, env });
  }
  if (r.status !== 0 || !existsSync(CHROMIUM)) return { ok: false, reason: `apt-get install chromium failed (exit ${r.status ?? r.signal})` };
  return { ok: true };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = installChromium();
  if (!r.ok) {
    console.error(`install-chromium: ${r.reason}`);
    process.exit(1);
  }
  console.log(`install-chromium: ${CHROMIUM} is there`);
}
