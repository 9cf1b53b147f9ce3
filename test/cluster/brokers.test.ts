// Our own broker instances (brokers.ts): they answer, survive a kill -9 and restart on
// the same port with their store, and leave nothing behind when stopped.
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { startNats, startRedis, type Broker } from './brokers.js';

/** Sends RESP commands on a fresh connection; resolves with the raw reply text once `until` appears. */
function redisCall(port: number, cmd: string, until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write(cmd));
    s.on('data', (d: string) => {
      buf += d;
      if (until.test(buf)) {
        s.destroy();
        resolve(buf);
      }
    });
    s.on('error', reject);
  });
}

const started: Broker[] = [];
afterAll(async () => {
  await Promise.all(started.map((b) => b.stop()));
});

describe('test brokers', () => {
  it('nats-server with JetStream restarts on the same port and store after kill -9', async () => {
    const b = await startNats({ jetstream: true });
    started.push(b);
    expect(b.url).toBe(`nats://127.0.0.1:${b.port}`);
    const pid = b.pid;
    expect(pid).toBeGreaterThan(0);
    b.kill('SIGKILL');
    await b.restart();
    expect(b.pid).toBeGreaterThan(0);
    expect(b.pid).not.toBe(pid);
    expect(existsSync(b.dir)).toBe(true);
    await b.stop();
    expect(b.pid).toBe(0);
    expect(existsSync(b.dir)).toBe(false);
    await b.stop(); // idempotent
    await expect(b.restart()).rejects.toThrow(/stopped/);
  });

  it('redis-server with an fsync-always AOF keeps an acknowledged write across kill -9', async () => {
    const b = await startRedis({ appendonly: true });
    started.push(b);
    expect(await redisCall(b.port, 'SET k v\r\n', /\r\n/)).toBe('+OK\r\n');
    b.kill('SIGKILL');
    await b.restart();
    expect(await redisCall(b.port, 'GET k\r\n', /v\r\n|\$-1\r\n/)).toBe('$1\r\nv\r\n');
  });

  it('redis-server without persistence restarts empty (by design)', async () => {
    const b = await startRedis();
    started.push(b);
    expect(await redisCall(b.port, 'SET k v\r\n', /\r\n/)).toBe('+OK\r\n');
    b.kill('SIGKILL');
    await b.restart();
    expect(await redisCall(b.port, 'GET k\r\n', /v\r\n|\$-1\r\n/)).toBe('$-1\r\n');
  });
});
