// gw.close() under load, on both I/O backends: several sockets publish as fast as they
// can, each with its own key and a sequence number, and a bus handler records what
// arrives. close() mid-stream must lose nothing it accepted: every event the native
// side counted (stats().eventsIn) reaches the handler, and what each socket got in is
// a gap-free prefix of what it sent (the checker of RELIABILITY.md's queue test).
import { afterEach, describe, expect, test } from 'vitest';
import { Bus } from '../../lib/bus/bus.js';
import { BACKENDS, Client, type Io, Raw, Resources, startGateway, until, usable } from './gateway-helpers.js';

const res = new Resources();
afterEach(() => res.closeAll());

interface Publisher {
  client: Client;
  sent: number;
  errors: number;
  done: Promise<void>;
}

/** Publishes seq 0, 1, 2, ... on `load.<j>` with key p<j> until the socket stops being open. */
function publisher(client: Client, j: number): Publisher {
  const p: Publisher = { client, sent: 0, errors: 0, done: Promise.resolve() };
  const ws = client.ws;
  p.done = (async () => {
    while (ws.readyState === ws.OPEN) {
      // A batch, then let the socket's events (a close frame) in.
      for (let i = 0; i < 64 && ws.readyState === ws.OPEN; i++) {
        ws.send(`{"op":"pub","subject":"load.${j}","key":"p${j}","data":${p.sent}}`);
        p.sent++;
      }
      await new Promise((r) => setImmediate(r));
    }
  })();
  return p;
}

describe.each(BACKENDS)('shutdown under load over %s', (io: Io) => {
  if (!usable(io)) {
    test.skip('io_uring is not usable on this kernel', () => {});
    return;
  }

  for (const overflow of ['wait', 'reject'] as const) {
    test(`close() mid-stream loses no accepted event (overflow '${overflow}')`, async () => {
      const bus = new Bus({ capacity: overflow === 'wait' ? 256 : 4096, overflow });
      const { gw, ws } = await startGateway(res, io, { bus });
      const got: number[][] = [[], [], [], []];
      let total = 0;
      bus.subscribe('load.*', async (ev) => {
        got[Number(ev.subject.slice(5))].push(ev.data as number);
        total++;
        if (total % 512 === 0) await new Promise((r) => setImmediate(r)); // a handler that yields now and then
      });
      const clients = await Promise.all(got.map(() => Client.open(ws, undefined, res)));
      const pubs = clients.map((c, j) => publisher(c, j));
      await until(() => total >= 2000, 'the load to flow', 20_000);

      const closing = gw.close();
      expect(gw.close()).toBe(closing); // double close: the same promise
      await closing;
      await gw.close(); // and again after it resolved
      await Promise.all(pubs.map((p) => p.done));
      const codes = await Promise.all(clients.map((c) => c.closed));
      for (const c of codes) expect(c.code).toBe(1001);

      const stats = gw.stats();
      expect(stats.listening).toBe(false);
      // Error frames for pubs refused after the 1001 was sent are not sent: the client
      // saw at most as many as the gateway counted.
      const refusedSeen = clients.reduce((n, c) => n + c.received.filter((m) => m.op === 'error').length, 0);
      const refused = stats.eventsRefused;
      expect(refusedSeen).toBeLessThanOrEqual(refused);
      if (overflow === 'wait') expect(refused).toBe(0);
      else expect(refused).toBeGreaterThan(0);
      for (const c of clients) for (const m of c.received.filter((x) => x.op === 'error')) expect(m.code).toBe('ERR_BUS_FULL');
      // Every event read off a socket is delivered or counted as refused.
      expect(total + refused).toBe(stats.eventsIn);
      expect(total).toBe(bus.stats().delivered);
      for (const [j, seqs] of got.entries()) {
        const sent = pubs[j].sent;
        expect(seqs.length).toBeLessThanOrEqual(sent);
        if (overflow === 'wait') {
          // In order, no duplicates, no gaps: a prefix of what the socket sent.
          expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i));
        } else {
          // Refused events leave holes; what got in is still in order and unique.
          for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]);
        }
      }
      expect(bus.closed).toBe(false); // a bus passed in is the caller's to close
      await bus.close();
    });
  }

  test('close() lets an in-flight HTTP request finish and refuses new connections', async () => {
    const { gw, http, port } = await startGateway(res, io);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const inHandler = new Promise<void>((r) => (started = r));
    gw.route('GET', '/slow', async () => {
      started();
      await gate;
      return { body: 'finished' };
    });
    const pending = fetch(`${http}/slow`).then(async (r) => [r.status, await r.text()]);
    await inHandler;
    const closing = gw.close();
    // New connections are refused once close() started.
    await until(() => !gw.stats().listening, 'listening to stop');
    const refused = await Raw.connect(port).then(
      async (r) => {
        await r.ended;
        return r.buf.length === 0;
      },
      () => true,
    );
    expect(refused).toBe(true);
    release();
    expect(await pending).toEqual([200, 'finished']);
    await closing;
    expect(gw.stats().httpInFlight).toBe(0);
  });

  test('a gateway that never listened closes; listen() twice is refused', async () => {
    const { Gateway } = await import('../../lib/gateway/gateway.js');
    const idle = new Gateway({ port: 0, io });
    await idle.close();
    await idle.close();
    const { gw } = await startGateway(res, io);
    await expect(gw.listen()).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});
