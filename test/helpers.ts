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
