// A consumer child process for the scale-out scenarios (forked by common.mjs; the IPC
// protocol is described there). argv: <mode> <config JSON>.
//
// Modes:
//   nats-core-raw   @nats-io/transport-node subscribe(callback), JSON-decodes each message
//   jetstream-raw   @nats-io/jetstream durable pull consumer, consume({callback}), ack each
//   redis-raw       ioredis XREADGROUP COUNT 256 BLOCK, XACK of each batch pipelined behind the next read
//   myelin          new Bus({ transport }) + bus.subscribe(pattern, handler, { queue, ... });
//                   config.hold: the handler never settles (the failover row's victim, which
//                   holds its events unacknowledged until it is killed)
// Every mode counts handled events and notes the epoch time of the last one.
import { performance } from 'node:perf_hooks';

const [mode, raw] = process.argv.slice(2);
const cfg = JSON.parse(raw ?? '{}');

let count = 0;
let target = Infinity;
let lastAt = 0;
let sum = 0; // checksum of a decoded field, so decoding is never dead code
let armed = false;
const cpu0 = process.cpuUsage();
let cpuAtArm = cpu0;

const now = () => performance.timeOrigin + performance.now();
function handled(v) {
  sum = (sum + (typeof v?.id === 'number' ? v.id : 1)) % 1e15;
  if (!armed) return;
  count++;
  lastAt = now();
  if (count === target) process.send({ type: 'progress', count });
}

let close = async () => {};

const ticker = setInterval(() => {
  if (armed) process.send({ type: 'progress', count });
}, 50);

process.on('message', async (m) => {
  if (m.type === 'expect') {
    count = 0;
    target = m.n;
    lastAt = 0;
    armed = true;
    cpuAtArm = process.cpuUsage();
    process.send({ type: 'armed' });
  } else if (m.type === 'report') {
    const c = process.cpuUsage(cpuAtArm);
    process.send({ type: 'count', count, cpuUs: c.user + c.system, lastAt, sum });
    armed = false;
  } else if (m.type === 'stop') {
    clearInterval(ticker);
    try {
      await close();
    } finally {
      process.disconnect();
      process.exit(0);
    }
  }
});

function fail(err) {
  process.stderr.write(`consumer ${mode}: ${err?.stack ?? err}\n`);
  process.send?.({ type: 'error', message: String(err?.message ?? err) });
  process.exit(1);
}

try {
  if (mode === 'nats-core-raw') {
    const { connect } = await import('@nats-io/transport-node');
    const nc = await connect({ servers: cfg.url });
    nc.subscribe(cfg.subject, { callback: (err, msg) => (err ? fail(err) : handled(msg.json())) });
    await nc.flush(); // the server has the subscription before the parent publishes
    close = () => nc.close();
  } else if (mode === 'jetstream-raw') {
    const { connect } = await import('@nats-io/transport-node');
    const { jetstream } = await import('@nats-io/jetstream');
    const nc = await connect({ servers: cfg.url });
    const js = jetstream(nc);
    const consumer = await js.consumers.get(cfg.stream, cfg.durable);
    const msgs = await consumer.consume({
      max_messages: cfg.batch ?? 1000,
      callback: (m) => {
        handled(m.json());
        m.ack();
      },
    });
    close = async () => {
      await msgs.close();
      await nc.close();
    };
  } else if (mode === 'redis-raw') {
    const { Redis } = await import('ioredis');
    const r = new Redis(cfg.url, { lazyConnect: false, maxRetriesPerRequest: null });
    const name = `c${cfg.member ?? 0}`;
    let running = true;
    const loop = (async () => {
      while (running) {
        const res = await r.xreadgroup('GROUP', cfg.group, name, 'COUNT', cfg.batch ?? 256, 'BLOCK', 500, 'STREAMS', cfg.key, '>');
        if (!res) continue;
        const entries = res[0][1];
        const ids = new Array(entries.length);
        for (let i = 0; i < entries.length; i++) {
          const [id, fields] = entries[i];
          ids[i] = id;
          handled(JSON.parse(fields[1]));
        }
        // Not awaited: the XACK goes out in the same write as the next XREADGROUP.
        r.xack(cfg.key, cfg.group, ...ids).catch(fail);
      }
    })().catch((err) => (running ? fail(err) : undefined));
    close = async () => {
      running = false;
      await loop;
      r.disconnect();
    };
  } else if (mode === 'myelin') {
    const { Bus } = await import('../../dist/esm/index.js');
    const bus = new Bus({ capacity: cfg.capacity ?? 16384, transport: cfg.transport });
    await bus.ready;
    const never = new Promise(() => {});
    let held = 0;
    const sub = bus.subscribe(
      cfg.subject,
      cfg.hold
        ? () => {
            held++;
            if (held === 1 || held % 64 === 0) process.send({ type: 'held', held });
            return never;
          }
        : (ev) => handled(ev.data),
      { ...(cfg.queue ? { queue: cfg.queue } : {}), ...(cfg.subscribe ?? {}) },
    );
    await sub.ready;
    if (cfg.hold) setInterval(() => process.send({ type: 'held', held }), 50);
    close = async () => {
      await bus.close();
    };
  } else {
    throw new Error(`unknown mode '${mode}'`);
  }
  process.send({ type: 'ready' });
} catch (err) {
  fail(err);
}
