// Shared plumbing for the scale-out scenarios (issue 11): where the brokers are, a
// reachability check that turns a missing server into a clear skip, the consumer child
// processes and their IPC protocol, and the repeat loop that times one end-to-end run
// per repeat (first publish -> the last consumer's last handled event) and emits a
// RESULT line with the publisher's and the consumers' CPU time per event.
//
// Protocol with a consumer child (consumer.mjs, forked with an IPC channel):
//   child -> {type:'ready'} once subscribed (durable consumer / group exists)
//   parent -> {type:'expect', n}  child -> {type:'armed'}; counts handled events from 0
//   child -> {type:'progress', count} every 1/4 s while counting
//   parent -> {type:'report'}     child -> {type:'count', count, cpuUs, lastAt}
//   parent -> {type:'stop'}       child closes and exits
// With several children the parent sums their counts: a queue group splits the
// events, so the run ends when the sum reaches n.
import { fork } from 'node:child_process';
import { createConnection } from 'node:net';
import { fileURLToPath } from 'node:url';
import { emit, repeats, summarize } from '../lib.mjs';

export const NATS_URL = process.env.MYELIN_NATS_URL ?? 'nats://127.0.0.1:4222';
export const REDIS_URL = process.env.MYELIN_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A small JSON object (~100 B serialised), the same shape for every row. */
export function makeEvent(i) {
  return { id: i, type: 'order.created', customer: `cust-${i & 1023}`, amount: 1234.5, currency: 'EUR', ok: true };
}

/** Unique per run, so parallel runs and leftovers never collide on the shared servers. */
export const runId = `${process.pid.toString(36)}${Date.now().toString(36)}`;

/** True when something accepts TCP connections at the URL's host:port within 1 s. */
export function reachable(url) {
  const u = new URL(url);
  const port = Number(u.port || (u.protocol === 'redis:' ? 6379 : 4222));
  return new Promise((resolve) => {
    const sock = createConnection({ host: u.hostname, port });
    const done = (ok) => {
      clearTimeout(t);
      sock.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), 1000);
    sock.on('connect', () => done(true));
    sock.on('error', () => done(false));
  });
}

/** Prints the skip and exits 0 with no RESULT lines: the table leaves the rows out. */
export async function requireServer(url, what) {
  if (await reachable(url)) return;
  process.stderr.write(`  skip: ${what}: no server at ${url} (set MYELIN_${url.startsWith('redis') ? 'REDIS' : 'NATS'}_URL)\n`);
  process.exit(0);
}

export function log(s) {
  process.stderr.write(`  ${s}\n`);
}

/** One consumer child process; `mode` selects the client in consumer.mjs. */
export class Consumer {
  constructor(mode, config) {
    this.count = 0;
    this.held = 0;
    this.firstHeldAt = undefined;
    this.waiters = [];
    this.exited = false;
    this.child = fork(fileURLToPath(new URL('./consumer.mjs', import.meta.url)), [mode, JSON.stringify(config)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (m) => {
      if (m.type === 'progress') this.count = m.count;
      if (m.type === 'held') {
        this.held = m.held;
        if (m.held > 0 && this.firstHeldAt === undefined) this.firstHeldAt = performance.timeOrigin + performance.now();
      }
      for (const w of [...this.waiters]) w(m);
    });
    this.exit = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exited = true;
        for (const w of [...this.waiters]) w({ type: 'exit', code, signal });
        resolve({ code, signal });
      });
    });
  }

  /** Resolves with the next message of `type`; rejects if the child exits first. */
  next(type, timeoutMs = 60_000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`consumer ${this.child.pid}: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      const w = (m) => {
        if (m.type !== type && m.type !== 'exit' && m.type !== 'error') return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((x) => x !== w);
        if (m.type === type) resolve(m);
        else reject(new Error(`consumer ${this.child.pid}: ${m.type === 'exit' ? `exited (${m.code ?? m.signal})` : m.message}`));
      };
      this.waiters.push(w);
    });
  }

  send(m) {
    if (!this.exited) this.child.send(m);
  }

  async stop() {
    if (this.exited) return;
    this.send({ type: 'stop' });
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exit;
    clearTimeout(t);
  }
}

/** Starts `k` consumers and waits until each has subscribed. */
export async function startConsumers(mode, config, k = 1) {
  const list = Array.from({ length: k }, (_, i) => new Consumer(mode, { ...config, member: i }));
  await Promise.all(list.map((c) => c.next('ready')));
  return list;
}

export async function stopConsumers(list) {
  await Promise.all(list.map((c) => c.stop()));
}

/**
 * Waits until the consumers together handled n events. Returns false when the count
 * stopped growing for `idleMs` (an at-most-once transport dropped some; the caller
 * reports the loss and uses the count it got).
 */
async function waitAll(list, n, idleMs) {
  let last = -1;
  let since = Date.now();
  for (;;) {
    const total = list.reduce((s, c) => s + c.count, 0);
    if (total >= n) return true;
    if (total !== last) {
      last = total;
      since = Date.now();
    } else if (Date.now() - since > idleMs) return false;
    if (list.some((c) => c.exited)) throw new Error('a consumer exited during the run');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * The repeat loop: a warm-up of n/5, then `repeats` runs of n events. publish(n) sends
 * them (resolves when the publisher is done sending, not when they are handled). The
 * time is from the first publish to the moment the consumers' reported last-event time
 * says the n-th was handled (their epoch clocks; same machine).
 */
export async function measureEndToEnd(scenario, list, n, publish, { idleMs = 3000, after } = {}) {
  const samples = [];
  const one = async (count) => {
    for (const c of list) c.count = 0;
    const armed = list.map((c) => c.next('armed'));
    for (const c of list) c.send({ type: 'expect', n: count });
    await Promise.all(armed);
    const cpu0 = process.cpuUsage();
    const t0 = performance.timeOrigin + performance.now();
    await publish(count);
    const complete = await waitAll(list, count, idleMs);
    const reports = list.map((c) => c.next('count'));
    for (const c of list) c.send({ type: 'report' });
    const got = await Promise.all(reports);
    const cpu = process.cpuUsage(cpu0);
    const handled = got.reduce((s, m) => s + m.count, 0);
    const lastAt = Math.max(...got.map((m) => m.lastAt));
    const ms = Math.max(0.001, lastAt - t0);
    if (after) await after();
    if (!complete) log(`${scenario}: ${count - handled} of ${count} events not handled (at-most-once transport dropped them)`);
    return {
      rate: (handled * 1000) / ms,
      cpu: ((cpu.user + cpu.system) * 1000) / count,
      consumerCpu: (got.reduce((s, m) => s + m.cpuUs, 0) * 1000) / Math.max(1, handled),
      lost: count - handled,
    };
  };
  process.stderr.write(`  ${scenario}: warm-up`);
  await one(Math.max(1, Math.floor(n / 5)));
  for (let r = 0; r < repeats; r++) {
    samples.push(await one(n));
    process.stderr.write(' .');
  }
  process.stderr.write('\n');
  emit(scenario, 'events/s', samples.map((s) => s.rate), {
    cpuNsPerOp: summarize(samples.map((s) => s.cpu)).median,
    consumerCpuNsPerOp: summarize(samples.map((s) => s.consumerCpu)).median,
    consumers: list.length,
    lost: samples.reduce((a, s) => a + s.lost, 0),
  });
}

/** Sends up to `window` publishes outstanding: `send(i)` returns a promise; resolves once all settled. */
export async function windowed(n, window, send) {
  const ring = new Array(Math.min(window, n));
  for (let i = 0; i < n; i++) {
    const slot = i % ring.length;
    if (ring[slot]) await ring[slot];
    ring[slot] = send(i);
  }
  await Promise.all(ring);
}

/**
 * A myelin Bus on a transport, or undefined (with a skip line) when this build has no
 * such transport or it cannot connect: the raw rows still run.
 *
 * capacity 16,384: publishAsync's ackTimeoutMs (5 s) runs from the moment the outbox
 * accepts the event, queueing included, so an outbox deeper than ~5 s of engine
 * throughput (65,536 at 12 K/s under load) fails healthy publishes as fate-unknown.
 * The raw anchors keep 1,000 outstanding; 16,384 is still far more than the engine
 * window needs.
 */
export async function openBus(transport, scenario, extra = {}) {
  let bus;
  try {
    const { Bus } = await import('../../dist/esm/index.js');
    bus = new Bus({ capacity: 16384, ...extra, transport });
    if (!bus.ready || typeof bus.ready.then !== 'function') throw new Error('this build of Bus has no transport option (bus.ready missing)');
    await bus.ready;
    return bus;
  } catch (err) {
    process.stderr.write(`  skip: ${scenario}: ${err?.message ?? err}\n`);
    await bus?.close?.().catch(() => {});
    return undefined;
  }
}

/**
 * The myelin row of a durable scenario: a bus on `transport` publishing `n` events to
 * `subject` (publish(), publishAsync when the outbox is full) to a queue group in a
 * consumer process, measured end to end; the bus's streams or keys are removed after.
 */
export async function measureBusGroup(scenario, transport, subject, n, cleanup) {
  const bus = await openBus(transport, scenario);
  if (!bus) return;
  try {
    const consumers = await startConsumers('myelin', { transport, subject, queue: 'bench', subscribe: { ackWaitMs: 30_000 } });
    await measureEndToEnd(scenario, consumers, n, async (count) => {
      for (let i = 0; i < count; i++) {
        const d = makeEvent(i);
        if (!bus.publish(subject, d)) await bus.publishAsync(subject, d);
      }
      await bus.drain();
    });
    await stopConsumers(consumers);
  } finally {
    await bus.close();
    await cleanup(transport);
  }
}
