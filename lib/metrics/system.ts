// Process and system series, sampled once a second into a MetricsSink (names without
// the sink's prefix):
//
//   system_cpu_utilization_ratio{cpu}         busy share of each core over the last interval
//   process_cpu_seconds_total{mode}           user and system CPU time of this process
//   process_resident_memory_bytes             RSS
//   process_heap_used_bytes                   V8 heap in use
//   system_memory_utilization_ratio           (total - available) / total
//   nodejs_eventloop_lag_seconds{quantile}    event-loop delay over the last interval: 0.5, 0.99, 1 (max)
//   nodejs_eventloop_utilization_ratio        share of the last interval the loop was busy
//   nodejs_gc_duration_seconds{kind}          GC pauses (histogram)
//   process_open_fds, process_max_fds
//
// Everything is read from Node's own counters (os.cpus(), process.cpuUsage(),
// perf_hooks) and /proc where Linux has it; a source that fails is skipped, never thrown.
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay, performance, PerformanceObserver, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import { type CounterHandle, type GaugeHandle, type HistogramHandle, makeInstrument, type MetricsSink } from '../internal/metrics-sink.js';

const GC_KINDS: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };

export class SystemMetrics {
  errors = 0;
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #cpu: GaugeHandle | undefined;
  readonly #procCpu: CounterHandle | undefined;
  readonly #rss: GaugeHandle | undefined;
  readonly #heap: GaugeHandle | undefined;
  readonly #mem: GaugeHandle | undefined;
  readonly #lag: GaugeHandle | undefined;
  readonly #elu: GaugeHandle | undefined;
  readonly #gc: HistogramHandle | undefined;
  readonly #fds: GaugeHandle | undefined;
  readonly #maxFds: GaugeHandle | undefined;
  readonly #delay: IntervalHistogram | undefined;
  readonly #gcObserver: PerformanceObserver | undefined;
  #lastCpus = os.cpus().map((c) => c.times);
  #lastUsage = process.cpuUsage();
  #lastElu: EventLoopUtilization = performance.eventLoopUtilization();
  #closed = false;

  constructor(sink: MetricsSink, intervalMs = 1000) {
    const make = <T>(create: () => T, method: string) => makeInstrument(create, method, () => this.errors++);
    this.#cpu = make(() => sink.gauge('system_cpu_utilization_ratio', { help: 'Busy share of each CPU over the last interval', labelNames: ['cpu'] }), 'set');
    this.#procCpu = make(() => sink.counter('process_cpu_seconds_total', { help: 'CPU time of this process', labelNames: ['mode'] }), 'inc');
    this.#rss = make(() => sink.gauge('process_resident_memory_bytes', { help: 'Resident set size' }), 'set');
    this.#heap = make(() => sink.gauge('process_heap_used_bytes', { help: 'V8 heap in use' }), 'set');
    this.#mem = make(() => sink.gauge('system_memory_utilization_ratio', { help: 'Share of system memory in use (total - available) / total' }), 'set');
    this.#lag = make(() => sink.gauge('nodejs_eventloop_lag_seconds', { help: 'Event-loop delay over the last interval', labelNames: ['quantile'] }), 'set');
    this.#elu = make(() => sink.gauge('nodejs_eventloop_utilization_ratio', { help: 'Share of the last interval the event loop was busy' }), 'set');
    this.#gc = make(
      () => sink.histogram('nodejs_gc_duration_seconds', { help: 'Garbage collection pauses', labelNames: ['kind'], buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5] }),
      'observe',
    );
    this.#fds = make(() => sink.gauge('process_open_fds', { help: 'Open file descriptors' }), 'set');
    this.#maxFds = make(() => sink.gauge('process_max_fds', { help: 'File descriptor limit' }), 'set');
    try {
      this.#delay = monitorEventLoopDelay({ resolution: 10 });
      this.#delay.enable();
    } catch {
      this.errors++;
    }
    if (this.#gc) {
      try {
        const gc = this.#gc;
        const labels = Object.fromEntries(Object.entries(GC_KINDS).map(([k, v]) => [k, { kind: v }]));
        this.#gcObserver = new PerformanceObserver((list) => {
          for (const e of list.getEntries()) {
            const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
            this.#call(() => gc.observe(labels[kind] ?? { kind: 'other' }, e.duration / 1000));
          }
        });
        this.#gcObserver.observe({ entryTypes: ['gc'] });
      } catch {
        this.errors++;
      }
    }
    this.#timer = setInterval(() => this.sample(), intervalMs);
    this.#timer.unref();
    this.#maxFdsOnce();
  }

  #call(f: () => void): void {
    try {
      f();
    } catch {
      this.errors++;
    }
  }

  #maxFdsOnce(): void {
    const g = this.#maxFds;
    if (!g) return;
    try {
      const limits = readFileSync('/proc/self/limits', 'utf8');
      const m = /Max open files\s+(\d+)/.exec(limits);
      if (m) this.#call(() => g.set(undefined, Number(m[1])));
    } catch {
      // not Linux
    }
  }

  /** Takes one sample now (the timer calls it every interval). */
  sample(): void {
    if (this.#closed) return;
    const cpus = os.cpus();
    const cpu = this.#cpu;
    if (cpu) {
      for (let i = 0; i < cpus.length; i++) {
        const now = cpus[i].times;
        const was = this.#lastCpus[i];
        if (!was) continue;
        const busy = now.user - was.user + (now.nice - was.nice) + (now.sys - was.sys) + (now.irq - was.irq);
        const total = busy + (now.idle - was.idle);
        if (total > 0) this.#call(() => cpu.set({ cpu: String(i) }, busy / total));
      }
    }
    this.#lastCpus = cpus.map((c) => c.times);
    const usage = process.cpuUsage();
    const pc = this.#procCpu;
    if (pc) {
      const du = (usage.user - this.#lastUsage.user) / 1e6;
      const ds = (usage.system - this.#lastUsage.system) / 1e6;
      if (du > 0) this.#call(() => pc.inc({ mode: 'user' }, du));
      if (ds > 0) this.#call(() => pc.inc({ mode: 'system' }, ds));
    }
    this.#lastUsage = usage;
    const mu = process.memoryUsage();
    const rss = this.#rss;
    if (rss) this.#call(() => rss.set(undefined, mu.rss));
    const heap = this.#heap;
    if (heap) this.#call(() => heap.set(undefined, mu.heapUsed));
    const mem = this.#mem;
    if (mem) {
      const total = os.totalmem();
      const avail = availableMemory() ?? os.freemem();
      if (total > 0) this.#call(() => mem.set(undefined, (total - avail) / total));
    }
    const lag = this.#lag;
    const d = this.#delay;
    if (lag && d && d.count > 0) {
      this.#call(() => lag.set({ quantile: '0.5' }, d.percentile(50) / 1e9));
      this.#call(() => lag.set({ quantile: '0.99' }, d.percentile(99) / 1e9));
      this.#call(() => lag.set({ quantile: '1' }, d.max / 1e9));
      d.reset();
    }
    const elu = this.#elu;
    const nowElu = performance.eventLoopUtilization();
    if (elu) {
      const delta = performance.eventLoopUtilization(nowElu, this.#lastElu);
      this.#call(() => elu.set(undefined, delta.utilization));
    }
    this.#lastElu = nowElu;
    const fds = this.#fds;
    if (fds) {
      try {
        const n = readdirSync('/proc/self/fd').length;
        this.#call(() => fds.set(undefined, n));
      } catch {
        // not Linux
      }
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#delay?.disable();
    this.#gcObserver?.disconnect();
  }
}

/** MemAvailable from /proc/meminfo (what the kernel could give without swapping), in bytes. */
function availableMemory(): number | undefined {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
