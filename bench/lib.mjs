// Shared harness for the JS benchmark scenarios: warm-up, repeats (MYELIN_BENCH_REPEATS,
// default 5), median/min/max, and the RESULT line format the native benches print, so
// `myelin bench` reads both the same way. Progress goes to stderr.
export const repeats = Math.max(1, Number(process.env.MYELIN_BENCH_REPEATS ?? 5));
export const scale = Number(process.env.MYELIN_BENCH_SCALE ?? 1) > 0 ? Number(process.env.MYELIN_BENCH_SCALE ?? 1) : 1;
export const scaled = (n) => Math.max(1, Math.floor(n * scale));

let sink = 0;
/** Fold a delivered value into a printed checksum, so no work is dead code. */
export function consume(v) {
  sink = (sink + (typeof v === 'number' ? v : 1)) % 1e15;
}

export function summarize(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  return { median, min: s[0], max: s[n - 1] };
}

export function emit(scenario, metric, samples, extra = {}) {
  const { median, min, max } = summarize(samples);
  console.log(`RESULT ${JSON.stringify({ scenario, metric, median, min, max, repeats: samples.length, ...extra })}`);
}

/**
 * Times `ops` calls' worth of work done by fn(ops) and reports ops/s (or ns/op with
 * metric 'ns/op'), plus CPU time per op.
 */
export function measure(scenario, metric, ops, fn) {
  process.stderr.write(`  ${scenario}: warm-up`);
  fn(Math.max(1, Math.floor(ops / 5)));
  const samples = [];
  for (let r = 0; r < repeats; r++) samples.push(timedSync(ops, () => fn(ops)));
  finish(scenario, metric, ops, samples);
}

/** measure() for work that awaits (a publish loop that waits for delivery). */
export async function measureAsync(scenario, metric, ops, fn) {
  const samples = [];
  process.stderr.write(`  ${scenario}: warm-up`);
  await fn(Math.max(1, Math.floor(ops / 5)));
  for (let r = 0; r < repeats; r++) samples.push(await timed(ops, () => fn(ops)));
  finish(scenario, metric, ops, samples);
}

function timedSync(ops, work) {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  work();
  return sample(ops, t0, c0);
}

async function timed(ops, work) {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await work();
  return sample(ops, t0, c0);
}

function sample(ops, t0, c0) {
  const ns = Number(process.hrtime.bigint() - t0);
  const c = process.cpuUsage(c0);
  process.stderr.write(' .');
  return { ns, cpu: ((c.user + c.system) * 1000) / ops };
}

function finish(scenario, metric, ops, samples) {
  process.stderr.write('\n');
  const values = samples.map((s) => (metric === 'ns/op' ? s.ns / ops : (ops * 1e9) / s.ns));
  emit(scenario, metric, values, { cpuNsPerOp: summarize(samples.map((s) => s.cpu)).median });
}

export function done() {
  process.stderr.write(`  checksum ${sink}\n`);
}

