// The outside services some AI suites need, checked before they run so that a missing
// one fails with its name and address instead of a timeout deep inside a test. Only
// Redis today (README.md "Tests and services" lists the suites); CI's .ci/run starts it.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';

export const REDIS_HOST = '127.0.0.1';
export const REDIS_PORT = 6379;
export const REDIS_URL = `redis://${REDIS_HOST}:${REDIS_PORT}`;

/**
 * Pings the shared Redis once (1 s to answer) and throws a message naming it when it
 * does not. Call it from beforeAll in every suite that needs Redis.
 */
export async function requireRedis(): Promise<void> {
  const r = new Redis({ host: REDIS_HOST, port: REDIS_PORT, lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  let first: Error | undefined;
  r.on('error', (e: Error) => (first ??= e));
  try {
    await r.connect();
    await r.ping();
  } catch (err) {
    throw new Error(
      `Redis at ${REDIS_HOST}:${REDIS_PORT} is not reachable: start it (redis-server) — CI's .ci/run starts it (${(first ?? (err as Error)).message})`,
    );
  } finally {
    r.disconnect();
  }
}

/** A TCP port on 127.0.0.1 that nothing listens on (bound, then closed). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, REDIS_HOST, resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/**
 * A throwaway redis-server on `port` (no persistence), for tests that need a Redis to
 * die: resolves once it accepts connections. Never touches the shared one on 6379.
 */
export async function startRedis(port: number): Promise<{ stop: () => Promise<void> }> {
  let child: ChildProcess;
  try {
    child = spawn('redis-server', ['--port', String(port), '--bind', REDIS_HOST, '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`redis-server could not be started (is it installed?): ${(err as Error).message}`);
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.once('error', (err) => reject(new Error(`redis-server could not be started (is it installed?): ${err.message}`)));
    child.once('exit', (code) => reject(new Error(`redis-server on port ${port} exited (${code}) before it was ready: ${out}`)));
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('Ready to accept connections')) resolve();
    });
  });
  return {
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
