import { describe, expect, it } from 'vitest';
import { native } from '../lib/internal/native.js';
import { expectCode } from './helpers.js';

const { SubjectMatcher, validateSubject } = native();

describe('SubjectMatcher binding', () => {
  // [pattern, subject, matches]
  const table: Array<[string, string, boolean]> = [
    ['a.b', 'a.b', true],
    ['a.b', 'a.c', false],
    ['a.*', 'a', false],
    ['a.*', 'a.b', true],
    ['a.*', 'a.b.c', false],
    ['a.>', 'a', false],
    ['a.>', 'a.b', true],
    ['a.>', 'a.b.c.d', true],
    ['*.*', 'a.b', true],
    ['*.*', 'a', false],
    ['>', 'a', true],
    ['>', 'a.b.c', true],
    ['*', 'a', true],
    ['*', 'a.b', false],
    ['a.*.c.>', 'a.b.c.d', true],
    ['a.*.c.>', 'a.b.c', false],
    ['a.*.c.>', 'a.b.x.d', false],
    ['tenant.*.audit.>', 'tenant.42.audit.login.ok', true],
    ['tenant.*.audit.>', 'tenant.42.orders.created', false],
  ];
  it.each(table)('%s vs %s -> %s', (pattern, subject, matches) => {
    const m = new SubjectMatcher();
    m.subscribe(pattern, 1);
    expect(Array.from(m.match(subject))).toEqual(matches ? [1] : []);
  });

  it('returns every matching id once, ascending', () => {
    const m = new SubjectMatcher();
    m.subscribe('a.>', 9);
    m.subscribe('a.*', 3);
    m.subscribe('a.b', 5);
    m.subscribe('>', 3);
    expect(Array.from(m.match('a.b'))).toEqual([3, 5, 9]);
    const out = new Uint32Array(2);
    expect(m.matchInto('a.b', out)).toBe(3);
    expect(Array.from(out)).toEqual([3, 5]);
    expectCode(() => m.matchBound('a.b'), 'ERR_INVALID_ARGUMENT', /bindOutput/);
    const bound = new Uint32Array(8);
    m.bindOutput(bound);
    expect(m.matchBound('a.b')).toBe(3);
    expect(Array.from(bound.subarray(0, 3))).toEqual([3, 5, 9]);
  });

  it('invalidates its cache on subscribe and unsubscribe', () => {
    const m = new SubjectMatcher();
    m.subscribe('x.*', 1);
    expect(Array.from(m.match('x.y'))).toEqual([1]);
    expect(m.cacheSize).toBeGreaterThan(0);
    m.subscribe('x.y', 2);
    expect(Array.from(m.match('x.y'))).toEqual([1, 2]);
    m.unsubscribe('x.*', 1);
    expect(Array.from(m.match('x.y'))).toEqual([2]);
    expectCode(() => m.unsubscribe('x.*', 1), 'ERR_NOT_FOUND');
    expectCode(() => m.subscribe('x.y', 2), 'ERR_INVALID_ARGUMENT');
  });

  it('serves 10,000 subscribers on one subject', () => {
    const m = new SubjectMatcher();
    for (let i = 0; i < 10_000; i++) m.subscribe(i % 2 ? 'big.*' : 'big.one', i);
    const ids = m.match('big.one');
    expect(ids.length).toBe(10_000);
    expect(ids[0]).toBe(0);
    expect(ids[9_999]).toBe(9_999);
    expect(m.patternCount).toBe(2);
  });

  it('rejects bad subjects and patterns with ERR_INVALID_ARGUMENT', () => {
    const m = new SubjectMatcher();
    const badPatterns = ['', 'a..b', '.a', 'a.', 'a.>.b', '>.b', 'a b', 'a\tb', 'a\0b', 'x'.repeat(1025)];
    for (const p of badPatterns) {
      expectCode(() => m.subscribe(p, 1), 'ERR_INVALID_ARGUMENT');
      expectCode(() => validateSubject(p, true), 'ERR_INVALID_ARGUMENT');
    }
    for (const s of ['a.*', 'a.>', '>', '*', 'a..b', '', 'x'.repeat(64 * 1024)]) {
      expectCode(() => m.match(s), 'ERR_INVALID_ARGUMENT');
      expectCode(() => validateSubject(s, false), 'ERR_INVALID_ARGUMENT');
    }
    expectCode(() => m.match('x'.repeat(1025)), 'ERR_INVALID_ARGUMENT', /1025 bytes/);
    validateSubject('x'.repeat(1024), false);
    validateSubject('a.*.>', true);
    // As in NATS, '*' and '>' inside a token are literal (test/subjects.test.ts has the vectors).
    for (const literal of ['a.b*', 'a.*b', '>b']) {
      validateSubject(literal, true);
      validateSubject(literal, false);
    }
  });

  it('rejects wrong argument types, NaN and negative ids', () => {
    const m = new SubjectMatcher();
    expectCode(() => m.subscribe(42 as never, 1), 'ERR_INVALID_ARGUMENT', /pattern must be a string/);
    expectCode(() => m.subscribe('a', -1), 'ERR_INVALID_ARGUMENT');
    expectCode(() => m.subscribe('a', NaN), 'ERR_INVALID_ARGUMENT');
    expectCode(() => m.subscribe('a', 1.5), 'ERR_INVALID_ARGUMENT');
    expectCode(() => m.matchInto('a', [] as never), 'ERR_INVALID_ARGUMENT');
    expectCode(() => new SubjectMatcher(-5), 'ERR_INVALID_ARGUMENT');
  });

  it('treats multi-byte UTF-8 tokens as literals', () => {
    const m = new SubjectMatcher();
    m.subscribe('ορδερ.*', 4);
    m.subscribe('emoji.🚀', 5);
    expect(Array.from(m.match('ορδερ.νέα'))).toEqual([4]);
    expect(Array.from(m.match('emoji.🚀'))).toEqual([5]);
  });

  it('keeps answering correctly with a tiny cache under churn', () => {
    const m = new SubjectMatcher(4);
    for (let i = 0; i < 100; i++) m.subscribe(`t.${i}.*`, i);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 100; i++) expect(Array.from(m.match(`t.${i}.x`))).toEqual([i]);
    }
    expect(m.cacheSize).toBeLessThanOrEqual(4);
  });
});
