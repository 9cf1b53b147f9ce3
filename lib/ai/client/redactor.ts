// Removes configured secrets from text that came from outside (upstream error bodies,
// error causes) before it reaches an error message. Upstreams do echo keys: OpenAI's
// "Incorrect API key provided: sk-abc***" quotes a prefix, proxies quote whole headers.
// Prefixes of 8+ characters are removed too, since a partial key still narrows a search.

const MASK = '[REDACTED]';
const MIN_PREFIX = 8;

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
      // A quoted prefix (sk-abc***): mask any run of the key's first characters.
      if (s.length > MIN_PREFIX) {
        const head = s.slice(0, MIN_PREFIX);
        let k = out.indexOf(head);
        while (k !== -1) {
          let e = k + MIN_PREFIX;
          while (e < out.length && e - k < s.length && out[e] === s[e - k]) e++;
          out = out.slice(0, k) + MASK + out.slice(e);
          k = out.indexOf(head, k + MASK.length);
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
