// Subjects as NATS defines them, checked against the NATS server's own sublist test
// vectors (nats-io/nats-server, server/sublist_test.go: TestSublistValidLiteralSubjects,
// TestSublistValidlSubjects, TestSublistMatchLiterals, TestSublist{Insert,Remove}With-
// WildcardsAsLiterals), restated here as facts. The rule they pin down: '*' and '>'
// are wildcards only as whole tokens; inside a token they are ordinary characters.
import { describe, expect, it } from 'vitest';
import { Bus } from '../lib/index.js';
import { isWildcardPattern } from '../lib/bus/route-table.js';
import { native } from '../lib/internal/native.js';
import { expectCode } from './helpers.js';

const { SubjectMatcher, validateSubject } = native();

// Can this subject be published (NATS: a valid literal subject)?
const natsPublish: Array<[string, boolean]> = [
  ['foo', true],
  ['.foo', false],
  ['foo.', false],
  ['foo..bar', false],
  ['foo.bar.*', false],
  ['foo.bar.>', false],
  ['*', false],
  ['>', false],
  // Wildcard characters that are not a whole token are literal characters.
  ['foo*', true],
  ['foo**', true],
  ['foo.**', true],
  ['foo*bar', true],
  ['foo.*bar', true],
  ['foo*.bar', true],
  ['*bar', true],
  ['foo>', true],
  ['foo>>', true],
  ['foo.>>', true],
  ['foo>bar', true],
  ['foo.>bar', true],
  ['foo>.bar', true],
  ['>bar', true],
];

// Can this be subscribed to (NATS: a valid subject, wildcards allowed)?
const natsPattern: Array<[string, boolean]> = [
  ['.', false],
  ['.foo', false],
  ['foo.', false],
  ['foo..bar', false],
  ['>.bar', false], // '>' only as the last token
  ['foo.>.bar', false],
  ['foo', true],
  ['foo.bar.*', true],
  ['foo.bar.>', true],
  ['*', true],
  ['>', true],
  ['foo*', true],
  ['foo**', true],
  ['foo.**', true],
  ['foo*bar', true],
  ['foo.*bar', true],
  ['foo*.bar', true],
  ['*bar', true],
  ['foo>', true],
  ['foo.>>', true],
  ['foo>bar', true],
  ['foo.>bar', true],
  ['foo>.bar', true],
  ['>bar', true],
];

// Does a subscription to `pattern` receive a message published to `subject`?
const natsMatch: Array<[pattern: string, subject: string, matches: boolean]> = [
  ['foo', 'foo', true],
  ['bar', 'foo', false],
  ['*', 'foo', true],
  ['>', 'foo', true],
  ['>', 'foo.bar', true],
  ['foo.>', 'foo.bar', true],
  ['bar.>', 'foo.bar', false],
  ['stats.>', 'stats.test.22', true],
  ['stats.*.*', 'stats.test.22', true],
  ['foo', 'foo.bar', false],
  ['stats.test.foos', 'stats.test.foos', true],
  ['stats.test.foo', 'stats.test.foos', false],
  ['stats.test.*', 'stats.test', false],
  ['stats.*', 'stats.test.foos', false],
  ['stats.*.*.foos', 'stats.test.foos', false],
  // Wildcard characters inside a token match only themselves.
  ['*bar', '*bar', true],
  ['foo*', 'foo*', true],
  ['foo*bar', 'foo*bar', true],
  ['foo.***.bar', 'foo.***.bar', true],
  ['>bar', '>bar', true],
  ['foo>', 'foo>', true],
  ['foo>bar', 'foo>bar', true],
  ['foo.>>>.bar', 'foo.>>>.bar', true],
];

// A pattern whose last token merely starts with a wildcard character is a literal:
// subscribed, it receives itself and not 'foo.bar'; removing 'foo.bar' leaves it.
const natsLiteralPatterns = ['foo.*-', 'foo.>-'];

// Does this pattern hold a wildcard token (NATS: TestSubjectIsLiteral, negated)? The
// bus keeps patterns without one in an exact Map, so this split must follow the
// whole-token rule too.
const natsHasWildcard: Array<[string, boolean]> = [
  ['foo', false],
  ['foo.bar', false],
  ['foo*.bar', false],
  ['*', true],
  ['>', true],
  ['foo.*', true],
  ['foo.>', true],
  ['foo.*.>', true],
  ['foo.*.bar', true],
  ['foo.bar.>', true],
];

const wholeTokenWildcard = (s: string): boolean => s.split('.').some((t) => t === '*' || t === '>');

const valid = (s: string, pattern: boolean): boolean => {
  try {
    validateSubject(s, pattern);
    return true;
  } catch {
    return false;
  }
};

describe('NATS subject vectors', () => {
  it('are all here: 22 + 24 + 23 + 2 facts', () => {
    expect([natsPublish.length, natsPattern.length, natsMatch.length, natsLiteralPatterns.length]).toEqual([22, 24, 23, 2]);
  });

  it.each(natsPublish)('publish %j valid: %s', (subject, ok) => {
    expect(valid(subject, false)).toBe(ok);
    const m = new SubjectMatcher();
    if (ok) expect(Array.from(m.match(subject))).toEqual([]);
    else expectCode(() => m.match(subject), 'ERR_INVALID_ARGUMENT');
  });

  it.each(natsPattern)('pattern %j valid: %s', (pattern, ok) => {
    expect(valid(pattern, true)).toBe(ok);
    const m = new SubjectMatcher();
    if (ok) {
      m.subscribe(pattern, 1);
      expect(m.patternCount).toBe(1);
      m.unsubscribe(pattern, 1);
      expect(m.patternCount).toBe(0);
    } else {
      expectCode(() => m.subscribe(pattern, 1), 'ERR_INVALID_ARGUMENT');
    }
    // The bus keeps exact patterns in a Map and the rest in the trie: the split must
    // follow the whole-token rule, or 'foo*' would be looked up as a wildcard.
    if (ok) expect(isWildcardPattern(pattern)).toBe(wholeTokenWildcard(pattern));
  });

  it.each(natsMatch)('pattern %j receives %j: %s', (pattern, subject, matches) => {
    for (const cacheEntries of [0, 4]) {
      const m = new SubjectMatcher(cacheEntries);
      m.subscribe(pattern, 7);
      const want = matches ? [7] : [];
      expect(Array.from(m.match(subject))).toEqual(want);
      expect(Array.from(m.match(subject))).toEqual(want); // from the cache, if any
    }
  });

  it.each(natsLiteralPatterns)('%j is a literal pattern', (pattern) => {
    const m = new SubjectMatcher();
    m.subscribe(pattern, 1);
    expect(Array.from(m.match('foo.bar'))).toEqual([]);
    expect(Array.from(m.match(pattern))).toEqual([1]);
    expectCode(() => m.unsubscribe('foo.bar', 1), 'ERR_NOT_FOUND');
    expect(m.patternCount).toBe(1);
    m.unsubscribe(pattern, 1);
    expect(m.patternCount).toBe(0);
    expect(isWildcardPattern(pattern)).toBe(false);
  });
});

describe('isWildcardPattern (the bus: exact Map or trie)', () => {
  it.each(natsHasWildcard)('%j has a wildcard token: %s', (pattern, wild) => {
    expect(isWildcardPattern(pattern)).toBe(wild);
  });
});

describe('wildcard characters inside a token', () => {
  it('keep a literal token apart from the wildcard of the same spelling', () => {
    const m = new SubjectMatcher();
    m.subscribe('a.*', 1);
    m.subscribe('a.*b', 2);
    m.subscribe('a.>', 3);
    m.subscribe('a.>b', 4);
    m.subscribe('a.**', 5);
    expect(Array.from(m.match('a.*b'))).toEqual([1, 2, 3]);
    expect(Array.from(m.match('a.>b'))).toEqual([1, 3, 4]);
    expect(Array.from(m.match('a.xb'))).toEqual([1, 3]);
    expect(Array.from(m.match('a.**'))).toEqual([1, 3, 5]);
    expect(Array.from(m.match('a.**.c'))).toEqual([3]);
    m.unsubscribe('a.*', 1);
    m.unsubscribe('a.>', 3);
    expect(Array.from(m.match('a.*b'))).toEqual([2]);
    expect(Array.from(m.match('a.x'))).toEqual([]);
  });

  it('still leave whole-token wildcards unpublishable and a non-final > invalid', () => {
    for (const s of ['*', '>', 'a.*', 'a.>', '*.a', '>.a']) expectCode(() => validateSubject(s, false), 'ERR_INVALID_ARGUMENT');
    for (const p of ['>.a', 'a.>.b', '>.>']) expectCode(() => validateSubject(p, true), 'ERR_INVALID_ARGUMENT');
    validateSubject('a.>>.b', true);
    validateSubject('a.>>.b', false);
  });
});

describe('Bus subjects with wildcard characters inside a token', () => {
  async function received(patterns: string[], subject: string): Promise<string[]> {
    const bus = new Bus();
    const got: string[] = [];
    for (const p of patterns) bus.subscribe(p, (ev) => void got.push(`${p} <- ${ev.subject}`));
    bus.publish(subject, 1);
    await bus.drain();
    await bus.close();
    return got.sort();
  }

  it.each(natsMatch)('pattern %j receives %j: %s', async (pattern, subject, matches) => {
    expect(await received([pattern], subject)).toEqual(matches ? [`${pattern} <- ${subject}`] : []);
  });

  it("delivers 'foo*' to a subscriber of 'foo*', not of 'foo.*' or '*.*'", async () => {
    expect(await received(['foo*', 'foo.*', '*.*', '*', '>'], 'foo*')).toEqual(['* <- foo*', '> <- foo*', 'foo* <- foo*']);
  });

  it("delivers 'foo.>>' to 'foo.*', 'foo.>' and 'foo.>>', not to 'foo.>>.x'", async () => {
    expect(await received(['foo.>>', 'foo.*', 'foo.>', 'foo.>>.x'], 'foo.>>')).toEqual([
      'foo.* <- foo.>>',
      'foo.> <- foo.>>',
      'foo.>> <- foo.>>',
    ]);
  });

  it("delivers 'foo.bar' to no literal 'foo.*-' or 'foo.>-'", async () => {
    expect(await received(natsLiteralPatterns, 'foo.bar')).toEqual([]);
    expect(await received(natsLiteralPatterns, 'foo.*-')).toEqual(['foo.*- <- foo.*-']);
  });

  it('rejects what NATS rejects', () => {
    const bus = new Bus();
    for (const [p, ok] of natsPattern) if (!ok) expectCode(() => bus.subscribe(p, () => {}), 'ERR_INVALID_ARGUMENT');
    for (const [s, ok] of natsPublish) if (!ok) expectCode(() => bus.publish(s, 1), 'ERR_INVALID_ARGUMENT');
    return bus.close();
  });
});
