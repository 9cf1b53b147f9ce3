import { ErrorCodes, isErrorCode, type ErrorCode } from './internal/codes.js';

export { ErrorCodes, type ErrorCode };

/** Names a MyelinError sets itself. Extra fields never overwrite them (MyelinErrorOptions
 * forbids them; at run time they are skipped), so `code`, `message` and `stack` always
 * mean what the thrower meant. `constructor` and `__proto__` are skipped too (every
 * object type has them, so the type cannot forbid them). */
const RESERVED_FIELDS: ReadonlySet<string> = new Set(['code', 'name', 'message', 'stack', 'cause', 'unknownCode', 'constructor', '__proto__']);

export interface MyelinErrorOptions {
  cause?: unknown;
  code?: never;
  name?: never;
  message?: never;
  stack?: never;
  unknownCode?: never;
  [field: string]: unknown;
}

const warnedCodes = new Set<string>();

/**
 * Every error myelin throws or rejects with. Match on `code`, never on `message`.
 * Extra fields (`status`, `provider`, `requestId`, ...) ride along where an area sets them.
 *
 * `code` is always a key of ErrorCodes and cannot be reassigned. A code that is not in
 * the table (a bug: the ErrorCode type and test/errors.test.ts keep them out) is not
 * thrown as is and not hidden either: the error carries ERR_INTERNAL, the offending code
 * in `unknownCode` and in the message, and the process gets one warning per such code.
 * The constructor itself never throws: it runs on error paths (and from the native
 * binding), where a second exception would replace the failure being reported.
 */
export class MyelinError extends Error {
  declare readonly code: ErrorCode;
  /** Set only when the constructor was given a code that is not in ErrorCodes. */
  declare readonly unknownCode?: string;

  constructor(code: ErrorCode, message: string, options: MyelinErrorOptions = {}) {
    const known = isErrorCode(code);
    const { cause, ...fields } = options ?? {};
    super(known ? message : `${message} [unknown MyelinError code ${String(code)}]`, cause === undefined ? undefined : { cause });
    this.name = 'MyelinError';
    Object.defineProperty(this, 'code', { value: known ? code : 'ERR_INTERNAL', enumerable: true, writable: false, configurable: false });
    if (!known) {
      Object.defineProperty(this, 'unknownCode', { value: String(code), enumerable: true, writable: false, configurable: false });
      warnUnknownCode(String(code));
    }
    for (const key of Object.keys(fields)) {
      if (RESERVED_FIELDS.has(key)) continue;
      // Defined, not assigned: an own data property, whatever setters the prototype has.
      Object.defineProperty(this, key, { value: fields[key], enumerable: true, writable: true, configurable: true });
    }
  }
}

function warnUnknownCode(code: string): void {
  if (warnedCodes.has(code)) return;
  warnedCodes.add(code);
  process.emitWarning(`MyelinError constructed with unknown code ${JSON.stringify(code)}; thrown as ERR_INTERNAL`, {
    code: 'MYELIN_UNKNOWN_ERROR_CODE',
  });
}

/** Shorthand for the most common error: a bad argument, naming it and what was expected. */
export function invalidArgument(what: string, cause?: unknown): MyelinError {
  return new MyelinError('ERR_INVALID_ARGUMENT', what, cause === undefined ? {} : { cause });
}
