// Validation of the bus's option objects, shared by the main thread (lib/bus/bus.ts)
// and worker threads (lib/bus/worker-main.ts), so a bad option is answered the same
// way wherever it is given: ERR_INVALID_ARGUMENT naming the option.
//
// Unknown option names are rejected, not ignored: a typo such as `priorty` must not
// pass silently. `null` where options are expected is a wrong type, like any other.
import { invalidArgument } from '../errors.js';
import { native } from '../internal/native.js';
import { isJsonContentType } from './json-event.js';
import type { Priority, PublishOptions } from './types.js';

export const PRIORITIES: readonly Priority[] = ['critical', 'high', 'normal', 'low'];
export const LANE: Readonly<Record<string, number>> = { critical: 0, high: 1, normal: 2, low: 3 };

/** What a publish's options resolve to: its lane, key, headers, and whether its data is JSON bytes. */
export interface ParsedPublish {
  lane: number;
  key: string | undefined;
  headers: Record<string, string> | undefined;
  json: boolean;
}

export const DEFAULT_PUBLISH: ParsedPublish = { lane: 2, key: undefined, headers: undefined, json: false };

export const PUBLISH_KEYS: ReadonlySet<string> = new Set(['key', 'priority', 'headers', 'contentType']);
export const BATCH_KEYS: ReadonlySet<string> = new Set(['subject', 'data', 'key', 'priority', 'headers', 'contentType']);
export const REQUEST_KEYS: ReadonlySet<string> = new Set(['key', 'priority', 'headers', 'contentType', 'timeoutMs', 'signal']);
export const BUS_KEYS: ReadonlySet<string> = new Set(['capacity', 'overflow', 'transport', 'metrics']);
export const SUBSCRIBE_KEYS: ReadonlySet<string> = new Set(['queue', 'concurrency', 'signal']);
export const WORKERS_KEYS: ReadonlySet<string> = new Set(['threads', 'subjects', 'queue', 'pin', 'ringBytes']);

/** `typeof`, with null and arrays told apart, for error messages. */
export function describeType(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/** Throws ERR_INVALID_ARGUMENT unless `subject` is a valid publish subject (or, with `pattern`, subscription pattern). */
export function checkSubject(subject: unknown, pattern: boolean, where: string): asserts subject is string {
  if (typeof subject !== 'string') throw invalidArgument(`${where}: subject must be a string, got ${describeType(subject)}`);
  try {
    native().validateSubject(subject, pattern);
  } catch (err) {
    throw invalidArgument(`${where}: invalid subject${pattern ? ' pattern' : ''} '${subject}'`, err);
  }
}

/** Throws ERR_INVALID_ARGUMENT for options that are not a plain object or that name an unknown option. */
export function checkOptions(opts: unknown, where: string, known: ReadonlySet<string>): void {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
    throw invalidArgument(`${where}: options must be an object, got ${describeType(opts)}`);
  }
  for (const k in opts as object) {
    if (!known.has(k)) throw invalidArgument(`${where}: unknown option '${k}' (known: ${[...known].join(', ')})`);
  }
}

/** Validates a publish's options (or a batch item, with BATCH_KEYS) and resolves its lane. */
export function parsePublishOptions(opts: PublishOptions, where: string, known: ReadonlySet<string>): ParsedPublish {
  checkOptions(opts, where, known);
  let lane = 2;
  const { priority, key, headers, contentType } = opts;
  if (priority !== undefined) {
    lane = typeof priority === 'string' && Object.hasOwn(LANE, priority) ? LANE[priority] : -1;
    if (lane < 0) throw invalidArgument(`${where}: priority must be one of ${PRIORITIES.join(', ')}, got ${String(priority)}`);
  }
  if (key !== undefined && typeof key !== 'string') throw invalidArgument(`${where}: key must be a string, got ${describeType(key)}`);
  if (headers !== undefined) {
    if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
      throw invalidArgument(`${where}: headers must be an object of strings, got ${describeType(headers)}`);
    }
    for (const h in headers) {
      const v = (headers as Record<string, unknown>)[h];
      if (typeof v !== 'string') throw invalidArgument(`${where}: headers['${h}'] must be a string, got ${describeType(v)}`);
    }
  }
  let json = false;
  if (contentType !== undefined) {
    if (typeof contentType !== 'string' || !isJsonContentType(contentType)) {
      throw invalidArgument(`${where}: contentType must be 'application/json' (UTF-8 JSON bytes), got ${typeof contentType === 'string' ? `'${contentType}'` : describeType(contentType)}`);
    }
    json = true;
  }
  return { lane, key, headers, json };
}

/** With contentType 'application/json' the data must be the JSON's UTF-8 bytes. */
export function checkJsonData(data: unknown, where: string): void {
  if (!(data instanceof Uint8Array)) {
    throw invalidArgument(`${where}: with contentType 'application/json' the data must be a Uint8Array or Buffer of UTF-8 JSON, got ${describeType(data)}`);
  }
}
