// Every WebSocket and HTTP bad input of shared/RELIABILITY.md against the native
// gateway, on both I/O backends, from raw sockets that write the bytes by hand. After
// each one the process is up and an unrelated new connection (HTTP and WebSocket)
// still works (expectAlive).
import { afterEach, describe, expect, test } from 'vitest';
import {
  BACKENDS,
  Client,
  closeFrame,
  expectAlive,
  frame,
  type Io,
  Raw,
  Resources,
  startGateway,
  text,
  until,
  upgradeRequest,
  usable,
} from './gateway-helpers.js';

const res = new Resources();
afterEach(() => res.closeAll());

interface FrameCase {
  name: string;
  bytes: () => Buffer;
  code: number;
  reason: string;
}

const badUtf8 = Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]); // {"\xc3("}
const FRAME_CASES: FrameCase[] = [
  { name: 'an unmasked client frame', bytes: () => text('{"op":"ping"}', { mask: false }), code: 1002, reason: 'protocol' },
  { name: 'RSV1 without an extension', bytes: () => text('{"op":"ping"}', { rsv: 4 }), code: 1002, reason: 'protocol' },
  { name: 'RSV2 and RSV3', bytes: () => text('{"op":"ping"}', { rsv: 3 }), code: 1002, reason: 'protocol' },
  { name: 'an unknown opcode (0x3)', bytes: () => frame(0x3, 'x'), code: 1002, reason: 'protocol' },
  { name: 'an unknown control opcode (0xB)', bytes: () => frame(0xb), code: 1002, reason: 'protocol' },
  { name: 'a fragmented ping', bytes: () => frame(0x9, 'a', { fin: false }), code: 1002, reason: 'protocol' },
  { name: 'a ping payload of 126 bytes', bytes: () => frame(0x9, Buffer.alloc(126, 0x61)), code: 1002, reason: 'protocol' },
  { name: 'a close payload of 1 byte', bytes: () => frame(0x8, Buffer.from([3])), code: 1002, reason: 'protocol' },
  { name: 'a continuation with no message open', bytes: () => frame(0x0, 'x'), code: 1002, reason: 'protocol' },
  { name: 'a new text frame inside a fragmented one', bytes: () => Buffer.concat([text('{"op"', { fin: false }), text(':"ping"}')]), code: 1002, reason: 'protocol' },
  { name: 'a 64-bit length with the top bit set', bytes: () => text('', { len64: 1n << 63n }), code: 1002, reason: 'protocol' },
  { name: 'a 64-bit length of 2^53', bytes: () => text('', { len64: 1n << 53n }), code: 1009, reason: 'too_big' },
  { name: 'a payload over maxPayloadBytes', bytes: () => text(JSON.stringify({ op: 'pub', subject: 'a', data: 'x'.repeat(5000) })), code: 1009, reason: 'too_big' },
  {
    name: 'fragments adding up past maxPayloadBytes',
    bytes: () => Buffer.concat([text('"' + 'x'.repeat(3000), { fin: false }), frame(0x0, 'y'.repeat(3000), { fin: false })]),
    code: 1009,
    reason: 'too_big',
  },
  { name: 'invalid UTF-8 in a text frame', bytes: () => text(badUtf8), code: 1007, reason: 'invalid_utf8' },
  {
    name: 'invalid UTF-8 split across fragments',
    bytes: () => Buffer.concat([text(Buffer.from([0x22, 0xe2, 0x82]), { fin: false }), frame(0x0, Buffer.from([0x22]))]),
    code: 1007,
    reason: 'invalid_utf8',
  },
  { name: 'invalid UTF-8 in a close reason', bytes: () => closeFrame(1000, Buffer.from([0xff, 0xfe])), code: 1007, reason: 'invalid_utf8' },
  { name: 'a close code that may not be sent (1005)', bytes: () => closeFrame(1005), code: 1002, reason: 'protocol' },
  {
    name: 'a flood of empty continuation frames',
    bytes: () => Buffer.concat([text('', { fin: false }), ...Array.from({ length: 6000 }, () => frame(0x0, '', { fin: false }))]),
    code: 1008,
    reason: 'protocol',
  },
];

interface HeadCase {
  name: string;
  request: () => string | Buffer;
  status: number;
}

const manyHeaders = Array.from({ length: 100 }, (_, i) => `X-H${i}: v\r\n`).join('');
const protocols = Array.from({ length: 1500 }, (_, i) => `proto${i}`).join(', ');
const HEAD_CASES: HeadCase[] = [
  { name: 'more headers than the limit at upgrade', request: () => upgradeRequest(manyHeaders), status: 431 },
  { name: 'a head larger than the limit (huge extension list)', request: () => upgradeRequest(`Sec-WebSocket-Extensions: ${'permessage-deflate; client_max_window_bits, '.repeat(500)}\r\n`), status: 431 },
  { name: 'a missing Upgrade header', request: () => upgradeRequest().replace('Upgrade: websocket\r\n', ''), status: 426 },
  { name: 'Upgrade: h2c instead of websocket', request: () => upgradeRequest().replace('Upgrade: websocket', 'Upgrade: h2c'), status: 426 },
  { name: 'POST /ws with an upgrade', request: () => upgradeRequest().replace('GET', 'POST'), status: 426 },
  { name: 'a missing Sec-WebSocket-Key', request: () => upgradeRequest().replace(/Sec-WebSocket-Key: .*\r\n/, ''), status: 400 },
  { name: 'a Sec-WebSocket-Key of 15 bytes', request: () => upgradeRequest('', '/ws', Buffer.alloc(15, 1).toString('base64')), status: 400 },
  { name: 'a Sec-WebSocket-Key that is not base64', request: () => upgradeRequest('', '/ws', '!!!!!!!!!!!!!!!!!!!!!!=='), status: 400 },
  { name: 'Sec-WebSocket-Version 8', request: () => upgradeRequest().replace('Version: 13', 'Version: 8'), status: 426 },
  { name: 'a missing Sec-WebSocket-Version', request: () => upgradeRequest().replace(/Sec-WebSocket-Version: 13\r\n/, ''), status: 426 },
  { name: 'a bare CR inside a header value', request: () => upgradeRequest('X-Evil: a\rInjected: b\r\n'), status: 400 },
  { name: 'a bare LF inside a header value', request: () => upgradeRequest('X-Evil: a\nInjected: b\r\n'), status: 400 },
  { name: 'CRLF then a line without a colon', request: () => upgradeRequest('X-Evil: a\r\ninjected\r\n'), status: 400 },
  { name: 'a NUL inside a header value', request: () => upgradeRequest('X-Evil: a\u0000b\r\n'), status: 400 },
  { name: 'obs-fold (a continuation line)', request: () => upgradeRequest('X-Fold: a\r\n b\r\n'), status: 400 },
  { name: 'a space before the colon', request: () => upgradeRequest('X-Bad : a\r\n'), status: 400 },
  {
    name: 'request smuggling: Content-Length with Transfer-Encoding',
    request: () => 'POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n',
    status: 400,
  },
  {
    name: 'request smuggling: two different Content-Lengths',
    request: () => 'POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd',
    status: 400,
  },
  { name: 'Transfer-Encoding: gzip, chunked', request: () => 'POST /v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', status: 501 },
  { name: 'a missing Host header', request: () => 'GET /healthz HTTP/1.1\r\n\r\n', status: 400 },
  { name: 'a bad method', request: () => 'G(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n', status: 400 },
  { name: 'HTTP/2.0 in the request line', request: () => 'GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n', status: 505 },
  { name: 'a request line over 8 KiB', request: () => `GET /${'a'.repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`, status: 414 },
  { name: 'a body over maxPayloadBytes', request: () => `POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: ${1 << 20}\r\n\r\n`, status: 413 },
];

describe.each(BACKENDS)('bad input over %s', (io: Io) => {
  if (!usable(io)) {
    test.skip('io_uring is not usable on this kernel', () => {});
    return;
  }

  test.each(FRAME_CASES)('$name: close $code, then alive', async ({ bytes, code, reason }) => {
    const { gw, port } = await startGateway(res, io, { maxPayloadBytes: 4096 });
    const raw = await Raw.connect(port, res);
    await raw.handshake();
    raw.write(bytes());
    expect(await raw.closeCode()).toBe(code);
    await raw.ended;
    await until(() => (gw.stats().closes[reason] ?? 0) === 1, `one '${reason}' close`);
    await expectAlive(port);
    await until(() => gw.stats().websockets === 0, 'no WebSocket left');
  });

  test.each(HEAD_CASES)('$name: $status, then alive', async ({ request, status }) => {
    const { gw, port } = await startGateway(res, io, { maxPayloadBytes: 4096 });
    let published = 0;
    gw.bus.subscribe('>', () => {
      published++;
    });
    const raw = await Raw.connect(port, res);
    raw.write(request());
    const r = await raw.response();
    expect(r.status).toBe(status);
    expect(JSON.parse(r.body).error.code).toBe('ERR_INVALID_ARGUMENT');
    // Malformed requests are not answered on a connection that might be desynchronized.
    expect(r.headers.connection).toBe('close');
    await raw.ended;
    await expectAlive(port);
    expect(published).toBe(0);
    await until(() => gw.stats().websockets === 0, 'no WebSocket left');
  });

  test('a huge but legal protocol list is accepted and no protocol is chosen', async () => {
    const { port } = await startGateway(res, io);
    const raw = await Raw.connect(port, res);
    raw.write(upgradeRequest(`Sec-WebSocket-Protocol: ${protocols}\r\n`));
    const r = await raw.response();
    expect(r.status).toBe(101);
    expect(r.headers['sec-websocket-protocol']).toBeUndefined();
    raw.write(text('{"op":"ping"}'));
    expect(await raw.json()).toEqual({ op: 'pong' });
  });

  test('permessage-deflate is not negotiated; a compressed frame is a 1002', async () => {
    const { port, ws } = await startGateway(res, io);
    const c = await Client.open(ws, { perMessageDeflate: true }, res);
    expect(c.ws.extensions).toBe('');
    await c.roundTrip();
    const raw = await Raw.connect(port, res);
    raw.write(upgradeRequest('Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n'));
    const r = await raw.response();
    expect(r.status).toBe(101);
    expect(r.headers['sec-websocket-extensions']).toBeUndefined();
    raw.write(text(Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]), { rsv: 4 }));
    expect(await raw.closeCode()).toBe(1002);
    await expectAlive(port);
  });

  test('one-byte TCP writes of a valid session', async () => {
    const { gw, port } = await startGateway(res, io);
    const got: unknown[] = [];
    gw.bus.subscribe('drip.>', (ev) => {
      got.push(ev.data);
    });
    const raw = await Raw.connect(port, res);
    const session = Buffer.concat([
      Buffer.from(upgradeRequest()),
      text('{"op":"sub","id":"d","subject":"echo"}'),
      text('{"op":"pub","subject":"drip.a","data":{"x":"\u00e9\u{1f600}"},"key":"k"}'),
      frame(0x9, 'hi'),
      text('{"op":"pu', { fin: false }),
      frame(0xa, 'unsolicited pong between fragments'),
      frame(0x0, 'b","subject":"echo","data":[1,2,3]}'),
      text('{"op":"ping"}'),
    ]);
    for (const b of session) {
      raw.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    const head = await raw.response();
    expect(head.status).toBe(101);
    const frames = [await raw.frame(), await raw.frame(), await raw.frame()];
    const pong = frames.find((f) => f.opcode === 0xa);
    expect(pong?.payload.toString()).toBe('hi');
    const texts = frames.filter((f) => f.opcode === 0x1).map((f) => JSON.parse(f.payload.toString()));
    expect(texts).toContainEqual(expect.objectContaining({ op: 'event', subject: 'echo', data: [1, 2, 3], sub: 'd' }));
    expect(texts).toContainEqual({ op: 'pong' });
    await until(() => got.length === 1, 'the dripped pub');
    expect(got[0]).toEqual({ x: '\u00e9\u{1f600}' });
    expect(gw.stats().closes.protocol).toBe(0);
  });

  test('bad frames of the event plane are error frames and the connection stays up', async () => {
    const { gw, ws, port } = await startGateway(res, io);
    let published = 0;
    gw.bus.subscribe('>', () => {
      published++;
    });
    const c = await Client.open(ws, undefined, res);
    const cases: Array<[string | Buffer, string, RegExp?]> = [
      ['{"op":"pub","subject":"a",', 'ERR_INVALID_JSON'],
      ['not json at all', 'ERR_INVALID_JSON'],
      ['{"op":"pub","subject":"a","data":{"x":}}', 'ERR_INVALID_JSON'],
      ['{"op":"pub","subject":"a","data":[1,2,}', 'ERR_INVALID_JSON'],
      ['[1,2,3]', 'ERR_INVALID_JSON', /object/],
      ['42', 'ERR_INVALID_JSON', /object/],
      ['"pub"', 'ERR_INVALID_JSON', /object/],
      ['null', 'ERR_INVALID_JSON', /object/],
      ['{"subject":"a"}', 'ERR_INVALID_ARGUMENT', /op/],
      ['{"op":"publish","subject":"a"}', 'ERR_INVALID_ARGUMENT', /op/],
      ['{"op":1,"subject":"a"}', 'ERR_INVALID_ARGUMENT', /op/],
      ['{"op":"pub","data":1}', 'ERR_INVALID_ARGUMENT', /subject/],
      ['{"op":"pub","subject":7}', 'ERR_INVALID_ARGUMENT', /subject/],
      ['{"op":"pub","subject":"a..b"}', 'ERR_INVALID_ARGUMENT', /subject/],
      ['{"op":"pub","subject":"a.>"}', 'ERR_INVALID_ARGUMENT', /subject/],
      ['{"op":"pub","subject":""}', 'ERR_INVALID_ARGUMENT', /subject/],
      [`{"op":"pub","subject":"${'a'.repeat(2000)}"}`, 'ERR_INVALID_ARGUMENT', /subject/],
      ['{"op":"pub","subject":"a","priority":"urgent"}', 'ERR_INVALID_ARGUMENT', /priority/],
      ['{"op":"pub","subject":"a","priority":1}', 'ERR_INVALID_ARGUMENT', /priority/],
      ['{"op":"pub","subject":"a","key":{"k":1}}', 'ERR_INVALID_ARGUMENT', /key/],
      ['{"op":"sub","subject":"a"}', 'ERR_INVALID_ARGUMENT', /id/],
      ['{"op":"sub","id":"s","subject":"a.>.b"}', 'ERR_INVALID_ARGUMENT', /subject/],
      [`{"op":"sub","id":"${'i'.repeat(300)}","subject":"a"}`, 'ERR_INVALID_ARGUMENT', /id/],
      ['{"op":"unsub"}', 'ERR_INVALID_ARGUMENT', /id/],
    ];
    for (const [frameText, code, msg] of cases) {
      c.send(frameText);
      const e = await c.next((m) => m.op === 'error');
      expect(e.code, String(frameText).slice(0, 60)).toBe(code);
      if (msg) expect(String(e.message)).toMatch(msg);
    }
    // Binary frames are not part of the protocol.
    c.ws.send(Buffer.from('{"op":"ping"}'), { binary: true });
    expect(await c.next((m) => m.op === 'error')).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/binary/) });
    // An error frame carries the id of a frame that had one.
    c.send('{"op":"req","id":"r9","subject":"a..b","data":1}');
    expect(await c.next((m) => m.op === 'error')).toMatchObject({ id: 'r9', code: 'ERR_INVALID_ARGUMENT' });
    await c.roundTrip();
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    c.send('{"op":"pub","subject":"ok","data":1}');
    await until(() => published === 1, 'the good pub');
    expect(gw.stats().errorsSent).toBe(cases.length + 2);
    expect(gw.stats().closes.protocol).toBe(0);
    await expectAlive(port);
  });

  test('maxConnections: 5 open, the 6th gets a 503; room again once one closes', async () => {
    const { gw, ws, port } = await startGateway(res, io, { maxConnections: 5 });
    const clients = await Promise.all(Array.from({ length: 5 }, () => Client.open(ws, undefined, res)));
    await until(() => gw.stats().connections === 5, 'five connections');
    const sixth = await Raw.connect(port, res);
    const r = await sixth.response();
    expect(r.status).toBe(503);
    await sixth.ended;
    expect(gw.stats().refused).toBe(1);
    for (const c of clients) await c.roundTrip();
    clients[0].close();
    clients[1].close();
    await until(() => gw.stats().connections === 3, 'two closed');
    await expectAlive(port);
  });

  test('idle WebSockets: a ping arrives; no pong closes the socket; a ponging client stays', async () => {
    const { gw, ws, port } = await startGateway(res, io, { pingIntervalMs: 150 });
    const good = await Client.open(ws, undefined, res); // `ws` answers pings by itself
    let pings = 0;
    const twoPings = new Promise<void>((resolve) => good.ws.on('ping', () => ++pings === 2 && resolve()));
    const raw = await Raw.connect(port, res);
    await raw.handshake();
    const ping = await raw.frame(3000);
    expect(ping.opcode).toBe(0x9);
    // No pong: closed with 1001 after twice the interval.
    expect(await raw.closeCode(3000)).toBe(1001);
    await raw.ended;
    await until(() => gw.stats().closes.timeout === 1, 'a timeout close');
    await twoPings;
    expect(good.ws.readyState).toBe(good.ws.OPEN);
    await good.roundTrip();
    await expectAlive(port);
  });

  test('an idle keep-alive HTTP connection is closed after idleTimeoutMs', async () => {
    const { gw, port } = await startGateway(res, io, { idleTimeoutMs: 200 });
    const raw = await Raw.connect(port, res);
    raw.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await raw.response()).status).toBe(200);
    await raw.ended;
    const silent = await Raw.connect(port, res);
    await silent.ended;
    expect(gw.stats().closes.timeout).toBe(2);
    await expectAlive(port);
  });

  test('a client that never reads is closed as a slow consumer; memory stays bounded', async () => {
    // The bound counts bytes queued in one loop turn too, so the bursts below stay well
    // under it: a reader that keeps up is never closed.
    const maxBufferedBytes = 1 << 20;
    const { gw, ws, port } = await startGateway(res, io, { maxBufferedBytes });
    const reader = await Client.open(ws, undefined, res);
    let ready = 0;
    gw.bus.subscribe('ready', () => {
      ready++;
    });
    // A pub after a sub on the same socket reaches the bus after the sub took effect.
    reader.send({ op: 'sub', id: 'r', subject: 'blob' });
    reader.send({ op: 'pub', subject: 'ready', data: null });
    const raw = await Raw.connect(port, res);
    await raw.handshake();
    raw.write(text('{"op":"sub","id":"slow","subject":"blob"}'));
    raw.write(text('{"op":"pub","subject":"ready","data":null}'));
    await until(() => ready === 2, 'both subscriptions');
    raw.sock.pause(); // never reads again: the kernel's buffers fill, then the server's
    const size = 16 << 10;
    const blob = 'b'.repeat(size);
    const rssBefore = process.memoryUsage().rss;
    let sent = 0;
    let rssPeak = rssBefore;
    while (gw.stats().closes.slow_consumer === 0) {
      if (sent * size >= 256 << 20) throw new Error('never closed as a slow consumer');
      for (let i = 0; i < 16; i++) gw.bus.publish('blob', blob);
      sent += 16;
      // The reading client keeps up.
      await until(() => reader.received.length === sent, `event ${sent} at the reader`);
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }
    // Closed after maxBufferedBytes plus what the kernel's socket buffers held.
    expect(sent * size).toBeGreaterThan(maxBufferedBytes);
    expect(sent * size).toBeLessThan(64 << 20);
    expect(rssPeak - rssBefore).toBeLessThan(256 << 20);
    expect(gw.stats().closes.slow_consumer).toBe(1);
    expect(gw.stats().websockets).toBe(1);
    gw.bus.publish('blob', 'after');
    await reader.next((m) => m.data === 'after');
    await expectAlive(port);
  });
});

// Slowloris needs the head timeout to pass: the Gateway has no option for it (the
// native default is 10 s), so both backends run at once to pay it once.
test('slowloris: a head dripped slower than the head timeout gets a 408 (both backends at once)', async () => {
  const ios = BACKENDS.filter(usable);
  await Promise.all(
    ios.map(async (io) => {
      const { gw, port } = await startGateway(res, io);
      const raw = await Raw.connect(port, res);
      raw.write('GET /ws HTTP/1.1\r\nHost: x\r\n');
      let stop = false;
      // One header byte every 200 ms keeps the connection from looking idle.
      const drip = (async () => {
        while (!stop && !raw.isClosed) {
          await new Promise((r) => setTimeout(r, 200));
          if (!raw.isClosed) raw.write('X');
        }
      })();
      const r = await raw.response(15_000);
      stop = true;
      await drip;
      expect(r.status).toBe(408);
      await raw.ended;
      expect(gw.stats().closes.timeout).toBe(1);
      await expectAlive(port);
    }),
  );
}, 30_000);
