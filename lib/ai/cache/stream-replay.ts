// A cached stream replays as a stream: the entry keeps the final response and the
// ordered parts (text and tool calls) that produced it, and replay() yields the same
// part shapes, then `{ type: 'done', response }`. Adjacent text parts are merged
// while recording, so an entry holds one string per run of text rather than one
// object per token; the recorder stops (and the stream is not cached) past `maxChars`
// so that one huge answer cannot pin memory (shared/AI-WIRE.md failure case 8).

/** A stream part as the AIClient emits it: `{ type: 'text', text }`, `{ type: 'tool-call', ... }`. */
export interface CachePart {
  type: string;
  [field: string]: unknown;
}

export interface CachedEntry<R = unknown, P extends CachePart = CachePart> {
  response: R;
  /** Ordered parts, without the final 'done'. */
  parts: P[];
  /** Clock time the entry was recorded (ms). */
  createdAt: number;
}

export interface StreamRecorderOptions {
  /** Total characters of text and serialised parts recorded at most. Default 4 000 000. */
  maxChars?: number;
  now?: () => number;
}

export class StreamRecorder<P extends CachePart = CachePart> {
  readonly #parts: P[] = [];
  readonly #maxChars: number;
  readonly #now: () => number;
  #chars = 0;
  #overflowed = false;

  constructor(options: StreamRecorderOptions = {}) {
    this.#maxChars = options.maxChars ?? 4_000_000;
    this.#now = options.now ?? Date.now;
  }

  /** True once the stream outgrew maxChars: finish() will return undefined. */
  get overflowed(): boolean {
    return this.#overflowed;
  }

  push(part: P): void {
    if (this.#overflowed || part.type === 'done') return;
    const size = part.type === 'text' && typeof part.text === 'string' ? part.text.length : JSON.stringify(part).length;
    this.#chars += size;
    if (this.#chars > this.#maxChars) {
      this.#overflowed = true;
      this.#parts.length = 0;
      return;
    }
    const last = this.#parts[this.#parts.length - 1];
    if (part.type === 'text' && last?.type === 'text' && sameExceptText(last, part)) {
      this.#parts[this.#parts.length - 1] = { ...last, text: (last.text as string) + (part.text as string) };
    } else {
      this.#parts.push({ ...part });
    }
  }

  /** The entry to store, or undefined when the stream was too big to keep. */
  finish<R>(response: R): CachedEntry<R, P> | undefined {
    if (this.#overflowed) return undefined;
    return { response, parts: this.#parts.slice(), createdAt: this.#now() };
  }
}

function sameExceptText(a: CachePart, b: CachePart): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (k !== 'text' && a[k] !== b[k]) return false;
  return true;
}

/** Replays an entry: copies of its parts in order, then `{ type: 'done', response }`. */
export async function* replay<R, P extends CachePart>(entry: CachedEntry<R, P>): AsyncGenerator<P | { type: 'done'; response: R }, void, undefined> {
  for (const part of entry.parts) yield { ...part };
  yield { type: 'done', response: entry.response };
}
