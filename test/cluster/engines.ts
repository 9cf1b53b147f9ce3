// What the cluster suites share: the machine's engines (NATS with JetStream at 4222,
// Redis at 6379), unique names, waiting for a condition, and removing what a suite
// made on the shared servers (its streams, key prefixes and configuration entries).
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';

export const NATS = 'nats://127.0.0.1:4222';
export const REDIS = 'redis://127.0.0.1:6379';
export type Kind = 'nats' | 'redis';

export const uid = (): string => Math.random().toString(36).slice(2, 10);
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `pred` every 20 ms until it holds; throws naming `what` after `ms`. */
export async function until(pred: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** What a suite made on the shared engines, to remove in its afterAll. */
export interface Made {
  streams: string[];
  prefixes: string[];
  /** Configuration entries (NATS KV bucket myelin_config). */
  configs?: string[];
}

export async function removeMade({ streams, prefixes, configs = [] }: Made): Promise<void> {
  const nc = await connect({ servers: NATS });
  const jsm = await jetstreamManager(nc);
  for (const s of streams) await jsm.streams.delete(s).catch(() => {});
  if (configs.length > 0) {
    try {
      const kv = await new Kvm(jetstream(nc)).open('myelin_config');
      for (const n of configs) await kv.purge(n).catch(() => {});
    } catch {
      // no configuration bucket: nothing to remove
    }
  }
  await nc.close();
  const r = new Redis(REDIS);
  for (const p of prefixes) {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${p}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await r.del(...keys);
    } while (cursor !== '0');
  }
  await r.quit();
}
