// Deterministic content for the upstream simulator: a seeded PRNG, a word list with
// multi-byte words (2-, 3- and 4-byte UTF-8, astral emoji included) so that splitting
// tests have something to split, tool-call arguments drawn from a JSON schema, and
// embedding vectors.
//
// One "token" is one word (or one tool-argument fragment). That is not how a real
// tokenizer counts, but it is self-consistent: the usage the simulator reports always
// equals the number of content pieces it streamed.

/** mulberry32: small, fast, good enough for test content; state is one uint32. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a over UTF-16 code units, seedable. */
export function fnv1a(s: string, h = 0x811c9dc5): number {
  let x = h >>> 0;
  for (let i = 0; i < s.length; i++) {
    x ^= s.charCodeAt(i);
    x = Math.imul(x, 0x01000193);
  }
  return x >>> 0;
}

export const WORDS: readonly string[] = Object.freeze([
  'the', 'a', 'stream', 'token', 'model', 'event', 'signal', 'vector', 'latency', 'queue',
  'river', 'stone', 'light', 'quiet', 'swift', 'garden', 'window', 'orbit', 'lantern', 'thread',
  'ring', 'cache', 'packet', 'green', 'north', 'paper', 'moon', 'echo', 'field', 'bridge',
  // Multi-byte: 2-byte, 3-byte and 4-byte UTF-8 (the last ones are surrogate pairs in JS).
  'naïve', 'café', 'über', 'Grüße', 'façade', 'niño', 'jalapeño', 'π', 'Ω', 'ключ',
  'γλώσσα', 'Zürich', '日本', '東京', '北京', '한국어', '€', '→', '🚀', '😀',
  '✨', '🌍', 'ñandú', 'smörgåsbord',
]);

/** `n` text pieces: the first is a word, each later one is a space and a word. */
export function textTokens(rand: () => number, n: number): string[] {
  const out: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const w = WORDS[Math.floor(rand() * WORDS.length)];
    out[i] = i === 0 ? w : ` ${w}`;
  }
  return out;
}

/** Approximate token count of prompt text: whitespace-separated words. */
export function countWords(text: string): number {
  let n = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const ws = c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x0c || c === 0x0b;
    if (!ws && !inWord) n++;
    inWord = !ws;
  }
  return n;
}

/** Text found in a message `content`: a string, or an array of parts with `text`. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const parts: string[] = [];
  for (const p of content) {
    if (typeof p === 'string') parts.push(p);
    else if (p && typeof p === 'object') {
      const o = p as Record<string, unknown>;
      if (typeof o.text === 'string') parts.push(o.text);
      else if (typeof o.content === 'string') parts.push(o.content);
      else if (Array.isArray(o.content)) parts.push(contentText(o.content));
    }
  }
  return parts.join(' ');
}

/** Arguments for a tool call, drawn from its JSON schema (`properties` only, 8 at most). */
export function toolArguments(rand: () => number, schema: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!schema || typeof schema !== 'object') return out;
  const props = (schema as { properties?: unknown }).properties;
  if (!props || typeof props !== 'object') return out;
  let count = 0;
  for (const [name, spec] of Object.entries(props as Record<string, unknown>)) {
    if (count++ >= 8) break;
    out[name] = valueFor(rand, spec, 0);
  }
  return out;
}

function valueFor(rand: () => number, spec: unknown, depth: number): unknown {
  const s = (spec && typeof spec === 'object' ? spec : {}) as Record<string, unknown>;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[Math.floor(rand() * s.enum.length)];
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'integer':
      return Math.floor(rand() * 100);
    case 'number':
      return Math.round(rand() * 10000) / 100;
    case 'boolean':
      return rand() < 0.5;
    case 'array':
      return depth < 2 ? [valueFor(rand, s.items, depth + 1)] : [];
    case 'object':
      return depth < 2 ? toolArguments(rand, s) : {};
    case 'null':
      return null;
    default:
      return textTokens(rand, 2).join('');
  }
}

/** Splits a JSON text into fragments of 3-10 code points (never inside a surrogate pair). */
export function fragments(rand: () => number, json: string): string[] {
  const cps = Array.from(json);
  const out: string[] = [];
  let i = 0;
  while (i < cps.length) {
    const len = 3 + Math.floor(rand() * 8);
    out.push(cps.slice(i, i + len).join(''));
    i += len;
  }
  return out;
}

/** A unit-length embedding for `text`, the same for the same text, seed and size. */
export function embedding(text: string, dims: number, seed: number): Float32Array {
  const rand = mulberry32(fnv1a(text, seed ^ 0x85ebca6b));
  const v = new Float32Array(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    const x = rand() * 2 - 1;
    v[i] = x;
    norm += x * x;
  }
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < dims; i++) v[i] /= norm;
  return v;
}
