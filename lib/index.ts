// The public API of myelin and nothing else (shared/API.md).
export { MyelinError, ErrorCodes, type ErrorCode, type MyelinErrorOptions } from './errors.js';
