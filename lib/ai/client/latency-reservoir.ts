// A fixed-size reservoir sample (Vitter's algorithm R) of latencies, for p50/p99 per
// target without memory that grows with traffic: 512 doubles per target, whatever the
// request count. Percentiles sort a copy on read; stats() is not a hot path.

const SIZE = 512;

export class LatencyReservoir {
  readonly #sample = new Float64Array(SIZE);
  #seen = 0;
  readonly #rand: () => number;

  constructor(rand: () => number = Math.random) {
    this.#rand = rand;
  }

  get count(): number {
    return this.#seen;
  }

  record(ms: number): void {
    if (!(ms >= 0)) return;
    if (this.#seen < SIZE) this.#sample[this.#seen] = ms;
    else {
      const j = Math.floor(this.#rand() * (this.#seen + 1));
      if (j < SIZE) this.#sample[j] = ms;
    }
    this.#seen++;
  }

  /** Nearest-rank percentiles (q in [0, 1]); 0 when nothing was recorded. */
  percentiles(...qs: number[]): number[] {
    const n = Math.min(this.#seen, SIZE);
    if (n === 0) return qs.map(() => 0);
    const sorted = this.#sample.slice(0, n).sort();
    return qs.map((q) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]);
  }
}
