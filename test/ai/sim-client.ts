// Raw HTTP helpers for the simulator tests: undici for whole answers, node:http where
// the test needs to see chunk boundaries as they arrive.
import http from 'node:http';
import { request } from 'undici';
import { NdjsonParser } from '../../lib/ai/stream/ndjson-parser.js';
import { SseParser, type SseEvent } from '../../lib/ai/stream/sse-parser.js';

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  chunks: Buffer[];
  body: Buffer;
  text: string;
}

export interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** Sent as is (not JSON-encoded). */
  rawBody?: string | Buffer;
  signal?: AbortSignal;
}

function flatHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

export async function call(base: string, path: string, o: CallOptions = {}): Promise<RawAnswer> {
  const method = o.method ?? (o.body !== undefined || o.rawBody !== undefined ? 'POST' : 'GET');
  const body = o.rawBody ?? (o.body !== undefined ? JSON.stringify(o.body) : undefined);
  const res = await request(base + path, {
    method: method as 'GET',
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers },
    body,
    signal: o.signal,
  });
  const chunks: Buffer[] = [];
  for await (const c of res.body) chunks.push(c as Buffer);
  const all = Buffer.concat(chunks);
  return { status: res.statusCode, headers: flatHeaders(res.headers), chunks, body: all, text: all.toString('utf8') };
}

export async function json<T = any>(base: string, path: string, o: CallOptions = {}): Promise<{ status: number; headers: Record<string, string>; body: T }> {
  const r = await call(base, path, o);
  return { status: r.status, headers: r.headers, body: JSON.parse(r.text) as T };
}

/** Parses SSE the way a client would, also reporting whether the stream ended mid-event. */
export function sse(chunks: Buffer[]): { events: SseEvent[]; pending: boolean; comments: number } {
  const p = new SseParser();
  const events: SseEvent[] = [];
  for (const c of chunks) events.push(...p.feed(c));
  const comments = p.comments;
  return { events, pending: p.end(), comments };
}

export function ndjson<T = any>(chunks: Buffer[]): T[] {
  const p = new NdjsonParser<T>();
  const out: T[] = [];
  for (const c of chunks) out.push(...p.feed(c));
  out.push(...p.end());
  return out;
}

/** node:http request that keeps each body chunk as it arrived (one per HTTP chunk). */
export function httpChunks(
  base: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; chunks: Buffer[]; error?: Error }> {
  const url = new URL(base + path);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json', ...headers }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, chunks }));
        res.on('error', (error) => resolve({ status: res.statusCode ?? 0, chunks, error }));
        res.on('aborted', () => resolve({ status: res.statusCode ?? 0, chunks, error: new Error('aborted') }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** True when `b` ends inside a multi-byte UTF-8 sequence. */
export function endsMidCharacter(b: Buffer): boolean {
  for (let back = 1; back <= Math.min(4, b.length); back++) {
    const byte = b[b.length - back];
    if ((byte & 0xc0) === 0x80) continue; // continuation byte: look further back
    if (byte < 0x80) return false;
    const need = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
    return back < need;
  }
  return false;
}

/** Starts a request and returns once the status line arrived, with a reader for what follows. */
export async function open(base: string, path: string, o: CallOptions = {}) {
  const body = o.body !== undefined ? JSON.stringify(o.body) : undefined;
  const ac = new AbortController();
  const res = await request(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...o.headers },
    body,
    signal: ac.signal,
  });
  const chunks: Buffer[] = [];
  let ended = false;
  let error: Error | undefined;
  const done = (async () => {
    try {
      for await (const c of res.body) chunks.push(c as Buffer);
      ended = true;
    } catch (err) {
      error = err as Error;
    }
  })();
  return {
    status: res.statusCode,
    headers: flatHeaders(res.headers),
    chunks,
    done,
    get ended() {
      return ended;
    },
    get error() {
      return error;
    },
    abort: () => ac.abort(),
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
