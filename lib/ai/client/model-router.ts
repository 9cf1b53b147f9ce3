// Turns a request's `model` into the ordered targets to try. 'fallback' keeps the
// configured order; 'weighted' draws an order by weight (Efraimidis-Spirakis keys
// u^(1/w), so the first pick follows the weights and the rest stay as fallbacks);
// 'least-latency' puts targets without a latency sample first (so each gets measured),
// then the lowest p50.
import { invalidArgument } from '../../errors.js';
import { type ResolvedOptions, type ResolvedProvider, splitTarget } from './options.js';

export interface Target {
  /** 'provider/model' as configured: the key of stats and prices. */
  key: string;
  provider: ResolvedProvider;
  model: string;
}

export class ModelRouter {
  readonly #o: ResolvedOptions;
  readonly #p50: (key: string) => number | undefined;
  readonly #rand: () => number;

  constructor(o: ResolvedOptions, p50: (key: string) => number | undefined, rand: () => number = Math.random) {
    this.#o = o;
    this.#p50 = p50;
    this.#rand = rand;
  }

  #target(key: string): Target {
    const s = splitTarget(key);
    const provider = s ? this.#o.providers.get(s.provider) : undefined;
    if (!s || !provider) {
      throw invalidArgument(`model '${key}' is neither a configured alias nor a 'provider/model' target of a configured provider`);
    }
    return { key, provider, model: s.model };
  }

  /** The alias's hedgeAfterMs, undefined when it has none (or `model` is a plain target). */
  hedgeAfterMs(model: string): number | undefined {
    return this.#o.models.get(model)?.hedgeAfterMs;
  }

  resolve(model: string): Target[] {
    const route = this.#o.models.get(model);
    if (!route) return [this.#target(model)];
    const targets = route.targets.map((t) => ({ t: this.#target(t.target), weight: t.weight }));
    if (route.strategy === 'weighted') {
      return targets
        .map((x) => ({ t: x.t, k: this.#rand() ** (1 / x.weight) }))
        .sort((a, b) => b.k - a.k)
        .map((x) => x.t);
    }
    if (route.strategy === 'least-latency') {
      const scored = targets.map((x, i) => ({ t: x.t, i, p: this.#p50(x.t.key) }));
      scored.sort((a, b) => {
        if (a.p === undefined || b.p === undefined) return a.p === b.p ? a.i - b.i : a.p === undefined ? -1 : 1;
        return a.p - b.p || a.i - b.i;
      });
      return scored.map((x) => x.t);
    }
    return targets.map((x) => x.t);
  }
}
