// The SSE parser against the WHATWG event-stream rules and shared/AI-WIRE.md "Parser
// cases" 1-3, 6-8, plus a property: any valid stream, split anywhere, parses to the
// events its model says.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SseParser, type SseEvent } from '../../lib/ai/stream/sse-parser.js';
import { expectCode } from '../helpers.js';

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s);

/** Feeds `input` cut at `cuts` (byte offsets), returns all events and end()'s verdict. */
function parse(input: Uint8Array | string, cuts: number[] = [], parser = new SseParser()): { events: SseEvent[]; pending: boolean } {
  const b = typeof input === 'string' ? bytes(input) : input;
  const points = [...new Set(cuts.map((c) => Math.min(b.length, Math.max(0, c))))].sort((x, y) => x - y);
  const events: SseEvent[] = [];
  let last = 0;
  for (const p of [...points, b.length]) {
    events.push(...parser.feed(b.subarray(last, p)));
    last = p;
  }
  return { events, pending: parser.end() };
}

function everySplit(input: string): Array<{ events: SseEvent[]; pending: boolean }> {
  const b = bytes(input);
  const out = [];
  for (let i = 0; i <= b.length; i++) out.push(parse(b, [i]));
  for (let i = 0; i + 1 <= b.length; i++) out.push(parse(b, [i, i + 1]));
  return out;
}

describe('SseParser: framing (parser cases 1 and 2)', () => {
  it('parses the OpenAI framing: data frames, no event names, [DONE]', () => {
    const s = 'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: [DONE]\n\n';
    const { events, pending } = parse(s);
    expect(events).toEqual([{ data: '{"choices":[{"delta":{"content":"Hi"}}]}' }, { data: '[DONE]' }]);
    expect(pending).toBe(false);
  });

  it('parses the Anthropic framing: event names and data', () => {
    const s = 'event: message_start\ndata: {"type":"message_start"}\n\nevent: ping\ndata: {"type": "ping"}\n\n';
    expect(parse(s).events).toEqual([
      { event: 'message_start', data: '{"type":"message_start"}' },
      { event: 'ping', data: '{"type": "ping"}' },
    ]);
  });

  it('accepts \\n\\n, \\r\\n\\r\\n, \\r\\r and mixed terminators alike', () => {
    for (const [a, b] of [
      ['\n', '\n'],
      ['\r\n', '\r\n'],
      ['\r', '\r'],
      ['\r\n', '\n'],
      ['\n', '\r'],
      ['\r', '\r\n'],
    ]) {
      const s = `event: e${a}data: one${a}data: two${a}${b}data: x${a}${b}`;
      const want = [{ event: 'e', data: 'one\ntwo' }, { data: 'x' }];
      for (const r of everySplit(s)) expect(r.events, JSON.stringify(s)).toEqual(want);
    }
  });

  it('keeps an event split at every byte, inside the field name, the JSON and between \\r and \\n', () => {
    const s = 'event: content_block_delta\r\ndata: {"type":"content_block_delta","delta":{"text":"naïve 日本 🚀"}}\r\n\r\n';
    const want = [{ event: 'content_block_delta', data: '{"type":"content_block_delta","delta":{"text":"naïve 日本 🚀"}}' }];
    for (const r of everySplit(s)) {
      expect(r.events).toEqual(want);
      expect(r.pending).toBe(false);
    }
  });

  it('treats a CR at a chunk end correctly whether or not LF follows', () => {
    // CR then LF in the next chunk: one line end.
    expect(parse('data: a\r\n\r\n', [8]).events).toEqual([{ data: 'a' }]);
    // CR then CR in the next chunk: two line ends, so the event is complete.
    const p = new SseParser();
    expect(p.feed(bytes('data: a\r'))).toEqual([]);
    expect(p.feed(bytes('\r'))).toEqual([{ data: 'a' }]);
    // The event is dispatched as soon as its blank line's CR arrives, without waiting.
    const q = new SseParser();
    expect(q.feed(bytes('data: b\r\r'))).toEqual([{ data: 'b' }]);
    expect(q.feed(bytes('\ndata: c\n\n'))).toEqual([{ data: 'c' }]);
  });

  it('removes exactly one leading space after the colon', () => {
    expect(parse('data:x\n\ndata: x\n\ndata:  x\n\ndata:\tx\n\n').events.map((e) => e.data)).toEqual(['x', 'x', ' x', '\tx']);
  });

  it('joins multi-line data with \\n and keeps empty data lines', () => {
    expect(parse('data: a\ndata:\ndata\ndata: b\n\n').events).toEqual([{ data: 'a\n\n\nb' }]);
    expect(parse('data\n\n').events).toEqual([{ data: '' }]);
    expect(parse('data:\n\n').events).toEqual([{ data: '' }]);
  });

  it('dispatches nothing for a block without data, and resets its event type', () => {
    expect(parse('event: lonely\n\ndata: x\n\n').events).toEqual([{ data: 'x' }]);
    expect(parse('\n\n\r\n\r\r').events).toEqual([]);
  });

  it('ignores unknown fields and field names that only resemble known ones', () => {
    const s = 'foo: bar\nDATA: no\ndata : no\nevents: no\nids: no\nobfuscation: abc\ndata: yes\n\n';
    expect(parse(s).events).toEqual([{ data: 'yes' }]);
  });

  it('keeps the last event ID across events, clears it on an empty id, ignores ids with NUL', () => {
    const s = 'id: 1\ndata: a\n\ndata: b\n\nid: 2\u0000x\ndata: c\n\nid\ndata: d\n\nid: 3\n\ndata: e\n\n';
    const p = new SseParser();
    const { events } = parse(s, [], p);
    expect(events).toEqual([{ id: '1', data: 'a' }, { id: '1', data: 'b' }, { id: '1', data: 'c' }, { data: 'd' }, { id: '3', data: 'e' }]);
    expect(p.lastEventId).toBe('3');
  });

  it('takes retry only when it is ASCII digits', () => {
    const seen: number[] = [];
    const p = new SseParser({ onRetry: (ms) => seen.push(ms) });
    const { events } = parse('retry: 1500\ndata: a\n\nretry: 12a\ndata: b\n\nretry: -1\nretry: 1.5\nretry:\nretry: ٣\ndata: c\n\nretry: 7\n\n', [], p);
    expect(events).toEqual([{ data: 'a', retry: 1500 }, { data: 'b' }, { data: 'c' }]);
    expect(seen).toEqual([1500, 7]);
    expect(p.reconnectionTime).toBe(7);
  });

  it('passes OpenAI-compatible usage chunks and unknown JSON fields through untouched (parser case 6)', () => {
    const chunks = [
      '{"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}',
      '{"id":"x","choices":null,"usage":{"prompt_tokens":3}}',
      '{"id":"x","usage":{"prompt_tokens":3},"obfuscation":"q9","service_tier":"default"}',
    ];
    const s = chunks.map((c) => `data: ${c}\n\n`).join('');
    expect(parse(s).events.map((e) => JSON.parse(e.data))).toEqual(chunks.map((c) => JSON.parse(c)));
  });

  it('passes interleaved tool-call fragments and an empty first input_json_delta through (parser case 7)', () => {
    const frames = [
      'data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_a","function":{"name":"f","arguments":""}}]}}]}',
      'data: {"choices":[{"delta":{"tool_calls":[{"index":1,"id":"call_b","function":{"name":"g","arguments":""}}]}}]}',
      'data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a\\":"}}]}}]}',
      'data: {"choices":[{"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]}}]}',
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}',
    ];
    const events = parse(frames.map((f) => `${f}\n\n`).join('')).events;
    expect(events).toHaveLength(5);
    expect(JSON.parse(events[4].data).delta.partial_json).toBe('');
    expect(JSON.parse(events[2].data).choices[0].delta.tool_calls[0].index).toBe(0);
  });
});

describe('SseParser: comments and keep-alives (parser case 8)', () => {
  it('counts comments and reports their text without producing events', () => {
    const texts: string[] = [];
    const p = new SseParser({ onComment: (t) => texts.push(t) });
    expect(p.feed(bytes(': keep-alive\n\n:\n: OPENROUTER PROCESSING\n\n'))).toEqual([]);
    expect(p.comments).toBe(3);
    expect(p.events).toBe(0);
    expect(texts).toEqual([' keep-alive', '', ' OPENROUTER PROCESSING']);
    // A comment inside an event does not break it.
    expect(p.feed(bytes('data: a\n: ka\ndata: b\n\n'))).toEqual([{ data: 'a\nb' }]);
    expect(p.comments).toBe(4);
    expect(p.events).toBe(1);
  });

  it('lets a watchdog tell a keep-alive from content: comments move one counter, ping events the other', () => {
    const p = new SseParser();
    p.feed(bytes(': ka\n\n'));
    expect([p.comments, p.events]).toEqual([1, 0]);
    const ev = p.feed(bytes('event: ping\ndata: {"type": "ping"}\n\n'));
    expect(ev).toEqual([{ event: 'ping', data: '{"type": "ping"}' }]);
    expect([p.comments, p.events]).toEqual([1, 1]);
  });
});

describe('SseParser: UTF-8 (parser case 3)', () => {
  it('decodes a multi-byte character split across chunks at every byte', () => {
    const s = 'data: naïve 日本 🚀 Ω\n\n';
    for (const r of everySplit(s)) expect(r.events).toEqual([{ data: 'naïve 日本 🚀 Ω' }]);
  });

  it('decodes a stream fed one byte at a time', () => {
    const s = 'event: é\ndata: 🚀🚀\ndata: 東京\n\n';
    const b = bytes(s);
    const p = new SseParser();
    const events: SseEvent[] = [];
    for (let i = 0; i < b.length; i++) events.push(...p.feed(b.subarray(i, i + 1)));
    expect(events).toEqual([{ event: 'é', data: '🚀🚀\n東京' }]);
  });

  it('replaces invalid UTF-8 with U+FFFD exactly as a whole-stream decode does', () => {
    const raw = new Uint8Array([...bytes('data: a'), 0xe6, 0x97, ...bytes('\n\ndata: '), 0xff, 0xc3, ...bytes('x\n\n')]);
    const whole = new TextDecoder().decode(raw);
    const want = whole
      .split('\n\n')
      .filter(Boolean)
      .map((b) => ({ data: b.slice('data: '.length) }));
    for (let i = 0; i <= raw.length; i++) expect(parse(raw, [i]).events).toEqual(want);
  });

  it('skips a UTF-8 BOM at the very start, even split, and only there', () => {
    const s = '\uFEFFdata: a\n\ndata: \uFEFFb\n\n';
    for (const r of everySplit(s)) expect(r.events).toEqual([{ data: 'a' }, { data: '\uFEFFb' }]);
    // Only one BOM is skipped; a second one makes the first line's name "\uFEFFdata".
    expect(parse('\uFEFF\uFEFFdata: a\n\ndata: b\n\n').events).toEqual([{ data: 'b' }]);
    // Bytes that start like a BOM but are not one are kept.
    // (EF BB then "data" is one unknown field name, so that line is ignored.)
    expect(parse(new Uint8Array([0xef, 0xbb, ...bytes('data: a\n\ndata: b\n\n')]), [1]).events).toEqual([{ data: 'b' }]);
  });
});

describe('SseParser: end of stream (truncation)', () => {
  it('reports a pending event at end and discards it', () => {
    expect(parse('data: a\n\ndata: b').pending).toBe(true);
    expect(parse('data: a\n\ndata: b').events).toEqual([{ data: 'a' }]);
    expect(parse('data: a\n\ndata: b\n').pending).toBe(true);
    expect(parse('data: a\n\nevent: x\n').pending).toBe(true);
    expect(parse('data: a\n\n:partial comm').pending).toBe(true);
    expect(parse('data: a\n\n').pending).toBe(false);
    expect(parse('data: a\n\n: keep-alive\n').pending).toBe(false);
    expect(parse('').pending).toBe(false);
    // A final CR is a complete line end: "data: a\r\r" dispatched, nothing pending.
    expect(parse('data: a\r\r', [8])).toEqual({ events: [{ data: 'a' }], pending: false });
  });

  it('rejects feed() after end() and answers a second end() with false', () => {
    const p = new SseParser();
    p.feed(bytes('data: a'));
    expect(p.end()).toBe(true);
    expect(p.end()).toBe(false);
    expectCode(() => p.feed(bytes('\n\n')), 'ERR_INVALID_ARGUMENT');
  });

  it('accepts empty chunks and Buffers', () => {
    const p = new SseParser();
    expect(p.feed(new Uint8Array(0))).toEqual([]);
    expect(p.feed(Buffer.from('data: z\n'))).toEqual([]);
    expect(p.feed(new Uint8Array(0))).toEqual([]);
    expect(p.feed(Buffer.from('\n'))).toEqual([{ data: 'z' }]);
  });
});

describe('SseParser: bounds and bad input', () => {
  it('rejects an event larger than maxEventBytes with ERR_AI_UPSTREAM and stays failed', () => {
    const p = new SseParser({ maxEventBytes: 64 });
    expect(p.feed(bytes(`data: ${'x'.repeat(40)}\n\n`))).toHaveLength(1);
    const err = expectCode(() => p.feed(bytes(`data: ${'x'.repeat(40)}\ndata: ${'y'.repeat(40)}\n`)), 'ERR_AI_UPSTREAM', /maxEventBytes/);
    expect((err as unknown as { limit: number }).limit).toBe(64);
    expectCode(() => p.feed(bytes('\n')), 'ERR_AI_UPSTREAM');
    expect(p.end()).toBe(false);
  });

  it('bounds an unterminated line arriving in small chunks', () => {
    const p = new SseParser({ maxEventBytes: 1000 });
    const chunk = bytes('x'.repeat(64));
    let thrown: unknown;
    let fed = 0;
    try {
      for (; fed < 100; fed++) p.feed(chunk);
    } catch (err) {
      thrown = err;
    }
    expect((thrown as { code?: string }).code).toBe('ERR_AI_UPSTREAM');
    expect(fed).toBe(15); // 16 x 64 = 1024 > 1000
  });

  it('counts only the current event: many events under the limit pass', () => {
    const p = new SseParser({ maxEventBytes: 100 });
    let n = 0;
    for (let i = 0; i < 1000; i++) n += p.feed(bytes(`data: ${'z'.repeat(80)}\n\n: ${'c'.repeat(50)}\n`)).length;
    expect(n).toBe(1000);
  });

  it('validates its options and input', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, '10'] as unknown[]) {
      expectCode(() => new SseParser({ maxEventBytes: bad as number }), 'ERR_INVALID_ARGUMENT');
    }
    expectCode(() => new SseParser({ onComment: 'x' as unknown as () => void }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new SseParser({ onRetry: 1 as unknown as () => void }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new SseParser().feed('data: x\n\n' as unknown as Uint8Array), 'ERR_INVALID_ARGUMENT');
  });

  it('parses a single 10 MB event arriving in 64-byte chunks (linear, no per-byte concatenation)', () => {
    // A quadratic parser takes minutes here; this one takes tens of ms (see the report).
    const payload = JSON.stringify({ text: 'ab日🚀'.repeat(1_200_000) });
    const b = bytes(`event: big\ndata: ${payload}\n\n`);
    expect(b.length).toBeGreaterThan(10_000_000);
    const p = new SseParser();
    const events: SseEvent[] = [];
    for (let i = 0; i < b.length; i += 64) events.push(...p.feed(b.subarray(i, i + 64)));
    expect(events).toHaveLength(1);
    expect(events[0].event).toBe('big');
    expect(events[0].data.length).toBe(payload.length);
    expect(events[0].data === payload).toBe(true);
    expect(p.end()).toBe(false);
  });

  it('parses a 1 MB event fed one byte at a time', () => {
    const payload = 'x'.repeat(1 << 20);
    const b = bytes(`data: ${payload}\r\n\r\n`);
    const p = new SseParser();
    const events: SseEvent[] = [];
    for (let i = 0; i < b.length; i++) events.push(...p.feed(b.subarray(i, i + 1)));
    expect(events.length).toBe(1);
    expect(events[0].data.length).toBe(payload.length);
  });
});

// ---- property: any valid stream, split anywhere, parses to its model ----

interface ModelBlock {
  comments: string[];
  event: string | undefined;
  id: string | undefined;
  retry: number | undefined;
  data: string[]; // empty: a block that dispatches nothing
}

const specials = ['a', 'z', ' ', ':', '{', '"', 'é', 'ß', '日', '本', '🚀', '😀', '\u0000', '\uFEFF', 'data', 'id', '\t'];
const lineText = fc
  .oneof(
    fc.array(fc.constantFrom(...specials), { maxLength: 12 }).map((a) => a.join('')),
    fc.string({ unit: 'binary', maxLength: 12 }),
  )
  .map((s) => s.replace(/[\r\n]/g, '').replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, ''));

const block: fc.Arbitrary<ModelBlock> = fc.record({
  comments: fc.array(lineText, { maxLength: 2 }),
  event: fc.option(lineText, { nil: undefined }),
  id: fc.option(lineText.map((s) => s.replace(/\u0000/g, '')), { nil: undefined }),
  retry: fc.option(fc.nat({ max: 100000 }), { nil: undefined }),
  data: fc.array(lineText, { maxLength: 4 }),
});

const stream = fc.record({
  bom: fc.boolean(),
  blocks: fc.array(block, { maxLength: 6 }),
  terms: fc.array(fc.constantFrom('\n', '\r\n', '\r'), { minLength: 64, maxLength: 64 }),
  spaceStyle: fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }),
});

function serialize(m: { bom: boolean; blocks: ModelBlock[]; terms: string[]; spaceStyle: boolean[] }): { text: string; want: SseEvent[] } {
  const lines: string[] = [];
  const want: SseEvent[] = [];
  let lastId = '';
  let k = 0;
  const field = (name: string, value: string) => {
    // "name:value" is fine unless value starts with a space (then one must be added).
    const sp = value.startsWith(' ') || m.spaceStyle[k++ % m.spaceStyle.length];
    lines.push(`${name}:${sp ? ' ' : ''}${value}`);
  };
  for (const b of m.blocks) {
    for (const c of b.comments) lines.push(`:${c}`);
    if (b.event !== undefined) field('event', b.event);
    if (b.id !== undefined) {
      field('id', b.id);
      lastId = b.id;
    }
    if (b.retry !== undefined) lines.push(`retry: ${b.retry}`);
    for (const d of b.data) field('data', d);
    lines.push('');
    if (b.data.length > 0) {
      const ev: SseEvent = { data: b.data.join('\n') };
      if (b.event) ev.event = b.event;
      if (lastId !== '') ev.id = lastId;
      if (b.retry !== undefined) ev.retry = b.retry;
      want.push(ev);
    }
  }
  let text = m.bom ? '\uFEFF' : '';
  let prev = '';
  lines.forEach((line, i) => {
    let t = m.terms[i % m.terms.length];
    // A CR followed by an empty line ended by LF would read as one CRLF.
    if (prev === '\r' && line === '' && t === '\n') t = '\r\n';
    text += line + t;
    prev = t;
  });
  return { text, want };
}

describe('SseParser: properties', () => {
  it('any valid event stream, split anywhere (inside characters, between CR and LF), parses to its events', () => {
    fc.assert(
      fc.property(stream, fc.array(fc.nat(), { maxLength: 24 }), (m, rawCuts) => {
        const { text, want } = serialize(m);
        const b = bytes(text);
        const whole = parse(b);
        expect(whole.events).toEqual(want);
        expect(whole.pending).toBe(false);
        const split = parse(
          b,
          rawCuts.map((c) => (b.length === 0 ? 0 : c % (b.length + 1))),
        );
        expect(split).toEqual(whole);
      }),
      { numRuns: 400 },
    );
  });

  it('any stream fed one byte at a time equals the unsplit parse', () => {
    fc.assert(
      fc.property(stream, (m) => {
        const b = bytes(serialize(m).text);
        const whole = parse(b);
        const p = new SseParser();
        const events: SseEvent[] = [];
        for (let i = 0; i < b.length; i++) events.push(...p.feed(b.subarray(i, i + 1)));
        expect({ events, pending: p.end() }).toEqual(whole);
      }),
      { numRuns: 150 },
    );
  });

  it('a stream cut short anywhere inside its last event reports it pending', () => {
    fc.assert(
      fc.property(stream, fc.nat(), (m, cut) => {
        const last = m.blocks[m.blocks.length - 1];
        if (!last || last.data.length === 0) return;
        const { text, want } = serialize(m);
        const b = bytes(text);
        // Cut between the last data byte and the final blank line: that event is lost.
        const lastBlank = b.length - (text.endsWith('\r\n') ? 2 : 1);
        const at = lastBlank - 1 - (cut % 3);
        if (at <= 0) return;
        const r = parse(b.subarray(0, at));
        expect(r.events).toEqual(want.slice(0, -1));
        expect(r.pending).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
