// Shared plumbing of the gateway's real-client tests: a gateway per test on an
// ephemeral port, a `ws` client that queues what it receives, a raw TCP client that
// writes hand-made bytes and reads the server's frames, and the "still alive" check
// every bad input is followed by. Not a test file itself (vitest includes *.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import WebSocket from 'ws';
import { Gateway, type GatewayOptions } from '../../lib/gateway/gateway.js';
import { native } from '../../lib/internal/native.js';

export const BACKENDS = ['epoll', 'io_uring'] as const;
export type Io = (typeof BACKENDS)[number];

/** epoll always; io_uring where this kernel allows it (the suite says when it skips). */
export function usable(io: Io): boolean {
  return io === 'epoll' || native().ioUringUsable();
}

/** How long a wait for something the server must send may take before the test fails. */
export const WAIT_MS = 5000;

type Closer = () => unknown;

/** What a test opened; `closeAll()` in afterEach closes it, newest first. */
export class Resources {
  #list: Closer[] = [];
  add(fn: Closer): void {
    this.#list.push(fn);
  }
  async closeAll(): Promise<void> {
    for (const fn of this.#list.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        // a resource the test already closed
      }
    }
  }
}

export interface Started {
  gw: Gateway;
  port: number;
  http: string;
  ws: string;
}

export async function startGateway(res: Resources, io: Io, opts: GatewayOptions = {}): Promise<Started> {
  const gw = new Gateway({ port: 0, ioThreads: 1, io, ...opts });
  const { port } = await gw.listen();
  res.add(() => gw.close());
  return { gw, port, http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/ws` };
}

/** Resolves after `ms` or when `cond()` turns true, polled on a timer; rejects after WAIT_MS. */
export async function until(cond: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// ------------------------------------------------------------------ ws client

export interface Msg {
  op: string;
  [k: string]: unknown;
}

/** A `ws` client whose messages are parsed and queued; next() takes the first match. */
export class Client {
  readonly ws: WebSocket;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly received: Msg[] = [];
  #queue: Msg[] = [];
  #waiters: Array<{ pred: (m: Msg) => boolean; resolve: (m: Msg) => void }> = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data, isBinary) => {
      const m = (isBinary ? { op: '<binary>' } : JSON.parse(String(data))) as Msg;
      this.received.push(m);
      const i = this.#waiters.findIndex((w) => w.pred(m));
      if (i >= 0) {
        const [w] = this.#waiters.splice(i, 1);
        w.resolve(m);
      } else {
        this.#queue.push(m);
      }
    });
    ws.on('error', () => {});
  }

  static open(url: string, opts?: WebSocket.ClientOptions, res?: Resources): Promise<Client> {
    const ws = new WebSocket(url, opts);
    const c = new Client(ws);
    res?.add(() => ws.terminate());
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(c));
      ws.once('unexpected-response', (_req, r) => reject(Object.assign(new Error(`upgrade refused: ${r.statusCode}`), { status: r.statusCode })));
      ws.once('error', reject);
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The first queued or future message matching pred (taken off the queue). */
  next(pred: (m: Msg) => boolean = () => true, ms = WAIT_MS): Promise<Msg> {
    const i = this.#queue.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.#queue.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (m: Msg) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(new Error(`no matching message within ${ms} ms; got ${JSON.stringify(this.received.slice(-5))}`));
      }, ms);
      this.#waiters.push(w);
    });
  }

  /** Sends `{op:'ping'}` and waits for the pong: everything sent before it was handled. */
  async roundTrip(): Promise<void> {
    this.send({ op: 'ping' });
    await this.next((m) => m.op === 'pong');
  }

  /** Messages still queued (not taken by next()). */
  get pending(): Msg[] {
    return this.#queue;
  }

  close(): void {
    this.ws.close();
  }
}

// ------------------------------------------------------------------ raw TCP client

export interface ServerFrame {
  opcode: number;
  fin: boolean;
  payload: Buffer;
}

/** A raw socket: bytes in as written, bytes out collected. */
export class Raw {
  readonly sock: net.Socket;
  buf = Buffer.alloc(0);
  readonly ended: Promise<void>;
  #wake: (() => void) | undefined;

  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.setNoDelay(true);
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.#wake?.();
    });
    sock.on('error', () => {});
    this.ended = new Promise((resolve) => sock.once('close', () => resolve()));
    void this.ended.then(() => this.#wake?.());
  }

  static connect(port: number, res?: Resources): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      res?.add(() => s.destroy());
      s.once('connect', () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.sock.destroyed || this.sock.readableEnded;
  }

  write(b: Buffer | string): void {
    this.sock.write(b);
  }

  /** Waits until pred(buf) holds, or the socket closes (then pred is checked once more). */
  async waitFor(pred: (b: Buffer) => boolean, what: string, ms = WAIT_MS): Promise<void> {
    const deadline = Date.now() + ms;
    let closed = false;
    void this.ended.then(() => (closed = true));
    while (!pred(this.buf)) {
      if (closed) throw new Error(`socket closed while waiting for ${what}; got ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** One whole HTTP response (Content-Length or no body), taken off the buffer. */
  async response(ms = WAIT_MS): Promise<{ status: number; head: string; headers: Record<string, string>; body: string }> {
    let parsed: ReturnType<typeof parseResponse>;
    await this.waitFor((b) => (parsed = parseResponse(b)) !== undefined, 'an HTTP response', ms);
    const r = parsed!;
    this.buf = this.buf.subarray(r.bytes);
    return r;
  }

  /** Sends an upgrade to /ws and waits for the 101. */
  async handshake(extra = '', path = '/ws'): Promise<void> {
    this.write(upgradeRequest(extra, path));
    const r = await this.response();
    if (r.status !== 101) throw new Error(`expected 101, got ${r.status}: ${r.body}`);
  }

  /** The next complete server frame, taken off the buffer. */
  async frame(ms = WAIT_MS): Promise<ServerFrame> {
    let f: (ServerFrame & { bytes: number }) | undefined;
    await this.waitFor((b) => (f = parseServerFrame(b)) !== undefined, 'a WebSocket frame', ms);
    this.buf = this.buf.subarray(f!.bytes);
    return f!;
  }

  /** Skips frames until a close frame; returns its code (undefined for an empty close). */
  async closeCode(ms = WAIT_MS): Promise<number | undefined> {
    for (;;) {
      const f = await this.frame(ms);
      if (f.opcode === 0x8) return f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined;
    }
  }

  /** The next text frame parsed as JSON (skipping control frames). */
  async json(ms = WAIT_MS): Promise<Msg> {
    for (;;) {
      const f = await this.frame(ms);
      if (f.opcode === 0x1) return JSON.parse(f.payload.toString('utf8')) as Msg;
      if (f.opcode === 0x8) throw new Error(`closed with ${f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 'no code'}`);
    }
  }

  destroy(): void {
    this.sock.destroy();
  }
}

export function upgradeRequest(extra = '', path = '/ws', key = randomBytes(16).toString('base64')): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`
  );
}

function parseResponse(b: Buffer): { status: number; head: string; headers: Record<string, string>; body: string; bytes: number } | undefined {
  const end = b.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const head = b.subarray(0, end).toString('latin1');
  const lines = head.split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0])?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
  }
  const len = headers['content-length'] === undefined ? 0 : Number(headers['content-length']);
  if (b.length < end + 4 + len) return undefined;
  return { status, head, headers, body: b.subarray(end + 4, end + 4 + len).toString('utf8'), bytes: end + 4 + len };
}

function parseServerFrame(b: Buffer): (ServerFrame & { bytes: number }) | undefined {
  if (b.length < 2) return undefined;
  let len = b[1] & 0x7f;
  let at = 2;
  if (len === 126) {
    if (b.length < 4) return undefined;
    len = b.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (b.length < 10) return undefined;
    len = Number(b.readBigUInt64BE(2));
    at = 10;
  }
  if (b[1] & 0x80) throw new Error('the server sent a masked frame');
  if (b.length < at + len) return undefined;
  return { opcode: b[0] & 0x0f, fin: (b[0] & 0x80) !== 0, payload: Buffer.from(b.subarray(at, at + len)), bytes: at + len };
}

export interface FrameOptions {
  fin?: boolean;
  /** RSV1..3 bits as 0..7. */
  rsv?: number;
  mask?: boolean;
  /** Announce this length in the 64-bit form instead of the payload's length. */
  len64?: bigint;
}

/** A client frame, masked unless told otherwise. */
export function frame(opcode: number, payload: Buffer | string = Buffer.alloc(0), o: FrameOptions = {}): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const fin = o.fin ?? true;
  const mask = o.mask ?? true;
  const head: number[] = [(fin ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode];
  const m = mask ? 0x80 : 0;
  let ext = Buffer.alloc(0);
  if (o.len64 !== undefined) {
    head.push(m | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(o.len64);
  } else if (p.length < 126) {
    head.push(m | p.length);
  } else if (p.length < 65536) {
    head.push(m | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(p.length);
  } else {
    head.push(m | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(BigInt(p.length));
  }
  if (!mask) return Buffer.concat([Buffer.from(head), ext, p]);
  const key = randomBytes(4);
  const body = Buffer.from(p);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([Buffer.from(head), ext, key, body]);
}

export const text = (s: string | Buffer, o?: FrameOptions) => frame(0x1, s, o);

export function closeFrame(code: number, reason: Buffer | string = ''): Buffer {
  const r = typeof reason === 'string' ? Buffer.from(reason) : reason;
  const p = Buffer.alloc(2 + r.length);
  p.writeUInt16BE(code);
  r.copy(p, 2);
  return frame(0x8, p);
}

/** The process is up and an unrelated new connection works: HTTP and a WebSocket round trip. */
export async function expectAlive(port: number, token?: string): Promise<void> {
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  expect(r.status).toBe(200);
  expect(await r.json()).toEqual({ status: 'ok' });
  const c = await Client.open(`ws://127.0.0.1:${port}/ws${token ? `?token=${token}` : ''}`);
  try {
    await c.roundTrip();
  } finally {
    c.ws.terminate();
  }
}

/**
 * Debian's chromium under playwright-core with a fresh --user-data-dir (a persistent
 * context is how playwright takes one), with the flags this machine's closed network
 * needs. close() also removes the profile.
 */
export async function launchChromium(executablePath: string, viewport?: { width: number; height: number }): Promise<{ browser: BrowserContext; close(): Promise<void> }> {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'myelin-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    ...(viewport ? { viewport } : {}),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    browser,
    async close() {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
