// Removes what a myelin bus left on the shared servers after a benchmark run: its
// JetStream stream (NATS) or every key under its prefix (Redis, by SCAN, never KEYS or
// FLUSH: the shared server holds other people's data). The bus keeps durable state on
// close by design, so the benchmark that named it cleans it up.
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Redis } from 'ioredis';

const say = (s) => process.stderr.write(`  ${s}\n`);

export async function deleteStream(servers, name) {
  let nc;
  try {
    nc = await connect({ servers });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(name);
  } catch (err) {
    say(`could not delete stream ${name}: ${err.message}`);
  } finally {
    await nc?.close();
  }
}

export async function deletePrefix(url, prefix) {
  const r = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await r.del(...keys);
    } while (cursor !== '0');
  } catch (err) {
    say(`could not delete ${prefix}*: ${err.message}`);
  } finally {
    r.disconnect();
  }
}

/** Cleans up after a bus opened with `transport` (the options object the bench passed). */
export function cleanup(transport) {
  if (transport.kind === 'nats') return transport.stream ? deleteStream(transport.servers, transport.stream) : Promise.resolve();
  return deletePrefix(transport.url, transport.prefix);
}
