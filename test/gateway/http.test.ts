// The gateway's HTTP side with real clients (fetch/undici, curl, raw sockets) on both
// I/O backends: POST /v1/events (one object, NDJSON, a bad line), bearer auth and
// where the token may never appear, user routes (returned values, streaming, HEAD,
// failures), 404s, keep-alive, pipelining, chunked bodies and Expect: 100-continue.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, test } from 'vitest';
import type { BusEvent } from '../../lib/bus/types.js';
import { BACKENDS, Client, type Io, Raw, Resources, startGateway, until, upgradeRequest, usable } from './gateway-helpers.js';

const run = promisify(execFile);
const res = new Resources();
afterEach(() => res.closeAll());

const TOKEN = 'tok-Secret-0123456789';

async function curl(args: string[]): Promise<{ status: number; body: string; stderr: string }> {
  // -w appends the status on its own line; -sS: no progress, errors shown.
  const { stdout, stderr } = await run('curl', ['-sS', '-w', '\n%{http_code}', ...args], { timeout: 10_000 });
  const i = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i), stderr };
}

describe.each(BACKENDS)('HTTP over %s', (io: Io) => {
  if (!usable(io)) {
    test.skip('io_uring is not usable on this kernel', () => {});
    return;
  }

  test('POST /v1/events: one object and NDJSON are 202 {accepted:n}, in order', async () => {
    const { gw, http } = await startGateway(res, io);
    const got: BusEvent[] = [];
    gw.bus.subscribe('ev.>', (ev) => {
      got.push(ev);
    });
    const one = await fetch(`${http}/v1/events`, { method: 'POST', body: JSON.stringify({ subject: 'ev.one', data: { a: 1 }, key: 'k1', priority: 'critical' }) });
    expect(one.status).toBe(202);
    expect(await one.json()).toEqual({ accepted: 1 });
    const lines = Array.from({ length: 50 }, (_, i) => JSON.stringify({ subject: `ev.n${i % 3}`, data: i, key: 'same' }));
    // Blank lines and CRLF endings are tolerated.
    const nd = await fetch(`${http}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: `${lines.join('\r\n')}\n\n` });
    expect(nd.status).toBe(202);
    expect(await nd.json()).toEqual({ accepted: 50 });
    await until(() => got.length === 51, '51 events');
    expect(got[0]).toMatchObject({ subject: 'ev.one', data: { a: 1 }, key: 'k1', priority: 'critical' });
    expect(got.slice(1).map((e) => e.data)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(gw.stats().eventsIn).toBe(51);
  });

  test('a bad NDJSON line is a 400 naming the line, and nothing is published', async () => {
    const { gw, http } = await startGateway(res, io);
    const got: unknown[] = [];
    gw.bus.subscribe('>', (ev) => {
      got.push(ev.data);
    });
    const bodies: Array<[string, RegExp]> = [
      [`{"subject":"a","data":1}\n{"subject":"a","data":2\n{"subject":"a","data":3}`, /line 2/],
      [`{"subject":"a","data":1}\n{"subject":"a..b","data":2}`, /line 2: invalid subject/],
      [`{"subject":"a","data":1}\n\n{"data":3}`, /line 3: .*subject/],
      [`{"subject":"a","data":1}\n{"subject":"a","priority":"urgent"}`, /line 2: .*priority/],
      [`{"subject":"a","data":{"x":[1,}}`, /./],
      ['', /empty/],
    ];
    for (const [body, msg] of bodies) {
      const r = await fetch(`${http}/v1/events`, { method: 'POST', body });
      expect(r.status, body).toBe(400);
      const j = (await r.json()) as { error: { message: string; code: string } };
      expect(j.error.message).toMatch(msg);
      expect(j.error.code).toBe('ERR_INVALID_ARGUMENT');
    }
    // A good request after them: once it is in, nothing of the bad ones came before it.
    const ok = await fetch(`${http}/v1/events`, { method: 'POST', body: '{"subject":"ok","data":"last"}' });
    expect(ok.status).toBe(202);
    await until(() => got.length === 1, 'the good event');
    await gw.bus.drain();
    expect(got).toEqual(['last']);
    expect(gw.stats().eventsIn).toBe(1);
  });

  test('auth: 401 without a bearer token; ws by ?token= and by header; /healthz open', async () => {
    const { gw, http, ws, port } = await startGateway(res, io, { auth: { tokens: ['another-token-xyz', TOKEN] } });
    const seenTokens: Array<string | undefined> = [];
    gw.route('GET', '/who', (req) => {
      seenTokens.push(req.token);
      return { body: { query: Object.fromEntries(req.query), headers: req.headers } };
    });
    for (const [path, init] of [
      ['/who', {}],
      ['/stats', {}],
      ['/v1/events', { method: 'POST', body: '{"subject":"a"}' }],
      ['/who', { headers: { authorization: `Bearer ${TOKEN}x` } }],
      ['/who', { headers: { authorization: `Basic ${TOKEN}` } }],
      [`/who?token=${TOKEN}`, {}], // ?token= is for WebSockets only
    ] as Array<[string, RequestInit]>) {
      const r = await fetch(`${http}${path}`, init);
      expect(r.status, path).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
      const text = await r.text();
      expect(text).not.toContain(TOKEN);
      expect(JSON.parse(text).error.code).toBe('invalid_api_key');
    }
    expect((await fetch(`${http}/healthz`)).status).toBe(200);
    const ok = await fetch(`${http}/who?a=1&token=${TOKEN}`, { headers: { authorization: `bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    const body = await ok.text();
    expect(body).not.toContain(TOKEN);
    expect(JSON.parse(body).query).toEqual({ a: '1' });
    expect(seenTokens).toEqual([TOKEN]);

    await expect(Client.open(ws, undefined, res)).rejects.toMatchObject({ status: 401 });
    await expect(Client.open(`${ws}?token=wrong-token-123`, undefined, res)).rejects.toMatchObject({ status: 401 });
    const byQuery = await Client.open(`${ws}?token=${encodeURIComponent(TOKEN)}`, undefined, res);
    await byQuery.roundTrip();
    const byHeader = await Client.open(ws, { headers: { authorization: `Bearer ${TOKEN}` } }, res);
    await byHeader.roundTrip();
    // Raw: a keep-alive 401 leaves the connection usable for the next, authorized request.
    const raw = await Raw.connect(port, res);
    raw.write('GET /who HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await raw.response()).status).toBe(401);
    raw.write(`GET /who HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    expect((await raw.response()).status).toBe(200);

    const everything = [
      JSON.stringify(gw.stats()),
      await (await fetch(`${http}/stats`, { headers: { authorization: `Bearer ${TOKEN}` } })).text(),
      await (await fetch(`${http}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text(),
      await (await fetch(`${http}/nothing?token=${TOKEN}`, { headers: { authorization: `Bearer ${TOKEN}` } })).text(),
    ].join('\n');
    expect(everything).not.toContain(TOKEN);
    expect(everything).not.toContain('another-token-xyz');
    expect(gw.stats().authFailures).toBeGreaterThanOrEqual(9);
  });

  test('user routes: returned values, streaming writes, async, HEAD, throwing handlers', async () => {
    const { gw, http } = await startGateway(res, io);
    gw.route('GET', '/hello', () => ({ status: 200, body: 'hi' }));
    gw.route('GET', '/json', (req) => ({ status: 201, headers: { 'x-custom': 'yes' }, body: { q: req.query.get('q') } }));
    gw.route('POST', '/echo', (req) => ({ headers: { 'content-type': req.headers['content-type'] ?? 'none' }, body: req.body }));
    gw.route('GET', '/stream', async (_req, out) => {
      out.head(200, { 'content-type': 'text/plain' });
      for (let i = 0; i < 5; i++) {
        out.write(`part${i};`);
        await new Promise((r) => setImmediate(r));
      }
      out.end('done');
    });
    gw.route('GET', '/big', () => ({ body: 'x'.repeat(3 << 20) }));
    gw.route('GET', '/later', async () => {
      await new Promise((r) => setTimeout(r, 5));
      return { body: { later: true } };
    });
    gw.route('GET', '/throws', () => {
      throw new Error('secret internals');
    });
    gw.route('GET', '/rejects', () => Promise.reject(new Error('nope')));
    gw.route('GET', '/nothing', () => undefined);

    let r = await fetch(`${http}/hello`);
    expect([r.status, await r.text(), r.headers.get('content-type')]).toEqual([200, 'hi', 'text/plain; charset=utf-8']);
    r = await fetch(`${http}/json?q=%C3%A9`);
    expect(r.status).toBe(201);
    expect(r.headers.get('x-custom')).toBe('yes');
    expect(await r.json()).toEqual({ q: 'é' });
    r = await fetch(`${http}/echo`, { method: 'POST', headers: { 'content-type': 'application/x-thing' }, body: new Uint8Array([0, 1, 2, 255]) });
    expect(r.headers.get('content-type')).toBe('application/x-thing');
    expect([...new Uint8Array(await r.arrayBuffer())]).toEqual([0, 1, 2, 255]);
    r = await fetch(`${http}/stream`);
    expect(r.headers.get('transfer-encoding')).toBe('chunked');
    expect(await r.text()).toBe('part0;part1;part2;part3;part4;done');
    r = await fetch(`${http}/big`);
    expect((await r.text()).length).toBe(3 << 20);
    expect(await (await fetch(`${http}/later`)).json()).toEqual({ later: true });
    for (const p of ['/throws', '/rejects']) {
      r = await fetch(`${http}${p}`);
      expect(r.status).toBe(500);
      const t = await r.text();
      expect(t).not.toContain('secret internals');
      expect(JSON.parse(t).error.code).toBe('ERR_HANDLER_FAILED');
    }
    expect((await fetch(`${http}/nothing`)).status).toBe(204);

    // HEAD: the GET route's status and headers, no body.
    const head = await curl(['-I', `${http}/hello`]);
    expect(head.status).toBe(200);
    expect(head.body).toMatch(/content-length: 2/i);
    r = await fetch(`${http}/hello`, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('');
    expect(gw.stats().httpInFlight).toBe(0);
  });

  test('unknown paths are 404 JSON; route() refuses bad arguments', async () => {
    const { gw, http } = await startGateway(res, io);
    for (const [m, p] of [['GET', '/nope'], ['POST', '/healthz'], ['DELETE', '/v1/events'], ['GET', '/ws/extra']]) {
      const r = await fetch(`${http}${p}`, { method: m });
      expect(r.status, `${m} ${p}`).toBe(404);
      expect(r.headers.get('content-type')).toBe('application/json');
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('not_found');
    }
    expect(() => gw.route('get', '/x', () => undefined)).toThrow(/method/);
    expect(() => gw.route('GET', 'x', () => undefined)).toThrow(/path/);
    expect(() => gw.route('GET', '/ws', () => undefined)).toThrow(/served by the gateway/);
  });

  test('curl: GET, POST NDJSON with Expect: 100-continue, and 401', async () => {
    const { gw, http } = await startGateway(res, io, { auth: { tokens: [TOKEN] } });
    let n = 0;
    gw.bus.subscribe('c.>', () => {
      n++;
    });
    const h = await curl([`${http}/healthz`]);
    expect(h).toMatchObject({ status: 200, body: '{"status":"ok"}' });
    expect((await curl([`${http}/stats`])).status).toBe(401);
    // curl waits for the 100 before it sends the body.
    const body = Array.from({ length: 100 }, (_, i) => JSON.stringify({ subject: 'c.x', data: { i, pad: 'p'.repeat(20) } })).join('\n');
    const post = await curl(['-v', '-H', `Authorization: Bearer ${TOKEN}`, '-H', 'Expect: 100-continue', '--data-binary', body, `${http}/v1/events`]);
    expect(post.stderr).toMatch(/Expect: 100-continue/i);
    expect(post.stderr).toMatch(/HTTP\/1.1 100 Continue/);
    expect(post.status).toBe(202);
    expect(JSON.parse(post.body)).toEqual({ accepted: 100 });
    await until(() => n === 100, '100 events');
  });

  test('keep-alive and pipelining: two requests in one write get two responses in order', async () => {
    const { gw, port } = await startGateway(res, io);
    gw.route('GET', '/slow', async () => {
      await new Promise((r) => setTimeout(r, 20));
      return { body: 'slow' };
    });
    gw.route('GET', '/fast', () => ({ body: 'fast' }));
    const raw = await Raw.connect(port, res);
    raw.write('GET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await raw.response()).body).toBe('fast');
    raw.write('GET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await raw.response()).body).toBe('fast');
    raw.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\nPOST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\n\r\n{"subject":"p"}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const got = [await raw.response(), await raw.response(), await raw.response(), await raw.response()];
    expect(got.map((r) => r.status)).toEqual([200, 200, 202, 200]);
    expect(got.map((r) => r.body)).toEqual(['slow', 'fast', '{"accepted":1}', '{"status":"ok"}']);
    expect(raw.isClosed).toBe(false);
    // Connection: close is honoured after the response.
    raw.write('GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect((await raw.response()).body).toBe('fast');
    await raw.ended;
    // HTTP/1.0 without keep-alive closes too.
    const old = await Raw.connect(port, res);
    old.write('GET /fast HTTP/1.0\r\n\r\n');
    expect((await old.response()).body).toBe('fast');
    await old.ended;
  });

  test('chunked request bodies, to a route and to /v1/events', async () => {
    const { gw, port } = await startGateway(res, io);
    gw.route('POST', '/echo', (req) => ({ body: req.body.toString() }));
    const got: unknown[] = [];
    gw.bus.subscribe('ch', (ev) => {
      got.push(ev.data);
    });
    const raw = await Raw.connect(port, res);
    raw.write('POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    raw.write('1;ext=1\r\n \r\n');
    raw.write('A\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n');
    expect((await raw.response()).body).toBe('hello 0123456789');
    const nd = '{"subject":"ch","data":1}\n{"subject":"ch","data":2}\n';
    raw.write(`POST /v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${(10).toString(16)}\r\n${nd.slice(0, 10)}\r\n`);
    raw.write(`${(nd.length - 10).toString(16)}\r\n${nd.slice(10)}\r\n0\r\n\r\n`);
    const r = await raw.response();
    expect([r.status, r.body]).toEqual([202, '{"accepted":2}']);
    await until(() => got.length === 2, 'two events');
    expect(got).toEqual([1, 2]);
    // A broken chunk size is a 400 and the connection closes.
    raw.write('POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
    expect((await raw.response()).status).toBe(400);
    await raw.ended;
  });

  test('Expect: 100-continue: the 100 comes before the body is sent', async () => {
    const { gw, port } = await startGateway(res, io);
    gw.route('POST', '/echo', (req) => ({ body: req.body.toString() }));
    const raw = await Raw.connect(port, res);
    raw.write('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
    await raw.waitFor((b) => b.includes('\r\n\r\n'), 'the interim response');
    expect(raw.buf.toString()).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    raw.buf = Buffer.alloc(0);
    raw.write('ping');
    const r = await raw.response();
    expect([r.status, r.body]).toEqual([200, 'ping']);
  });

  test('a WebSocket upgrade and HTTP requests share the port; /readyz and /metrics answer', async () => {
    const { http, port } = await startGateway(res, io);
    expect(await (await fetch(`${http}/readyz`)).json()).toEqual({ status: 'ready' });
    const m = await fetch(`${http}/metrics`);
    expect(m.headers.get('content-type')).toMatch(/text\/plain/);
    expect(await m.text()).toMatch(/^myelin_gateway_connections \d+$/m);
    const raw = await Raw.connect(port, res);
    raw.write(upgradeRequest());
    expect((await raw.response()).status).toBe(101);
  });
});
