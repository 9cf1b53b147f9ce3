// SessionAffinity: a session stays on its target while that target is healthy, and the
// map of pins is bounded. AIClient's sessions use it (client-resilience-cache.test.ts
// "a session keeps its target while it is healthy").
import { describe, expect, it } from 'vitest';
import { SessionAffinity } from '../../lib/ai/session/affinity.js';

describe('SessionAffinity', () => {
  it('keeps a session on its target while healthy and re-picks when not', () => {
    const aff = new SessionAffinity();
    const down = new Set<string>();
    const healthy = (t: string) => !down.has(t);
    expect(aff.order('s1', ['a', 'b'], healthy)).toEqual(['a', 'b']);
    // The strategy now prefers b, but the session stays on a.
    expect(aff.order('s1', ['b', 'a'], healthy)).toEqual(['a', 'b']);
    expect(aff.order('s2', ['b', 'a'], healthy)).toEqual(['b', 'a']);
    down.add('a');
    expect(aff.order('s1', ['a', 'b'], healthy)).toEqual(['b', 'a']);
    expect(aff.pinned('s1')).toBe('b');
    down.delete('a');
    expect(aff.order('s1', ['a', 'b'], healthy)[0]).toBe('b'); // re-pinned, stays
  });

  it('record() re-pins to the target that answered; the map is bounded', () => {
    const aff = new SessionAffinity({ maxSessions: 3 });
    aff.order('s1', ['a', 'b']);
    aff.record('s1', 'b');
    expect(aff.order('s1', ['a', 'b'])[0]).toBe('b');
    for (let i = 0; i < 10; i++) aff.order(`x${i}`, ['a']);
    expect(aff.size).toBe(3);
    expect(aff.pinned('s1')).toBeUndefined();
  });
});
