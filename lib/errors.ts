import { ErrorCodes, type ErrorCode } from './internal/codes.js';

export { ErrorCodes, type ErrorCode };

export interface MyelinErrorOptions {
  cause?: unknown;
  [field: string]: unknown;
}

/**
 * Every error myelin throws or rejects with. Match on `code`, never on `message`.
 * Extra fields (`status`, `provider`, `requestId`, ...) ride along where an area sets them.
 */
export class MyelinError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options: MyelinErrorOptions = {}) {
    const { cause, ...fields } = options;
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'MyelinError';
    this.code = code in ErrorCodes ? code : 'ERR_INTERNAL';
    Object.assign(this, fields);
  }
}

/** Shorthand for the most common error: a bad argument, naming it and what was expected. */
export function invalidArgument(what: string, cause?: unknown): MyelinError {
  return new MyelinError('ERR_INVALID_ARGUMENT', what, cause === undefined ? {} : { cause });
}
