// Shared pieces of the Redis transport suites: a recording DeliverySink (our own
// interface, driven by the real transport), a unique key prefix per test with cleanup,
// and message builders.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { Encoding, type Delivery, type DeliverySink, type OutMessage } from '../../lib/cluster/transport.js';
import { RedisTransport, type RedisTransportOptions } from '../../lib/cluster/redis-transport.js';
import { REDIS_URL } from '../ai/services.js';

export { REDIS_URL };

/** Records everything a subscription hands it. `autoAck` acks each delivery on arrival; `room` can be closed and reopened. */
export class RecordingSink implements DeliverySink {
  readonly got: Delivery[] = [];
  readonly takeovers: { count: number; idleMs: number }[] = [];
  readonly losses: { count: number; why: string }[] = [];
  readonly errors: unknown[] = [];
  autoAck: boolean;
  #room = 256;
  #wakers: (() => void)[] = [];

  constructor(autoAck = true) {
    this.autoAck = autoAck;
  }

  push(d: Delivery): void {
    this.got.push(d);
    if (this.autoAck) d.ack();
  }
  room(): number {
    return this.#room;
  }
  waitRoom(): Promise<void> {
    if (this.#room > 0) return Promise.resolve();
    return new Promise((r) => this.#wakers.push(r));
  }
  setRoom(n: number): void {
    this.#room = n;
    if (n > 0) for (const w of this.#wakers.splice(0)) w();
  }
  takeover(count: number, idleMs: number): void {
    this.takeovers.push({ count, idleMs });
  }
  lost(count: number, why: string): void {
    this.losses.push({ count, why });
  }
  error(err: unknown): void {
    this.errors.push(err);
  }
  lostCount(why: string): number {
    return this.losses.filter((l) => l.why === why).reduce((a, l) => a + l.count, 0);
  }
  texts(): string[] {
    return this.got.map((d) => Buffer.from(d.payload).toString());
  }
}

/** Polls until pred() holds; fails with `what` after a generous guard (a hang, not a speed check). */
export async function waitFor(pred: () => boolean | Promise<boolean>, what: string, guardMs = 20_000): Promise<void> {
  const end = Date.now() + guardMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let seq = 0;
/** A message as the bus would build it (JSON-encoded text by default). */
export function out(subject: string, text: string, extra: Partial<OutMessage> = {}): OutMessage {
  return {
    subject,
    payload: Buffer.from(JSON.stringify(text)),
    enc: Encoding.Json,
    lane: 2,
    key: undefined,
    headers: undefined,
    id: `test.${++seq}`,
    userId: false,
    time: Date.now(),
    ...extra,
  };
}

/** A unique prefix and the transports made under it; `cleanup` closes them and deletes every key under the prefix. */
export class Scope {
  readonly prefix = `myelin-test-${randomUUID().slice(0, 8)}`;
  readonly admin = new Redis(REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 2, protocol: 2 });
  readonly transports: RedisTransport[] = [];

  async transport(opts: Partial<RedisTransportOptions> = {}, node = `n${this.transports.length + 1}`): Promise<RedisTransport> {
    const t = new RedisTransport({ url: REDIS_URL, prefix: this.prefix, partitions: 4, maxLen: 10_000, dedupeWindowMs: 60_000, blockMs: 200, ...opts }, node);
    this.transports.push(t);
    await t.connect(5000);
    return t;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.transports.map((t) => t.close()));
    let cursor = '0';
    do {
      const [next, keys] = await this.admin.scan(cursor, 'MATCH', `${this.prefix}:*`, 'COUNT', 500);
      if (keys.length > 0) await this.admin.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    this.admin.disconnect();
  }
}
