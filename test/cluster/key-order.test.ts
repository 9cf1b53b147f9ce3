// Per-key order across three consumer processes in one queue group on Redis Streams:
// a key hashes to a partition stream, and each partition has one active member, so
// every key's events are handled in publish order even though each member runs up to
// 32 async handlers at once. (On NATS JetStream 2.9 the members of a group share one
// durable consumer: per-key order holds within a process, not across processes; see
// the README's "What differs per engine".)
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { Bus } from '../../lib/bus/bus.js';

const REDIS = 'redis://127.0.0.1:6379';
const prefix = `ko${Math.random().toString(36).slice(2, 10)}`;
const dir = mkdtempSync(join(tmpdir(), 'myelin-key-order-'));
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  const r = new Redis(REDIS);
  const keys = await r.keys(`${prefix}:*`);
  if (keys.length) await r.del(...keys);
  await r.quit();
});

it('three consumer processes on Redis: each key handled in publish order, by one member, nothing lost', async () => {
  const transport = { kind: 'redis', url: REDIS, prefix, partitions: 6, heartbeatMs: 200 };
  const outs = [0, 1, 2].map((i) => join(dir, `c${i}.txt`));
  const fixture = join(import.meta.dirname, 'fixtures', 'key-consumer.mjs');
  await Promise.all(
    outs.map(
      (out) =>
        new Promise<void>((resolve, reject) => {
          const c = fork(fixture, [JSON.stringify({ transport, subject: 'ko.e', queue: 'workers', concurrency: 32, out })], { stdio: 'inherit' });
          children.push(c);
          c.once('message', () => resolve());
          c.once('exit', (code) => reject(new Error(`consumer exited ${code}`)));
        }),
    ),
  );
  // membership settles within a heartbeat: every member sees the other two
  await new Promise((r) => setTimeout(r, 1500));
  const bus = new Bus({ transport });
  const KEYS = 60;
  const ROUNDS = 50;
  for (let seq = 0; seq < ROUNDS; seq++) {
    for (let k = 0; k < KEYS; k++) {
      if (!bus.publish('ko.e', { seq }, { key: `key-${k}` })) await bus.publishAsync('ko.e', { seq }, { key: `key-${k}` });
    }
  }
  await bus.drain();
  await bus.close();
  const read = () => outs.map((f) => {
    try {
      return readFileSync(f, 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  });
  const end = Date.now() + 30_000;
  while (read().flat().length < KEYS * ROUNDS && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  await Promise.all(children.map((c) => new Promise((r) => (c.once('exit', r), c.send({ type: 'stop' })))));
  const perProcess = read();
  expect(perProcess.flat().length).toBe(KEYS * ROUNDS);
  const owner = new Map<string, number>();
  const last = new Map<string, number>();
  perProcess.forEach((lines, p) => {
    for (const line of lines) {
      const [key, s] = line.split(' ');
      const seq = Number(s);
      expect(owner.get(key) ?? p, `${key} handled by one member`).toBe(p);
      owner.set(key, p);
      expect(seq, `${key}: ${seq} after ${last.get(key)}`).toBe((last.get(key) ?? -1) + 1);
      last.set(key, seq);
    }
  });
  expect(last.size).toBe(KEYS);
  // the work was split: every member owned some keys
  expect(new Set(owner.values()).size).toBe(3);
}, 90_000);
