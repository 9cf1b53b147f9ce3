// A JSON-bytes event: published as UTF-8 JSON bytes with
// `{ contentType: 'application/json' }` and carried undecoded through lanes, worker
// rings and (later) transports. The JSON is parsed once, on the first read of
// `ev.data`, by whichever thread reads it; `ev.bytes` is the raw bytes. So an event
// that arrives from the network and goes to a worker is never parsed on the main thread.
//
// Invalid JSON (or invalid UTF-8) is found no later than that first read, which then
// throws ERR_INVALID_ARGUMENT; thrown inside a handler, it fails that delivery and the
// event is dead-lettered like any other failure. The bytes are the caller's: the bus
// does not copy them in-process, so a publisher must not reuse the buffer while the
// event is queued (the same rule as any other payload object).
import { MyelinError } from '../errors.js';
import type { BusEvent, Priority } from './types.js';

export const JSON_CONTENT_TYPE = 'application/json';

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Parses UTF-8 JSON bytes; throws ERR_INVALID_ARGUMENT naming the event on bad bytes. */
export function parseJsonBytes(bytes: Uint8Array, what: string): unknown {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch (cause) {
    throw new MyelinError('ERR_INVALID_ARGUMENT', `${what}: the JSON bytes are not valid UTF-8`, { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new MyelinError('ERR_INVALID_ARGUMENT', `${what}: invalid JSON: ${(cause as Error).message}`, { cause });
  }
}

/** True for 'application/json', with or without parameters ('; charset=utf-8'). */
export function isJsonContentType(ct: string): boolean {
  return ct === JSON_CONTENT_TYPE || (ct.startsWith(JSON_CONTENT_TYPE) && /^application\/json\s*;/.test(ct));
}

const UNPARSED = Symbol('unparsed');

export class JsonBusEvent implements BusEvent {
  readonly subject: string;
  readonly key: string | undefined;
  readonly priority: Priority;
  readonly headers: Record<string, string> | undefined;
  readonly id: number;
  readonly time: number;
  /** The UTF-8 JSON bytes as published. */
  readonly bytes: Uint8Array;
  readonly contentType = JSON_CONTENT_TYPE;
  #data: unknown = UNPARSED;
  #error: MyelinError | undefined;

  constructor(subject: string, bytes: Uint8Array, key: string | undefined, priority: Priority, headers: Record<string, string> | undefined, id: number, time: number) {
    this.subject = subject;
    this.bytes = bytes;
    this.key = key;
    this.priority = priority;
    this.headers = headers;
    this.id = id;
    this.time = time;
  }

  /** The parsed JSON, parsed on first read; throws ERR_INVALID_ARGUMENT (every time) for bad bytes. */
  get data(): unknown {
    if (this.#data === UNPARSED) {
      if (this.#error) throw this.#error;
      try {
        this.#data = parseJsonBytes(this.bytes, `event ${this.id} on '${this.subject}'`);
      } catch (err) {
        this.#error = err as MyelinError;
        throw err;
      }
    }
    return this.#data;
  }

  /** `data` is a getter on the prototype: spell the event out for JSON.stringify. */
  toJSON(): Record<string, unknown> {
    return { subject: this.subject, data: this.data, key: this.key, priority: this.priority, headers: this.headers, id: this.id, time: this.time };
  }
}
