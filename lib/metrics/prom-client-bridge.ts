// Coexistence with a user's prom-client Registry (`new Metrics({ register })`), in both
// directions, without importing prom-client (a devDependency; the user brings theirs):
//
// - myelin's series appear in the registry: each family registers one object with the
//   shape prom-client's Registry reads (`name`, `help`, `type`, `aggregator`, `get()`,
//   `reset()`), whose get() reads the shared slots at scrape time. prom-client formats
//   them itself (its escaping rules, not ours); in an OpenMetrics registry it strips and
//   re-adds counters' `_total`, which get() allows for by returning the current `name`.
// - the registry's series appear in expose(): we read each of its own metrics through
//   `get()` (skipping our bridge objects, which would repeat our series) and render them
//   with our escaping in the requested format (lib/metrics/exposition.ts renderForeign),
//   so a scrape in OpenMetrics needs no text conversion. A user metric whose name is one
//   of ours is left out of expose() (ours wins; registering ours into the registry
//   already refused that name once, see register()).
import { invalidArgument } from '../errors.js';
import { type ForeignMetric, formatLe } from './exposition.js';
import type { Family } from './series.js';

interface PromRegistry {
  registerMetric(m: object): void;
  getMetricsAsArray(): Array<{ name: string; get(): ForeignMetric | Promise<ForeignMetric> }>;
  removeSingleMetric?(name: string): void;
  _defaultLabels?: Record<string, string | number>;
}

export function isPromRegistry(r: unknown): r is PromRegistry {
  if (r === null || typeof r !== 'object') return false;
  const o = r as Record<string, unknown>;
  return typeof o.registerMetric === 'function' && typeof o.getMetricsAsArray === 'function';
}

const BRIDGE = Symbol('myelin.bridge');

class BridgeMetric {
  readonly [BRIDGE] = true;
  name: string;
  readonly help: string;
  readonly type: string;
  readonly aggregator = 'sum';
  readonly #fam: Family;

  constructor(fam: Family) {
    this.#fam = fam;
    this.name = fam.name;
    this.help = fam.help;
    this.type = fam.type;
  }

  get(): ForeignMetric {
    const fam = this.#fam;
    const values: NonNullable<ForeignMetric['values']> = [];
    const n = fam.seriesCount;
    const labelsOf = (i: number) => {
      const o: Record<string, string> = {};
      fam.labelNames.forEach((k, j) => (o[k] = fam.labelValues[i][j]));
      return o;
    };
    if (fam.type !== 'histogram') {
      for (let i = 0; i < n; i++) values.push({ labels: labelsOf(i), value: fam.value(i) });
    } else {
      const nb = fam.bounds.length;
      const buf = new Float64Array(nb + 2);
      for (let i = 0; i < n; i++) {
        const labels = labelsOf(i);
        fam.readHistogram(i, buf);
        let cum = 0;
        for (let k = 0; k <= nb; k++) {
          cum += buf[k];
          values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: k < nb ? formatLe(fam.bounds[k]) : '+Inf' }, value: cum });
        }
        values.push({ metricName: `${this.name}_sum`, labels, value: buf[nb + 1] });
        values.push({ metricName: `${this.name}_count`, labels, value: cum });
      }
    }
    return { name: this.name, help: this.help, type: this.type, values };
  }

  /** registry.resetMetrics(): myelin's series are not the registry's to reset. */
  reset(): void {}
}

export class PromClientBridge {
  readonly #reg: PromRegistry;
  readonly #ours = new Set<object>();

  constructor(register: unknown) {
    if (!isPromRegistry(register)) throw invalidArgument('Metrics(options): register must be a prom-client Registry (an object with registerMetric and getMetricsAsArray)');
    this.#reg = register;
  }

  /** Makes `fam` appear in the user's registry; a name the registry already has is an ERR_INVALID_ARGUMENT. */
  register(fam: Family): void {
    const b = new BridgeMetric(fam);
    try {
      this.#reg.registerMetric(b);
    } catch (err) {
      throw invalidArgument(`metric ${fam.name} is already registered in the prom-client registry`, err);
    }
    this.#ours.add(b);
  }

  /** The registry's own metrics (not ours), read now. */
  async foreign(skip: ReadonlySet<string>): Promise<{ metrics: ForeignMetric[]; defaultLabels: Record<string, string | number> }> {
    const metrics: ForeignMetric[] = [];
    for (const m of this.#reg.getMetricsAsArray()) {
      if (this.#ours.has(m) || (m as unknown as Record<symbol, unknown>)[BRIDGE] === true) continue;
      const d = await m.get();
      if (skip.has(d.name) || skip.has(`${d.name}_total`)) continue;
      metrics.push(d);
    }
    const dl = this.#reg._defaultLabels;
    return { metrics, defaultLabels: dl !== null && typeof dl === 'object' ? dl : {} };
  }

  /** Takes our metrics out of the registry (Metrics#close). */
  close(): void {
    for (const b of this.#ours) {
      const name = (b as BridgeMetric).name;
      const r = this.#reg.getMetricsAsArray().find((m) => m === b);
      if (r !== undefined) this.#reg.removeSingleMetric?.(name);
    }
    this.#ours.clear();
  }
}
