// Smaller promises of the gateway's HTTP life cycle: a client's `Connection: close` is
// answered with one, the head timeout is configurable, and stats() after close keeps
// the last counts (the shutdown closes included).
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Gateway } from '../../lib/gateway/gateway.js';
import { expectCode } from '../helpers.js';

function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(text));
    let out = '';
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

describe('gateway life cycle', () => {
  it("answers a client's Connection: close with one, then closes", async () => {
    const gw = new Gateway({ port: 0, ioThreads: 1 });
    const { port } = await gw.listen();
    const res = await raw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(res).toMatch(/^HTTP\/1\.1 200 /);
    expect(res.toLowerCase()).toContain('\r\nconnection: close\r\n');
    await gw.close();
  });

  it('a request head slower than headTimeoutMs gets 408 and the connection closes', async () => {
    const gw = new Gateway({ port: 0, ioThreads: 1, headTimeoutMs: 300 });
    const { port } = await gw.listen();
    const res = await new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'));
      let out = '';
      s.on('data', (d) => (out += d.toString('latin1')));
      s.on('close', () => resolve(out));
      s.on('error', reject);
    });
    expect(res).toMatch(/^HTTP\/1\.1 408 /);
    expect(gw.stats().closes.timeout).toBe(1);
    await gw.close();
    expectCode(() => new Gateway({ headTimeoutMs: 0 }), 'ERR_INVALID_ARGUMENT');
  });

  it('stats() after close keeps the last counts, shutdown closes included', async () => {
    const gw = new Gateway({ port: 0, ioThreads: 1 });
    const { port } = await gw.listen();
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    await new Promise((r) => ws.once('open', r));
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    await gw.close();
    expect(await closed).toBe(1001);
    const s = gw.stats();
    expect(s.listening).toBe(false);
    expect(s.accepted).toBe(1);
    expect(s.connections).toBe(0);
    expect((s.closes.shutdown ?? 0) + (s.closes.normal ?? 0) + (s.closes.peer ?? 0)).toBe(1);
  });
});
