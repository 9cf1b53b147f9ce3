// The Jepsen-style queue checker (shared/RELIABILITY.md): one checker for every
// transport. Producers publish unique `producer-seq` values; the harness records what
// each producer attempted, which publishes the engine acknowledged (publishAsync
// resolved), and every value any consumer read, duplicates included. After the faults
// heal, report() classifies:
//
// - lost: acknowledged, never read. Split per producer by where the seq falls against
//   the values of that producer that were read: before the first -> lostPrefix (a
//   group that started late, a stream that lost its head), after the last ->
//   lostSuffix (the tail a crash or an undrained run dropped), between -> lostMiddle
//   (a hole: the worst kind). A producer none of whose values were read has no anchor;
//   its lost values count as middle, the worst case.
// - duplicated: values read more than once (at-least-once allows it; it must stay bounded).
// - unexpected: values read that were never attempted (corruption, a foreign writer).
// - recovered: attempted, not acknowledged (the publish failed or its fate is unknown),
//   yet read: not an error, the engine had it.
//
// Values are fed one at a time (attempt/ack/read), so a million-event run never builds
// one giant array; per producer the seqs are kept in Maps keyed by number.

export interface QueueReport {
  /** Distinct values attempted (published, whatever the outcome). */
  attempted: number;
  /** Distinct values the engine acknowledged. */
  acknowledged: number;
  /** Distinct attempted values read at least once. */
  read: number;
  /** Every read, duplicates and unexpected values included. */
  reads: number;
  lost: number;
  lostPrefix: number;
  lostMiddle: number;
  lostSuffix: number;
  /** Distinct values read more than once. */
  duplicated: number;
  /** Reads beyond the first of each value (the redelivery cost). */
  duplicateReads: number;
  /** Distinct values read that were never attempted. */
  unexpected: number;
  /** Attempted, not acknowledged, read anyway. */
  recovered: number;
  /** Up to 20 examples of each problem, for the failure message. */
  samples: { lost: string[]; unexpected: string[]; duplicated: string[] };
}

const SAMPLES = 20;

/** Splits `producer-seq` at its last '-'; undefined when the seq is not a non-negative integer. */
export function parseValue(v: string): { producer: string; seq: number } | undefined {
  const dash = v.lastIndexOf('-');
  if (dash <= 0 || dash === v.length - 1) return undefined;
  const tail = v.slice(dash + 1);
  if (!/^\d+$/.test(tail)) return undefined;
  const seq = Number(tail);
  if (!Number.isSafeInteger(seq)) return undefined;
  return { producer: v.slice(0, dash), seq };
}

export const valueOf = (producer: string, seq: number): string => `${producer}-${seq}`;

interface Producer {
  /** seq -> 1 attempted, 3 attempted and acknowledged. */
  state: Map<number, number>;
  /** seq -> times read. */
  reads: Map<number, number>;
}

export class QueueChecker {
  private readonly producers = new Map<string, Producer>();
  /** Reads that are not `producer-seq` at all: value -> times read. */
  private readonly malformed = new Map<string, number>();
  private totalReads = 0;

  private producer(name: string): Producer {
    let p = this.producers.get(name);
    if (!p) {
      p = { state: new Map(), reads: new Map() };
      this.producers.set(name, p);
    }
    return p;
  }

  /** A publish was attempted (before its outcome is known). */
  attempt(producer: string, seq: number): void {
    const p = this.producer(producer);
    if (!p.state.has(seq)) p.state.set(seq, 1);
  }

  /** The engine acknowledged a publish (implies it was attempted). */
  ack(producer: string, seq: number): void {
    this.producer(producer).state.set(seq, 3);
  }

  /** A consumer read a value (call once per read, duplicates included). */
  read(value: string): void {
    this.totalReads++;
    const parsed = parseValue(value);
    if (!parsed) {
      this.malformed.set(value, (this.malformed.get(value) ?? 0) + 1);
      return;
    }
    const p = this.producer(parsed.producer);
    p.reads.set(parsed.seq, (p.reads.get(parsed.seq) ?? 0) + 1);
  }

  report(): QueueReport {
    const r: QueueReport = {
      attempted: 0,
      acknowledged: 0,
      read: 0,
      reads: this.totalReads,
      lost: 0,
      lostPrefix: 0,
      lostMiddle: 0,
      lostSuffix: 0,
      duplicated: 0,
      duplicateReads: 0,
      unexpected: this.malformed.size,
      recovered: 0,
      samples: { lost: [], unexpected: [], duplicated: [] },
    };
    const sample = (list: string[], v: string) => {
      if (list.length < SAMPLES) list.push(v);
    };
    for (const v of this.malformed.keys()) sample(r.samples.unexpected, v);
    for (const [name, p] of [...this.producers].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
      // The anchors for prefix/suffix: the lowest and highest attempted seq that was read.
      let first = Infinity;
      let last = -Infinity;
      for (const [seq, n] of p.reads) {
        const st = p.state.get(seq);
        if (st === undefined) {
          r.unexpected++;
          sample(r.samples.unexpected, valueOf(name, seq));
          continue;
        }
        r.read++;
        if (n > 1) {
          r.duplicated++;
          r.duplicateReads += n - 1;
          sample(r.samples.duplicated, `${valueOf(name, seq)} x${n}`);
        }
        if (st !== 3) r.recovered++;
        if (seq < first) first = seq;
        if (seq > last) last = seq;
      }
      const lost: number[] = [];
      for (const [seq, st] of p.state) {
        r.attempted++;
        if (st !== 3) continue;
        r.acknowledged++;
        if (!p.reads.has(seq)) lost.push(seq);
      }
      lost.sort((a, b) => a - b);
      for (const seq of lost) {
        r.lost++;
        if (first === Infinity) r.lostMiddle++;
        else if (seq < first) r.lostPrefix++;
        else if (seq > last) r.lostSuffix++;
        else r.lostMiddle++;
        sample(r.samples.lost, valueOf(name, seq));
      }
    }
    return r;
  }
}

export interface QueueHistory {
  /** Values attempted (`producer-seq`); acknowledged values count as attempted too. */
  attempted: Iterable<string>;
  acknowledged: Iterable<string>;
  /** Every value read, duplicates included. */
  read: Iterable<string>;
}

/** The checker over a whole history at once (hand-made histories, small runs). */
export function checkQueue(h: QueueHistory): QueueReport {
  const c = new QueueChecker();
  const split = (v: string) => {
    const p = parseValue(v);
    if (!p) throw new Error(`checkQueue: '${v}' is not a producer-seq value`);
    return p;
  };
  for (const v of h.attempted) {
    const p = split(v);
    c.attempt(p.producer, p.seq);
  }
  for (const v of h.acknowledged) {
    const p = split(v);
    c.ack(p.producer, p.seq);
  }
  for (const v of h.read) c.read(v);
  return c.report();
}

/** One line for logs: the counts that matter. */
export function formatReport(r: QueueReport): string {
  return (
    `attempted ${r.attempted}, acknowledged ${r.acknowledged}, read ${r.read} (${r.reads} reads), ` +
    `lost ${r.lost} (prefix ${r.lostPrefix}, middle ${r.lostMiddle}, suffix ${r.lostSuffix}), ` +
    `duplicated ${r.duplicated} (${r.duplicateReads} extra reads), unexpected ${r.unexpected}, recovered ${r.recovered}`
  );
}
