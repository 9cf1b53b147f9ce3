// The queue checker on hand-made histories: each class (lost prefix/middle/suffix,
// duplicated, unexpected, recovered) is produced on purpose and counted exactly.
import { describe, expect, it } from 'vitest';
import { checkQueue, formatReport, parseValue, QueueChecker } from './checker.js';

const range = (producer: string, from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${producer}-${from + i}`);

describe('queue checker', () => {
  it('a clean history: everything acknowledged is read once', () => {
    const vals = range('p1', 0, 10);
    const r = checkQueue({ attempted: vals, acknowledged: vals, read: [...vals].reverse() });
    expect(r).toMatchObject({ attempted: 10, acknowledged: 10, read: 10, reads: 10, lost: 0, duplicated: 0, unexpected: 0, recovered: 0 });
  });

  it('splits lost values into prefix, middle and suffix per producer', () => {
    const vals = range('p1', 0, 10);
    // read 2..7 except 4 and 5: lost 0,1 (prefix), 4,5 (middle), 8,9 (suffix)
    const read = ['p1-2', 'p1-3', 'p1-6', 'p1-7'];
    const r = checkQueue({ attempted: vals, acknowledged: vals, read });
    expect(r).toMatchObject({ lost: 6, lostPrefix: 2, lostMiddle: 2, lostSuffix: 2, read: 4 });
    expect(r.samples.lost).toEqual(['p1-0', 'p1-1', 'p1-4', 'p1-5', 'p1-8', 'p1-9']);
  });

  it('anchors prefix and suffix per producer, not globally', () => {
    const a = range('a', 0, 5);
    const b = range('b', 0, 5);
    // a: read 0..2, lost 3,4 (suffix); b: read 3,4, lost 0..2 (prefix)
    const r = checkQueue({ attempted: [...a, ...b], acknowledged: [...a, ...b], read: ['a-0', 'a-1', 'a-2', 'b-3', 'b-4'] });
    expect(r).toMatchObject({ lost: 5, lostPrefix: 3, lostMiddle: 0, lostSuffix: 2 });
  });

  it('counts a producer with nothing read as middle loss (no anchor)', () => {
    const r = checkQueue({ attempted: range('x', 0, 3), acknowledged: range('x', 0, 3), read: [] });
    expect(r).toMatchObject({ lost: 3, lostPrefix: 0, lostMiddle: 3, lostSuffix: 0 });
  });

  it('unacknowledged values that are never read are not lost; read ones are recovered', () => {
    const vals = range('p', 0, 6);
    const acked = vals.slice(0, 3); // 3..5 failed or unknown
    const r = checkQueue({ attempted: vals, acknowledged: acked, read: ['p-0', 'p-1', 'p-2', 'p-4'] });
    expect(r).toMatchObject({ attempted: 6, acknowledged: 3, lost: 0, recovered: 1, read: 4 });
  });

  it('counts duplicates once per value and the extra reads separately', () => {
    const vals = range('p', 0, 4);
    const r = checkQueue({ attempted: vals, acknowledged: vals, read: ['p-0', 'p-0', 'p-0', 'p-1', 'p-2', 'p-2', 'p-3'] });
    expect(r).toMatchObject({ duplicated: 2, duplicateReads: 3, reads: 7, read: 4, lost: 0 });
    expect(r.samples.duplicated).toEqual(['p-0 x3', 'p-2 x2']);
  });

  it('flags values read but never attempted, including malformed ones and unknown producers', () => {
    const vals = range('p', 0, 3);
    const r = checkQueue({ attempted: vals, acknowledged: vals, read: [...vals, 'p-99', 'q-0', 'garbage', 'garbage', 'p-'] });
    expect(r.unexpected).toBe(4); // p-99, q-0, garbage (once, read twice), p-
    expect(r.reads).toBe(8);
    expect(r.read).toBe(3);
    expect(r.lost).toBe(0);
    expect(r.samples.unexpected).toEqual(expect.arrayContaining(['p-99', 'q-0', 'garbage', 'p-']));
  });

  it('an acknowledged value counts as attempted even when attempt() was never called', () => {
    const c = new QueueChecker();
    c.ack('p', 7);
    const r = c.report();
    expect(r).toMatchObject({ attempted: 1, acknowledged: 1, lost: 1, lostMiddle: 1 });
  });

  it('producer names may contain dashes: the seq is after the last one', () => {
    expect(parseValue('node-a-12')).toEqual({ producer: 'node-a', seq: 12 });
    expect(parseValue('-5')).toBeUndefined();
    expect(parseValue('p-1.5')).toBeUndefined();
    expect(parseValue('p-x')).toBeUndefined();
    const r = checkQueue({ attempted: ['node-a-1'], acknowledged: ['node-a-1'], read: ['node-a-1'] });
    expect(r.lost).toBe(0);
    expect(formatReport(r)).toContain('lost 0 (prefix 0, middle 0, suffix 0)');
  });

  it('rejects a history whose attempted values are not producer-seq', () => {
    expect(() => checkQueue({ attempted: ['nope'], acknowledged: [], read: [] })).toThrow(/producer-seq/);
  });
});
