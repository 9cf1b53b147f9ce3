// The NDJSON parser (Ollama's native stream): line splitting, CRLF, blank lines, UTF-8
// across chunks, bounded lines, malformed lines as MyelinErrors with line numbers, and
// a property: any values, split anywhere, parse back to themselves.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NdjsonParser } from '../../lib/ai/stream/ndjson-parser.js';
import { expectCode } from '../helpers.js';

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s);

function parse(input: Uint8Array | string, cuts: number[] = [], parser = new NdjsonParser()): unknown[] {
  const b = typeof input === 'string' ? bytes(input) : input;
  const points = [...new Set(cuts.map((c) => Math.min(b.length, Math.max(0, c))))].sort((x, y) => x - y);
  const out: unknown[] = [];
  let last = 0;
  for (const p of [...points, b.length]) {
    out.push(...parser.feed(b.subarray(last, p)));
    last = p;
  }
  out.push(...parser.end());
  return out;
}

const OLLAMA = [
  '{"model":"llama3.2","created_at":"2025-01-01T00:00:00.000Z","message":{"role":"assistant","content":"naïve"},"done":false}',
  '{"model":"llama3.2","created_at":"2025-01-01T00:00:00.000Z","message":{"role":"assistant","content":" 日本 🚀"},"done":false}',
  '{"model":"llama3.2","created_at":"2025-01-01T00:00:00.000Z","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Zürich","days":3}}}]},"done":false}',
  '{"model":"llama3.2","created_at":"2025-01-01T00:00:00.000Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":5191566416,"prompt_eval_count":26,"eval_count":3,"eval_duration":4709213000}',
];

describe('NdjsonParser', () => {
  it('parses an Ollama stream, tool-call arguments as an object (parser case 7), at every split point', () => {
    const s = `${OLLAMA.join('\n')}\n`;
    const want = OLLAMA.map((l) => JSON.parse(l));
    const b = bytes(s);
    for (let i = 0; i <= b.length; i++) expect(parse(b, [i])).toEqual(want);
    const calls = (want[2] as { message: { tool_calls: Array<{ function: { arguments: unknown } }> } }).message.tool_calls;
    expect(calls[0].function.arguments).toEqual({ city: 'Zürich', days: 3 });
  });

  it('tolerates CRLF, blank and whitespace-only lines', () => {
    expect(parse('{"a":1}\r\n\r\n  \t \n{"b":2}\n\n\r\n')).toEqual([{ a: 1 }, { b: 2 }]);
  });

  it('yields a mid-stream error line as a value for the client to inspect (parser case 5)', () => {
    expect(parse(`${OLLAMA[0]}\n{"error":"an error was encountered while running the model"}\n`)).toEqual([
      JSON.parse(OLLAMA[0]),
      { error: 'an error was encountered while running the model' },
    ]);
  });

  it('decodes multi-byte characters split across chunks, one byte at a time', () => {
    const s = '{"t":"é日🚀Ω"}\n{"u":"東京"}\n';
    const b = bytes(s);
    const p = new NdjsonParser();
    const out: unknown[] = [];
    for (let i = 0; i < b.length; i++) out.push(...p.feed(b.subarray(i, i + 1)));
    expect(out).toEqual([{ t: 'é日🚀Ω' }, { u: '東京' }]);
  });

  it('parses a final line without LF at end(), and skips a leading BOM', () => {
    expect(parse('\uFEFF{"a":1}\n{"b":2}')).toEqual([{ a: 1 }, { b: 2 }]);
  });

  it('reports a malformed line as ERR_AI_UPSTREAM with its 1-based line number, never a raw SyntaxError', () => {
    const p = new NdjsonParser();
    expect(p.feed(bytes('{"a":1}\n\n'))).toEqual([{ a: 1 }]);
    const err = expectCode(() => p.feed(bytes('{"secret-ish":tru}\n{"b":2}\n')), 'ERR_AI_UPSTREAM', /line 3/);
    expect((err as unknown as { line: number }).line).toBe(3);
    expect(err.cause).toBeInstanceOf(SyntaxError);
    // The message names the line, not its content.
    expect(err.message).not.toContain('secret-ish');
    // The parser stays failed.
    expectCode(() => p.feed(bytes('{"c":3}\n')), 'ERR_AI_UPSTREAM');
    expectCode(() => p.end(), 'ERR_AI_UPSTREAM');
  });

  it('reports a stream cut inside its last line as ERR_AI_STREAM_TRUNCATED', () => {
    const p = new NdjsonParser();
    expect(p.feed(bytes('{"a":1}\n{"done":tr'))).toEqual([{ a: 1 }]);
    const err = expectCode(() => p.end(), 'ERR_AI_STREAM_TRUNCATED');
    expect((err as unknown as { line: number }).line).toBe(2);
  });

  it('bounds line length, in one chunk and across chunks', () => {
    const p = new NdjsonParser({ maxLineBytes: 32 });
    expect(p.feed(bytes(`{"a":"${'x'.repeat(20)}"}\n`))).toHaveLength(1);
    const err = expectCode(() => p.feed(bytes(`{"a":"${'x'.repeat(40)}"}\n`)), 'ERR_AI_UPSTREAM', /maxLineBytes/);
    expect((err as unknown as { line: number; limit: number }).line).toBe(2);
    expect((err as unknown as { limit: number }).limit).toBe(32);

    const q = new NdjsonParser({ maxLineBytes: 100 });
    let fed = 0;
    let thrown: unknown;
    try {
      for (; fed < 50; fed++) q.feed(bytes('x'.repeat(16)));
    } catch (e) {
      thrown = e;
    }
    expect((thrown as { code?: string }).code).toBe('ERR_AI_UPSTREAM');
    expect(fed).toBe(6); // 7 x 16 = 112 > 100
  });

  it('counts lines and values', () => {
    const p = new NdjsonParser();
    p.feed(bytes('{"a":1}\n\n[2]\n3\n'));
    expect(p.lines).toBe(4);
    expect(p.values).toBe(3);
  });

  it('rejects feed() after end(), bad options and bad input', () => {
    const p = new NdjsonParser();
    expect(p.end()).toEqual([]);
    expect(p.end()).toEqual([]);
    expectCode(() => p.feed(bytes('{}\n')), 'ERR_INVALID_ARGUMENT');
    for (const bad of [0, -5, 2.5, Number.NaN, '1'] as unknown[]) {
      expectCode(() => new NdjsonParser({ maxLineBytes: bad as number }), 'ERR_INVALID_ARGUMENT');
    }
    expectCode(() => new NdjsonParser().feed([1, 2] as unknown as Uint8Array), 'ERR_INVALID_ARGUMENT');
  });

  it('parses a 10 MB line arriving in 64-byte chunks', () => {
    const value = { text: 'ab日🚀'.repeat(1_200_000) };
    const b = bytes(`${JSON.stringify(value)}\n`);
    expect(b.length).toBeGreaterThan(10_000_000);
    const p = new NdjsonParser();
    const out: unknown[] = [];
    for (let i = 0; i < b.length; i += 64) out.push(...p.feed(b.subarray(i, i + 64)));
    expect(out).toHaveLength(1);
    expect((out[0] as { text: string }).text === value.text).toBe(true);
  });

  it('any JSON values, as lines with LF or CRLF and blank lines, split anywhere, parse back', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom('\n', '\r\n'), fc.boolean()), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 16 }),
        fc.boolean(),
        (items, rawCuts, finalNewline) => {
          let text = '';
          items.forEach(([v, term, blank], i) => {
            text += JSON.stringify(v);
            if (i < items.length - 1 || finalNewline) text += term;
            if (blank && (i < items.length - 1 || finalNewline)) text += term;
          });
          const want = items.map(([v]) => JSON.parse(JSON.stringify(v)) as unknown);
          const b = bytes(text);
          const cuts = rawCuts.map((c) => c % (b.length + 1));
          expect(parse(b, cuts)).toEqual(want);
        },
      ),
      { numRuns: 300 },
    );
  });
});
