// The queue-checker run (shared/RELIABILITY.md) for one transport, used by
// queue-checker.test.ts (20,000 events) and scripts/cluster-check.mjs (1,000,000):
//
//   our own broker (brokers.ts) -> 3 consumer processes in one queue group
//   (fixtures/queue-consumer.mjs, each writes what it reads to a file) -> 1 producer
//   process (fixtures/queue-producer.mjs, publishAsync, writes what was acknowledged)
//   -> faults at fixed points of the producer's progress:
//        20%  kill -9 a consumer, start a replacement
//        40%  SIGSTOP a consumer for ackWaitMs + 1 s, then SIGCONT
//        60%  kill -9 the broker, restart it on the same port and store
//   -> the producer finishes -> wait until every acknowledged value was read (or the
//   heal deadline) -> stop the consumers -> the checker over the files.
//
// Redis runs with `--appendonly yes --appendfsync always` here: a Redis without
// persistence restarts empty by design, which would make the broker fault a test of
// nothing. JetStream stores to files in the broker's temp dir (its default lazy fsync:
// a process kill keeps what reached the page cache).
import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNats, startRedis, type Broker } from './brokers.js';
import { QueueChecker, type QueueReport } from './checker.js';

export type Kind = 'nats' | 'redis';

export interface CheckOptions {
  kind: Kind;
  events: number;
  /** Producer pace, events/s (0: as fast as its window allows). */
  rate?: number;
  consumers?: number;
  ackWaitMs?: number;
  /** After the producer finishes, how long to wait for every acknowledged value to be read. */
  healDeadlineMs?: number;
  /** Which faults to inject (default all three). */
  faults?: { killConsumer?: boolean; stopConsumer?: boolean; restartBroker?: boolean };
  log?: (s: string) => void;
}

export interface FaultRecord {
  fault: string;
  /** Producer's acknowledged count when the fault was injected. */
  atAcked: number;
  /** Milliseconds since the producer started. */
  atMs: number;
  note?: string;
}

export interface CheckResult {
  kind: Kind;
  report: QueueReport;
  faults: FaultRecord[];
  producer: { acked: number; failures: number; unknown: number; ms: number };
  /** Per consumer process: events handled, of which redelivered (a killed one reports nothing). */
  consumers: { name: string; handled?: number; redelivered?: number; killed: boolean }[];
  /** Whether every acknowledged value was read before the heal deadline. */
  healed: boolean;
  healMs: number;
  broker: string;
}

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Proc {
  name: string;
  child: ChildProcess;
  out: string;
  killed: boolean;
  exited: Promise<void>;
  messages: ((m: { type: string; [k: string]: unknown }) => void)[];
}

function start(script: string, name: string, cfg: object, out: string): Proc {
  const child = fork(fixture(script), [JSON.stringify(cfg)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const p: Proc = { name, child, out, killed: false, exited: new Promise((r) => child.once('exit', () => r())), messages: [] };
  child.on('message', (m: { type: string }) => {
    for (const f of [...p.messages]) f(m);
  });
  return p;
}

function next(p: Proc, type: string, timeoutMs = 30_000): Promise<{ type: string; [k: string]: unknown }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${p.name}: no '${type}' message within ${timeoutMs} ms`));
    }, timeoutMs);
    const onExit = (code: number | null, sig: string | null) => {
      done();
      reject(new Error(`${p.name} exited (${code ?? sig}) before '${type}'`));
    };
    const f = (m: { type: string }) => {
      if (m.type !== type) return;
      done();
      resolve(m);
    };
    const done = () => {
      clearTimeout(timer);
      p.messages = p.messages.filter((x) => x !== f);
      p.child.off('exit', onExit);
    };
    p.messages.push(f);
    p.child.once('exit', onExit);
  });
}

/** Reads the lines appended to a file since the last call (a partial last line waits for its newline). */
class Tail {
  private offset = 0;
  private carry = '';
  constructor(readonly path: string) {}
  read(): string[] {
    let size: number;
    try {
      size = statSync(this.path).size;
    } catch {
      return [];
    }
    if (size <= this.offset) return [];
    const buf = Buffer.allocUnsafe(size - this.offset);
    const fd = openSync(this.path, 'r');
    try {
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += n;
      const text = this.carry + buf.subarray(0, n).toString('utf8');
      const nl = text.lastIndexOf('\n');
      this.carry = text.slice(nl + 1);
      return nl < 0 ? [] : text.slice(0, nl).split('\n');
    } finally {
      closeSync(fd);
    }
  }
}

export async function runQueueCheck(opts: CheckOptions): Promise<CheckResult> {
  const log = opts.log ?? (() => {});
  const kind = opts.kind;
  const n = opts.events;
  const ackWaitMs = opts.ackWaitMs ?? 2000;
  const faultsOn = { killConsumer: true, stopConsumer: true, restartBroker: true, ...opts.faults };
  const dir = mkdtempSync(join(tmpdir(), `myelin-check-${kind}-`));
  const broker: Broker = kind === 'nats' ? await startNats({ jetstream: true }) : await startRedis({ appendonly: true });
  const procs: Proc[] = [];
  const faults: FaultRecord[] = [];
  try {
    // Short timeouts so that a publish during the broker outage fails fast and is retried.
    const transport =
      kind === 'nats'
        ? { kind, servers: broker.url, stream: 'CHECK', ackTimeoutMs: 3000, connectTimeoutMs: 10_000 }
        : { kind, url: broker.url, prefix: 'check', ackTimeoutMs: 3000, connectTimeoutMs: 10_000 };
    const subject = 'check.events';
    const consumerCfg = (name: string) => ({ transport, subject, queue: 'checker', ackWaitMs, out: join(dir, `${name}.log`) });
    const startConsumer = async (name: string) => {
      const cfg = consumerCfg(name);
      const p = start('queue-consumer.mjs', name, cfg, cfg.out);
      procs.push(p);
      await next(p, 'ready');
      return p;
    };
    const count = opts.consumers ?? 3;
    const members: Proc[] = [];
    for (let i = 0; i < count; i++) members.push(await startConsumer(`consumer-${i}`));
    log(`${kind}: broker ${broker.url} (pid ${broker.pid}), ${count} consumers ready`);

    const producerOut = join(dir, 'producer.log');
    const producer = start('queue-producer.mjs', 'producer', { transport, subject, producer: 'p1', n, rate: opts.rate ?? 0, window: 256, out: producerOut }, producerOut);
    procs.push(producer);
    await next(producer, 'ready');
    let progress = { acked: 0, failures: 0, unknown: 0 };
    producer.messages.push((m) => {
      if (m.type === 'progress') progress = m as unknown as typeof progress;
    });
    const finished = next(producer, 'done', 3_600_000);
    const t0 = Date.now();
    producer.child.send({ type: 'go' });
    let done: { acked: number; failures: number; unknown: number; ms: number } | undefined;
    void finished.then((m) => (done = m as unknown as typeof done)).catch(() => {});

    const reporter = setInterval(() => log(`${kind}: acked ${progress.acked}/${n}, publish failures ${progress.failures}, unknown ${progress.unknown}`), 5000);
    const at = async (fraction: number) => {
      while (!done && progress.acked < n * fraction) await sleep(10);
    };
    const record = (fault: string, note?: string) => {
      faults.push({ fault, atAcked: progress.acked, atMs: Date.now() - t0, note });
      log(`${kind}: fault at ${progress.acked} acked: ${fault}${note ? ` (${note})` : ''}`);
    };
    try {
      if (faultsOn.killConsumer) {
        await at(0.2);
        const victim = members[0];
        victim.killed = true;
        victim.child.kill('SIGKILL');
        await victim.exited;
        record(`kill -9 ${victim.name}`);
        members[0] = await startConsumer(`consumer-${count}`);
        record(`started ${members[0].name}`);
      }
      if (faultsOn.stopConsumer) {
        await at(0.4);
        const victim = members[1 % members.length];
        victim.child.kill('SIGSTOP');
        record(`SIGSTOP ${victim.name}`, `for ackWaitMs + 1000 = ${ackWaitMs + 1000} ms`);
        await sleep(ackWaitMs + 1000);
        victim.child.kill('SIGCONT');
        record(`SIGCONT ${victim.name}`);
      }
      if (faultsOn.restartBroker) {
        await at(0.6);
        broker.kill('SIGKILL');
        record('kill -9 broker');
        const t = Date.now();
        await broker.restart();
        record('broker restarted', `${Date.now() - t} ms down, pid ${broker.pid}`);
      }
      await finished;
    } finally {
      clearInterval(reporter);
    }
    const prod = (await finished) as unknown as { acked: number; failures: number; unknown: number; ms: number };
    log(`${kind}: producer done: ${prod.acked} acked, ${prod.failures} failed tries, ${prod.unknown} unknown, ${(prod.ms / 1000).toFixed(1)} s`);

    // Heal: every acknowledged value read, or the deadline.
    const acked = new Set<string>();
    for (const line of new Tail(producerOut).read()) if (line && line[0] !== 'u') acked.add(`p1-${line}`);
    const tails = procs.filter((p) => p !== producer).map((p) => new Tail(p.out));
    const missing = new Set(acked);
    const healStart = Date.now();
    const deadline = healStart + (opts.healDeadlineMs ?? 60_000);
    let lastLog = Date.now();
    for (;;) {
      for (const t of tails) for (const v of t.read()) missing.delete(v);
      if (missing.size === 0 || Date.now() > deadline) break;
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        log(`${kind}: healing: ${missing.size} acknowledged values not read yet`);
      }
      await sleep(100);
    }
    const healed = missing.size === 0;
    const healMs = Date.now() - healStart;
    log(`${kind}: ${healed ? 'healed' : 'NOT healed'} after ${healMs} ms (${missing.size} unread)`);

    // Stop the live consumers (a late SIGCONT first, in case a fault was cut short).
    const consumers: CheckResult['consumers'] = [];
    for (const p of procs) {
      if (p === producer) continue;
      if (p.killed) {
        consumers.push({ name: p.name, killed: true });
        continue;
      }
      p.child.kill('SIGCONT');
      try {
        const stopped = next(p, 'stopped', 20_000);
        p.child.send({ type: 'stop' });
        const m = (await stopped) as unknown as { stats: { handled: number; redelivered: number } };
        consumers.push({ name: p.name, killed: false, handled: m.stats.handled, redelivered: m.stats.redelivered });
      } catch (err) {
        log(`${kind}: ${(err as Error).message}`);
        consumers.push({ name: p.name, killed: false });
      }
    }

    const checker = new QueueChecker();
    for (let seq = 0; seq < n; seq++) checker.attempt('p1', seq);
    for (const line of new Tail(producerOut).read()) if (line && line[0] !== 'u') checker.ack('p1', Number(line));
    for (const p of procs) {
      if (p === producer) continue;
      for (const v of new Tail(p.out).read()) if (v) checker.read(v);
    }
    return { kind, report: checker.report(), faults, producer: prod, consumers, healed, healMs, broker: broker.url };
  } finally {
    for (const p of procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGKILL');
        p.child.kill('SIGCONT');
      }
    }
    await Promise.all(procs.map((p) => p.exited));
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
