import { expect } from 'vitest';
import { MyelinError } from '../lib/errors.js';

/** Runs fn and asserts it throws a MyelinError with `code` (and, optionally, a message match). */
export function expectCode(fn: () => unknown, code: string, message?: RegExp): MyelinError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected ${code} to be thrown`).toBeInstanceOf(MyelinError);
  const err = caught as MyelinError;
  expect(err.code).toBe(code);
  if (message) expect(err.message).toMatch(message);
  return err;
}

/** The bus's accounting identity: every accepted event is in exactly one state. */
export function addsUp(bus: { stats(): { published: number; delivered: number; dropped: number; failed: number; queued: number; inFlight: number } }): void {
  const s = bus.stats();
  expect(s.published).toBe(s.delivered + s.dropped + s.failed + s.queued + s.inFlight);
}

export async function expectRejectCode(p: Promise<unknown>, code: string): Promise<MyelinError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected rejection with ${code}`).toBeInstanceOf(MyelinError);
  expect((caught as MyelinError).code).toBe(code);
  return caught as MyelinError;
}
