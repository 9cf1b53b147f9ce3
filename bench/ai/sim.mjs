// Starts `myelin simulate` in a child process (so the upstream does not share the
// benchmark's event loop) and resolves with its base URL.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export async function startSimulator(args = []) {
  const bin = fileURLToPath(new URL('../../bin/myelin.mjs', import.meta.url));
  const child = spawn(process.execPath, [bin, 'simulate', '--port', '0', '--quiet', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /http:\/\/127\.0\.0\.1:\d+/.exec(out);
      if (m) resolve(m[0]);
    });
    child.once('exit', (code) => reject(new Error(`simulator exited with ${code}: ${out}`)));
  });
  child.stdout.resume();
  return { url, close: () => new Promise((r) => (child.once('exit', r), child.kill('SIGTERM'))) };
}

/** Offers `rate` calls/s for `seconds` (open loop: the schedule does not wait for
 * answers) and returns every latency in microseconds, sorted. */
export async function openLoop(rate, seconds, call) {
  const total = Math.floor(rate * seconds);
  const lat = new Float64Array(total);
  let sent = 0;
  let done = 0;
  let failed = 0;
  const start = performance.now();
  await new Promise((resolve) => {
    const fire = () => {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
      for (; sent < due; sent++) {
        const i = sent;
        const t0 = performance.now();
        call(i).then(
          () => {
            lat[i] = (performance.now() - t0) * 1000;
            if (++done === total) resolve();
          },
          () => {
            failed++;
            lat[i] = Number.NaN;
            if (++done === total) resolve();
          },
        );
      }
      if (sent < total) setTimeout(fire, 1);
    };
    fire();
  });
  const ok = Array.from(lat).filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  return { latencies: ok, failed };
}

export function pct(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
