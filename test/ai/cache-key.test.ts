// canonicalKey and isCacheable (AI-WIRE failure case 7): every output-changing
// parameter changes the key, key order and non-output fields do not, omitted sampling
// parameters read as the provider's default.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalize, canonicalKey, isCacheable, outputParameters } from '../../lib/ai/cache/exact-cache.js';
import { expectCode } from '../helpers.js';

const base = {
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hello' },
  ],
  temperature: 0,
};
const at = { resolvedModel: 'openai/gpt-4o-mini', provider: 'openai' };

/** Rebuilds a value with every object's keys in a shuffled order (arrays keep theirs). */
function reorder(v: unknown, rnd: () => number): unknown {
  if (Array.isArray(v)) return v.map((x) => reorder(x, rnd));
  if (v === null || typeof v !== 'object') return v;
  const entries = Object.entries(v as Record<string, unknown>);
  for (let i = entries.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [entries[i], entries[j]] = [entries[j], entries[i]];
  }
  return Object.fromEntries(entries.map(([k, x]) => [k, reorder(x, rnd)]));
}

describe('canonicalKey', () => {
  it('is a sha256 and stable', () => {
    const k = canonicalKey(base, at);
    expect(k).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(canonicalKey(structuredClone(base), { ...at })).toBe(k);
  });

  it.each<[string, Record<string, unknown>]>([
    ['a message', { messages: [{ role: 'user', content: 'Hello!' }] }],
    ['message order', { messages: [...base.messages].reverse() }],
    ['temperature', { temperature: 0.2 }],
    ['top_p', { top_p: 0.5 }],
    ['topP', { topP: 0.5 }],
    ['max tokens', { maxTokens: 100 }],
    ['max_completion_tokens', { max_completion_tokens: 100 }],
    ['stop', { stop: ['\n'] }],
    ['seed', { seed: 7 }],
    ['tools', { tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] }],
    ['tool_choice', { tool_choice: 'required' }],
    ['response_format', { responseFormat: { type: 'json_object' } }],
    ['provider options', { providerOptions: { ollama: { num_ctx: 8192 } } }],
    ['an unknown future parameter', { reasoningEffort: 'high' }],
  ])('changes with %s', (_name, change) => {
    expect(canonicalKey({ ...base, ...change }, at)).not.toBe(canonicalKey(base, at));
  });

  it('changes with the resolved model and the partition', () => {
    const k = canonicalKey(base, at);
    expect(canonicalKey(base, { ...at, resolvedModel: 'openai/gpt-4o' })).not.toBe(k);
    expect(canonicalKey(base, { ...at, partition: 'tenant-a' })).not.toBe(k);
    expect(canonicalKey(base, { ...at, partition: 'tenant-a' })).not.toBe(canonicalKey(base, { ...at, partition: 'tenant-b' }));
  });

  it('reads an omitted temperature as the provider default', () => {
    const { temperature: _, ...omitted } = base;
    expect(canonicalKey(omitted, at)).toBe(canonicalKey({ ...base, temperature: 1 }, at));
    expect(canonicalKey(omitted, at)).not.toBe(canonicalKey(base, at));
    const ollama = { resolvedModel: 'ollama/llama3.2', provider: 'ollama' };
    expect(canonicalKey(omitted, ollama)).toBe(canonicalKey({ ...base, temperature: 0.8 }, ollama));
    expect(canonicalKey(omitted, ollama)).not.toBe(canonicalKey({ ...base, temperature: 1 }, ollama));
    expect(canonicalKey(omitted, { ...ollama, providerDefaults: { temperature: 0.6 } })).toBe(
      canonicalKey({ ...base, temperature: 0.6 }, ollama),
    );
  });

  it('ignores fields that cannot change the output, and snake/camel spelling', () => {
    const k = canonicalKey({ ...base, maxTokens: 5, topP: 1 }, at);
    const noisy = {
      ...base,
      max_tokens: 5,
      model: 'fast',
      signal: new AbortController().signal,
      cache: true,
      stream: true,
      stream_options: { include_usage: true },
      user: 'u1',
      metadata: { trace: 'x' },
      undefinedField: undefined,
    };
    expect(canonicalKey(noisy, at)).toBe(k);
    expect(canonicalKey({ ...base, stop: 'END' }, at)).toBe(canonicalKey({ ...base, stop: ['END'] }, at));
  });

  it('property: keys agree under key reordering and differ whenever a parameter differs', () => {
    const json = fc.jsonValue({ maxDepth: 3 });
    const message = fc.record({ role: fc.constantFrom('system', 'user', 'assistant'), content: fc.string() });
    const fields = {
      messages: fc.array(message, { minLength: 1, maxLength: 4 }),
      temperature: fc.double({ min: 0, max: 2, noNaN: true }),
      topP: fc.double({ min: 0, max: 1, noNaN: true }),
      maxTokens: fc.integer({ min: 1, max: 4096 }),
      stop: fc.array(fc.string(), { maxLength: 3 }),
      seed: fc.integer(),
      tools: fc.array(fc.record({ name: fc.string(), parameters: json }), { maxLength: 2 }),
      toolChoice: fc.constantFrom('auto', 'none', 'required'),
      responseFormat: fc.record({ type: fc.constantFrom('text', 'json_object') }),
      providerOptions: fc.dictionary(fc.string({ minLength: 1 }), json, { maxKeys: 3 }),
    };
    const request = fc.record(fields, { requiredKeys: ['messages'] });
    fc.assert(
      fc.property(request, fc.integer(), (req, seed) => {
        let s = seed;
        const rnd = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
        const shuffled = reorder(req, rnd) as Record<string, unknown>;
        expect(canonicalKey(shuffled, at)).toBe(canonicalKey(req, at));
      }),
      { numRuns: 300 },
    );
    // Mutation: replace one output parameter of a full request by a different value.
    const full = fc.record(fields);
    const field = fc.constantFrom(...(Object.keys(fields) as Array<keyof typeof fields>));
    fc.assert(
      fc.property(full, full, field, (a, b, f) => {
        fc.pre(canonicalize(a[f]) !== canonicalize(b[f]));
        expect(canonicalKey({ ...a, [f]: b[f] }, at)).not.toBe(canonicalKey(a, at));
      }),
      { numRuns: 500 },
    );
  });

  it('rejects a missing model and cycles', () => {
    expectCode(() => canonicalKey(base, { resolvedModel: '' }), 'ERR_INVALID_ARGUMENT', /resolvedModel/);
    const cyclic: Record<string, unknown> = { ...base };
    cyclic.providerOptions = { self: cyclic };
    expectCode(() => canonicalKey(cyclic, at), 'ERR_INVALID_ARGUMENT', /cycle/);
  });
});

describe('canonicalize', () => {
  it('sorts keys, drops undefined, writes -0 as 0, keeps NaN and Infinity apart', () => {
    expect(canonicalize({ b: 1, a: [1, undefined], c: undefined })).toBe('{"a":[1,null],"b":1}');
    expect(canonicalize(-0)).toBe('0');
    expect(canonicalize(1.0)).toBe(canonicalize(1));
    expect(new Set([canonicalize(Number.NaN), canonicalize(Infinity), canonicalize(null), canonicalize(-Infinity)]).size).toBe(4);
    expect(canonicalize(new Uint8Array([1, 2]))).not.toBe(canonicalize(new Uint8Array([1, 3])));
  });
});

describe('isCacheable', () => {
  it('caches deterministic requests, skips temperature > 0 unless forced', () => {
    expect(isCacheable({ temperature: 0 })).toBe(true);
    expect(isCacheable({ temperature: 0.7 })).toBe(false);
    expect(isCacheable({ temperature: 0.7, cache: true })).toBe(true);
    expect(isCacheable({ temperature: 0.7 }, { force: true })).toBe(true);
    expect(isCacheable({ temperature: 0, cache: false }, { force: true })).toBe(false);
  });

  it('an omitted temperature reads as the provider default', () => {
    expect(isCacheable({}, { provider: 'openai' })).toBe(false);
    expect(isCacheable({}, { provider: 'ollama', providerDefaults: { temperature: 0 } })).toBe(true);
    expect(isCacheable({})).toBe(false);
  });
});
