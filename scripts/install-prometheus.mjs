// Installs Debian's `prometheus` package (prometheus and promtool) for the metrics
// tests when they are missing: `node scripts/install-prometheus.mjs`. Needs root and
// apt-get; otherwise it says so and exits 1, and the tests that need the tools skip.
// The package's post-install starts no daemon where policy-rc.d forbids it (containers);
// where it did, the daemon on :9090 is stopped again, so nothing is left running.
import { execFileSync, spawnSync } from 'node:child_process';

export function havePrometheus() {
  const ok = (cmd) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
  return ok('promtool') && ok('prometheus');
}

export function installPrometheus() {
  if (havePrometheus()) return true;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return false;
  if (spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0) return false;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update'], { stdio: 'ignore', env });
  const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'prometheus'], { stdio: 'ignore', env });
  // A daemon the package may have started (no systemctl here): stop only the one
  // listening with the package's own config, by its pid.
  try {
    const out = execFileSync('pgrep', ['-f', '^/usr/bin/prometheus( |$)'], { encoding: 'utf8' });
    for (const pid of out.split('\n').filter(Boolean)) {
      const cmd = execFileSync('ps', ['-o', 'args=', '-p', pid], { encoding: 'utf8' });
      if (!cmd.includes('--web.listen-address=127.0.0.1:')) process.kill(Number(pid), 'SIGTERM');
    }
  } catch {
    // none running
  }
  return r.status === 0 && havePrometheus();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const ok = installPrometheus();
  console.log(ok ? 'prometheus and promtool are installed' : 'could not install prometheus: run as root on Debian/Ubuntu (apt-get install prometheus)');
  process.exit(ok ? 0 : 1);
}
