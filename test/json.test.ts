import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { native } from '../lib/internal/native.js';
import { expectCode } from './helpers.js';

const addon = native();
const { JsonExtractor } = addon;
const enc = new TextEncoder();
const dec = new TextDecoder();

const TYPES = ['missing', 'string', 'number', 'bool', 'null', 'object', 'array'];

function fields(names: string[], doc: Uint8Array) {
  const x = new JsonExtractor(names);
  const out = new Uint32Array(names.length * 3);
  x.extract(doc, out);
  return names.map((_, i) => ({
    type: TYPES[out[i * 3 + 2] & 0xff],
    escaped: (out[i * 3 + 2] & 0x100) !== 0,
    text: dec.decode(doc.subarray(out[i * 3], out[i * 3] + out[i * 3 + 1])),
  }));
}

const event = enc.encode(
  '{"op":"pub","subject":"orders.eu.created","key":"u-42","priority":"high","data":{"n":[1,2,{"x":"}"}]},"ok":true,"z":null,"v":-1.5e3}',
);

for (const impl of ['default', 'fallback']) {
  describe(`JsonExtractor (${impl} implementation)`, () => {
    const original = addon.jsonImplementation();
    beforeEach(() => {
      if (impl === 'fallback') {
        addon.setJsonImplementation('fallback');
        expect(addon.jsonImplementation()).toBe('fallback');
      }
    });
    afterEach(() => addon.setJsonImplementation(original));

    it('finds top-level fields of every type without building objects', () => {
      const got = fields(['subject', 'key', 'priority', 'data', 'ok', 'z', 'v', 'absent'], event);
      expect(got.map((g) => g.type)).toEqual(['string', 'string', 'string', 'object', 'bool', 'null', 'number', 'missing']);
      expect(got[0].text).toBe('orders.eu.created');
      expect(got[3].text).toBe('{"n":[1,2,{"x":"}"}]}');
      expect(got[6].text).toBe('-1.5e3');
    });

    it('flags escaped strings and unescapes them, surrogate pairs included', () => {
      const doc = enc.encode('{"subject":"a\\"b\\u00e9\\ud83d\\ude80","key":"plain"}');
      const [s, k] = fields(['subject', 'key'], doc);
      expect(s.escaped).toBe(true);
      expect(k.escaped).toBe(false);
      expect(addon.unescapeJsonString(enc.encode(s.text))).toBe('a"bé🚀');
      expectCode(() => addon.unescapeJsonString(enc.encode('\\ud83d')), 'ERR_INVALID_JSON');
    });

    it('lets the last duplicate key win', () => {
      expect(fields(['k'], enc.encode('{"k":1,"k":2}'))[0].text).toBe('2');
    });

    it('rejects malformed, truncated, non-object and invalid UTF-8 documents', () => {
      const x = new JsonExtractor(['subject']);
      const out = new Uint32Array(3);
      for (const bad of ['{"a":}', '{a:1}', '{"a":1,}', '{"a":1} x', '', '   ', '{"a" 1}']) {
        expectCode(() => x.extract(enc.encode(bad), out), 'ERR_INVALID_JSON');
      }
      for (const notObject of ['[1,2]', '"str"', '42', 'null']) {
        expectCode(() => x.extract(enc.encode(notObject), out), 'ERR_INVALID_JSON', /not an object/);
      }
      // Every strict prefix of a real event is an error, never a success or a crash.
      for (let n = 0; n < event.length; n++) {
        expect(() => x.extract(event.subarray(0, n), out)).toThrow();
      }
      const badUtf8 = [
        [0x7b, 0x22, 0x73, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d], // overlong
        [0x7b, 0x22, 0x73, 0x22, 0x3a, 0x22, 0x80, 0x22, 0x7d], // lone continuation
        [0x7b, 0x22, 0x73, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d], // UTF-8-encoded surrogate
        [0x7b, 0x22, 0xe2, 0x82, 0x22, 0x3a, 0x31, 0x7d], // truncated multibyte in a key
      ];
      for (const bytes of badUtf8) expectCode(() => x.extract(new Uint8Array(bytes), out), 'ERR_INVALID_UTF8');
    });

    it('extracts a batch in one call, with per-document statuses', () => {
      const docs = ['{"subject":"a.b"}', '{"subject":', '{"subject":"c.d","key":"k"}', '[1]'];
      const bytes = enc.encode(docs.join(''));
      const offsets = new Uint32Array(docs.length);
      const lengths = new Uint32Array(docs.length);
      let at = 0;
      docs.forEach((d, i) => {
        offsets[i] = at;
        lengths[i] = enc.encode(d).length;
        at += lengths[i];
      });
      const x = new JsonExtractor(['subject', 'key']);
      const out = new Uint32Array(docs.length * 2 * 3);
      const statuses = new Int32Array(docs.length);
      expect(x.extractBatch(bytes, offsets, lengths, out, statuses)).toBe(2);
      expect(statuses[0]).toBe(0);
      expect(statuses[1]).not.toBe(0);
      expect(statuses[2]).toBe(0);
      expect(statuses[3]).not.toBe(0);
      const text = (d: number, f: number) => {
        const o = (d * 2 + f) * 3;
        return dec.decode(bytes.subarray(out[o], out[o] + out[o + 1]));
      };
      expect(text(0, 0)).toBe('a.b');
      expect(text(2, 0)).toBe('c.d');
      expect(text(2, 1)).toBe('k');
      const table = addon.statusTable();
      expect(table[statuses[1]].code).toBe('ERR_INVALID_JSON');
    });
  });
}

describe('JsonExtractor arguments', () => {
  it('rejects bad names, buffers and output arrays', () => {
    expectCode(() => new JsonExtractor([]), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new JsonExtractor('subject' as never), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new JsonExtractor([1 as never]), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new JsonExtractor(Array.from({ length: 17 }, (_, i) => `f${i}`)), 'ERR_INVALID_ARGUMENT');
    const x = new JsonExtractor(['a', 'b']);
    expectCode(() => x.extract('{"a":1}' as never, new Uint32Array(6)), 'ERR_INVALID_ARGUMENT');
    expectCode(() => x.extract(enc.encode('{"a":1}'), new Uint32Array(5)), 'ERR_INVALID_ARGUMENT');
    expectCode(() => x.extract(enc.encode('{"a":1}'), new Int32Array(6) as never), 'ERR_INVALID_ARGUMENT');
    expectCode(
      () => x.extractBatch(enc.encode('{}'), new Uint32Array(1), new Uint32Array(2), new Uint32Array(6), new Int32Array(1)),
      'ERR_INVALID_ARGUMENT',
    );
    expectCode(() => addon.setJsonImplementation('no-such-isa'), 'ERR_UNSUPPORTED');
  });

  it('handles documents in detached and shared buffers', () => {
    const x = new JsonExtractor(['a']);
    const sab = new SharedArrayBuffer(16);
    const view = new Uint8Array(sab);
    view.set(enc.encode('{"a":7}'));
    const out = new Uint32Array(3);
    x.extract(view.subarray(0, 7), out);
    expect(out[2]).toBe(2);
    const ab = new ArrayBuffer(8);
    const u8 = new Uint8Array(ab);
    structuredClone(ab, { transfer: [ab] });
    expectCode(() => x.extract(u8, out), 'ERR_INVALID_JSON'); // detached reads as empty
  });
});
