// A one-minute sliding window of requests and tokens in 60 one-second slots: constant
// memory whatever the request rate, exact enough for rpm limits and the
// x-ratelimit-* / anthropic-ratelimit-* headers.

const SLOTS = 60;

export class RateWindow {
  readonly #second = new Float64Array(SLOTS).fill(-1);
  readonly #requests = new Float64Array(SLOTS);
  readonly #input = new Float64Array(SLOTS);
  readonly #output = new Float64Array(SLOTS);

  #slot(nowMs: number): number {
    const sec = Math.floor(nowMs / 1000);
    const i = sec % SLOTS;
    if (this.#second[i] !== sec) {
      this.#second[i] = sec;
      this.#requests[i] = 0;
      this.#input[i] = 0;
      this.#output[i] = 0;
    }
    return i;
  }

  #sum(arr: Float64Array, nowMs: number): number {
    const sec = Math.floor(nowMs / 1000);
    let n = 0;
    for (let i = 0; i < SLOTS; i++) if (this.#second[i] > sec - SLOTS) n += arr[i];
    return n;
  }

  addRequest(nowMs: number): void {
    this.#requests[this.#slot(nowMs)]++;
  }

  addTokens(nowMs: number, input: number, output: number): void {
    const i = this.#slot(nowMs);
    this.#input[i] += input;
    this.#output[i] += output;
  }

  requests(nowMs: number): number {
    return this.#sum(this.#requests, nowMs);
  }

  inputTokens(nowMs: number): number {
    return this.#sum(this.#input, nowMs);
  }

  outputTokens(nowMs: number): number {
    return this.#sum(this.#output, nowMs);
  }

  /** Milliseconds until the oldest slot holding anything leaves the window (0 when empty). */
  resetMs(nowMs: number): number {
    const sec = Math.floor(nowMs / 1000);
    let oldest = Infinity;
    for (let i = 0; i < SLOTS; i++) {
      const s = this.#second[i];
      if (s > sec - SLOTS && s < oldest && (this.#requests[i] > 0 || this.#input[i] > 0 || this.#output[i] > 0)) oldest = s;
    }
    return oldest === Infinity ? 0 : Math.max(0, (oldest + SLOTS) * 1000 - nowMs);
  }
}

/** Go-style duration as OpenAI writes its x-ratelimit-reset-*: "12ms", "6s", "1m30s". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const s = ms / 1000;
  if (s < 60) return `${Number(s.toFixed(3))}s`;
  const m = Math.floor(s / 60);
  return `${m}m${Number((s - m * 60).toFixed(3))}s`;
}

/** RFC 3339 without fractional seconds, as Anthropic writes its reset headers. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
