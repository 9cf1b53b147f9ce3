// One HTTP request and its response on the JS side. The I/O thread has read the whole
// request (de-chunked) and waits for the response; the response's bytes go back as
// egress records, the last one flagged END so the connection can take its next
// pipelined request. A small response is one record: head and body together.
import type { ByteRing } from '../bus/byte-ring.js';
import type { GatewayRequest, ResponseWriter } from './http-types.js';
import type { InRecord, IoChannel } from './io-channel.js';
import { InFlag, Out, OutFlag, threadOf } from './records.js';

const REASONS: Record<number, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 301: 'Moved Permanently', 302: 'Found',
  304: 'Not Modified', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 408: 'Request Timeout', 409: 'Conflict', 413: 'Payload Too Large',
  415: 'Unsupported Media Type', 422: 'Unprocessable Entity', 429: 'Too Many Requests',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** Header names a handler may not set: the gateway owns the message framing. */
const FRAMING = new Set(['transfer-encoding', 'connection', 'keep-alive', 'upgrade']);

export class HttpExchange implements GatewayRequest, ResponseWriter {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  readonly signal: AbortSignal;
  readonly token: string | undefined;
  readonly conn: number;
  /** performance.now() when the request reached JS. */
  readonly started = performance.now();
  readonly gen: number;
  readonly #io: IoChannel;
  readonly #abort = new AbortController();
  readonly #onDone: (ex: HttpExchange) => void;
  #head: string | undefined;
  #chunked = false;
  #headOnly = false;
  #closeAfter = false;
  #finished = false;
  #gone = false;
  status = 0;

  constructor(init: ExchangeInit, io: IoChannel, onDone: (ex: HttpExchange) => void) {
    this.conn = init.conn;
    this.gen = init.gen;
    this.#io = io;
    this.#onDone = onDone;
    this.method = init.method;
    const q = init.target.indexOf('?');
    this.path = q < 0 ? init.target : init.target.slice(0, q);
    this.query = new URLSearchParams(q < 0 ? '' : init.target.slice(q + 1));
    this.query.delete('token'); // a browser's WebSocket credential: never handed on
    this.headers = parseHeaders(init.headerBlock);
    this.body = init.body;
    this.token = init.token;
    this.signal = this.#abort.signal;
    this.#headOnly = this.method === 'HEAD';
    // The client asked to close: the I/O thread closes after this response, and the
    // response says so (RFC 9112 9.6).
    if (/(?:^|,)\s*close\s*(?:,|$)/i.test(this.headers['connection'] ?? '')) this.#closeAfter = true;
  }

  /** An exchange for an HTTP request record (copies what it keeps out of the ring). */
  static fromRecord(ring: ByteRing, rec: InRecord, io: IoChannel, tokens: readonly string[], onDone: (ex: HttpExchange) => void): HttpExchange {
    const buf = ring.buf;
    const body = Buffer.allocUnsafe(rec.dataLen);
    buf.copy(body, 0, rec.dataAt, rec.dataAt + rec.dataLen);
    return new HttpExchange(
      {
        conn: rec.conn,
        gen: rec.gen,
        method: buf.toString('latin1', rec.subjectAt, rec.subjectAt + rec.subjectLen),
        target: buf.toString('utf8', rec.idAt, rec.idAt + rec.idLen),
        headerBlock: buf.toString('latin1', rec.keyAt, rec.keyAt + rec.keyLen),
        body,
        token: tokenOf(rec, tokens),
      },
      io,
      onDone,
    );
  }

  get headersSent(): boolean {
    return this.#head !== undefined;
  }

  get finished(): boolean {
    return this.#finished || this.#gone;
  }

  /** The client went away before the response ended. */
  gone(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#abort.abort();
    if (!this.#finished) {
      this.#finished = true;
      this.#onDone(this);
    }
  }

  head(status: number, headers: Record<string, string | number> = {}): void {
    if (this.#head !== undefined || this.#finished) return;
    if (!Number.isInteger(status) || status < 100 || status > 999) status = 500;
    this.status = status;
    let h = `HTTP/1.1 ${status} ${REASONS[status] ?? 'Status'}\r\n`;
    let hasLength = false;
    for (const name of Object.keys(headers)) {
      const lower = name.toLowerCase();
      const value = String(headers[name]);
      if (FRAMING.has(lower)) {
        if (lower === 'connection' && /\bclose\b/i.test(value)) this.#closeAfter = true;
        continue;
      }
      // Header injection: a CR or LF in a name or value would start a new header.
      if (/[\r\n]/.test(name) || /[\r\n]/.test(value) || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) continue;
      if (lower === 'content-length') hasLength = true;
      h += `${name}: ${value}\r\n`;
    }
    const bodyless = status === 204 || status === 304 || status < 200;
    if (!hasLength && !bodyless && !this.#headOnly) {
      this.#chunked = true;
      h += 'transfer-encoding: chunked\r\n';
    }
    if (this.#closeAfter) h += 'connection: close\r\n';
    this.#head = `${h}\r\n`;
  }

  write(chunk: string | Uint8Array): boolean {
    if (this.finished) return false;
    if (this.#head === undefined) this.head(200);
    const body = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (body.length === 0 && this.#head === '') return true;
    this.#send(body, false);
    return !this.#gone;
  }

  end(chunk?: string | Uint8Array): void {
    if (this.finished) return;
    if (this.#head === undefined) {
      const body = chunk === undefined ? undefined : typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      // A whole response in one go: send a Content-Length, not chunks.
      this.head(200, body ? { 'content-length': body.length } : { 'content-length': 0 });
      this.#send(body ?? EMPTY, true);
    } else {
      const body = chunk === undefined ? EMPTY : typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      this.#send(body, true);
    }
    this.#finished = true;
    this.#onDone(this);
  }

  /** Sends a complete response with a body (JSON for objects). */
  send(status: number, body: unknown, headers: Record<string, string | number> = {}): void {
    let bytes: Uint8Array;
    const h: Record<string, string | number> = { ...headers };
    const has = (n: string) => Object.keys(h).some((k) => k.toLowerCase() === n);
    if (body === undefined || body === null) {
      bytes = EMPTY;
    } else if (typeof body === 'string') {
      bytes = Buffer.from(body);
      if (!has('content-type')) h['content-type'] = 'text/plain; charset=utf-8';
    } else if (body instanceof Uint8Array) {
      bytes = body;
      if (!has('content-type')) h['content-type'] = 'application/octet-stream';
    } else {
      bytes = Buffer.from(JSON.stringify(body));
      if (!has('content-type')) h['content-type'] = 'application/json';
    }
    h['content-length'] = bytes.length;
    this.head(status, h);
    this.#send(bytes, true);
    this.#finished = true;
    this.#onDone(this);
  }

  #send(body: Uint8Array, last: boolean): void {
    if (this.#gone) return;
    const head = this.#head ?? '';
    this.#head = this.#head === undefined ? undefined : '';
    const io = this.#io;
    const t = threadOf(this.conn);
    const headLen = Buffer.byteLength(head);
    const payload = this.#headOnly ? EMPTY : body;
    let pre = '';
    let post = '';
    if (this.#chunked && !this.#headOnly) {
      if (payload.length > 0) {
        pre = `${payload.length.toString(16)}\r\n`;
        post = '\r\n';
      }
      if (last) post += '0\r\n\r\n';
    }
    const total = headLen + pre.length + payload.length + post.length;
    const max = io.maxPayload(t);
    const flags = last ? OutFlag.END | (this.#closeAfter ? OutFlag.CLOSE_AFTER : 0) : 0;
    if (total <= max) {
      io.write(t, Out.HTTP, flags, 0, this.conn, this.gen, total, (buf, at) => {
        let p = at;
        if (headLen) p += buf.write(head, p, 'latin1');
        if (pre) p += buf.write(pre, p, 'latin1');
        buf.set(payload, p);
        p += payload.length;
        if (post) buf.write(post, p, 'latin1');
      });
      return;
    }
    // Larger than one record: the same bytes in pieces; only the last one ends it.
    const all = Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(pre, 'latin1'), payload, Buffer.from(post, 'latin1')]);
    for (let off = 0; off < all.length; off += max) {
      const piece = all.subarray(off, Math.min(all.length, off + max));
      const end = off + max >= all.length;
      io.write(t, Out.HTTP, end ? flags : 0, 0, this.conn, this.gen, piece.length, (buf, at) => buf.set(piece, at));
    }
  }
}

const EMPTY = new Uint8Array(0);

export interface ExchangeInit {
  conn: number;
  gen: number;
  method: string;
  target: string;
  headerBlock: string;
  body: Buffer;
  token: string | undefined;
}

/** The auth token a record was authenticated with (its index rides in the flags). */
export function tokenOf(rec: InRecord, tokens: readonly string[]): string | undefined {
  const i = (rec.flags >>> InFlag.TOKEN_SHIFT) & 0xff;
  return i > 0 ? tokens[i - 1] : undefined;
}

function parseHeaders(block: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  let start = 0;
  while (start < block.length) {
    let end = block.indexOf('\n', start);
    if (end < 0) end = block.length;
    let line = block.slice(start, end);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    start = end + 1;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).toLowerCase();
    if (name === 'authorization') continue; // checked natively; never handed on
    const value = line.slice(colon + 1).trim();
    out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
  }
  return out;
}
