// Removes configured secrets from text that came from outside (upstream error bodies,
// error causes) before it reaches an error message. Upstreams do echo keys: OpenAI's
// "Incorrect API key provided: sk-abc***" quotes a prefix, proxies quote whole headers.
// Any 8+ character part of a key is removed too, since a partial key still narrows a search.

const MASK = '[REDACTED]';
const MIN_PART = 8;

export class Redactor {
  readonly #secrets: string[];

  constructor(secrets: Iterable<string | undefined>) {
    const set = new Set<string>();
    for (const s of secrets) if (s) set.add(s);
    // Longest first, so that a key that contains another is masked whole.
    this.#secrets = [...set].sort((a, b) => b.length - a.length);
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.#secrets) {
      if (out.includes(s)) out = out.split(s).join(MASK);
      if (s.length < MIN_PART) continue;
      // Any run of MIN_PART+ characters of the key, wherever it starts in the key (a
      // quoted prefix "sk-abc***", a middle cut out by a proxy): find it by one of the
      // key's MIN_PART-character windows, grow it both ways while it still matches.
      for (let i = 0; i + MIN_PART <= s.length; i++) {
        const window = s.slice(i, i + MIN_PART);
        let k = out.indexOf(window);
        while (k !== -1) {
          let b = k;
          let h = i;
          while (b > 0 && h > 0 && out[b - 1] === s[h - 1]) {
            b--;
            h--;
          }
          let e = k + MIN_PART;
          let j = i + MIN_PART;
          while (e < out.length && j < s.length && out[e] === s[j]) {
            e++;
            j++;
          }
          out = out.slice(0, b) + MASK + out.slice(e);
          k = out.indexOf(window, b + MASK.length);
        }
      }
    }
    return out;
  }
}

/** Upstream text in a message: redacted, one line, bounded. */
export function clip(text: string, redactor: Redactor, max = 500): string {
  const one = redactor.redact(text).replace(/[\r\n]+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max)}...` : one;
}
