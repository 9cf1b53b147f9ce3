// A growable byte buffer for the unterminated tail of a line that spans chunks.
//
// Why not an array of pieces joined at the end: a 10 MB line arriving in 64-byte chunks
// would make 160,000 small allocations; doubling makes ~20. Why not string `+=`: the
// parsers must count bytes (maxEventBytes) and decode only whole lines, so that a
// multi-byte character split across chunks is never decoded in halves.
//
// Ownership: the accumulator copies what it is given (callers may reuse their chunk
// buffers); `view()` is valid until the next append() or reset().

/** Capacity kept across reset(); a bigger buffer is released so that one huge event
 * does not pin its memory for the rest of a long-lived stream. */
const KEEP_BYTES = 64 * 1024;
const EMPTY = new Uint8Array(0);

export class ByteAccumulator {
  #buf: Uint8Array = EMPTY;
  #len = 0;

  get length(): number {
    return this.#len;
  }

  append(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (n <= 0) return;
    const need = this.#len + n;
    if (need > this.#buf.length) {
      let cap = Math.max(256, this.#buf.length * 2);
      while (cap < need) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
    }
    this.#buf.set(src.subarray(start, end), this.#len);
    this.#len = need;
  }

  view(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  reset(): void {
    this.#len = 0;
    if (this.#buf.length > KEEP_BYTES) this.#buf = EMPTY;
  }
}
