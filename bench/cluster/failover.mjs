// Failover: a queue group of 2 consumer processes; one (the victim) holds the events it
// is given (its handler never settles, so nothing it has is acknowledged), the other
// handles normally. Once the healthy member has drained everything else, the victim is
// killed with SIGKILL. The figure is the time from the kill to the moment the healthy
// member has handled every event, i.e. took over all of the victim's pending events.
//   cluster.failover.<nats|redis>.ms        kill -> last taken-over event handled
//   cluster.failover.<nats|redis>.events    events taken over (held by the victim)
//   cluster.failover.<nats|redis>.held_ms   how long the victim held events before the kill
// With ackWaitMs 2000 the engine redelivers an unacknowledged event 2 s after it was
// delivered, so the floor is ackWaitMs minus held_ms (plus the claim interval on Redis):
// the row measures the takeover path's overhead on top of the ack wait the user chose.
import { done, repeats, scaled, emit } from '../lib.mjs';
import { Consumer, NATS_URL, REDIS_URL, log, makeEvent, openBus, reachable, runId } from './common.mjs';
import { cleanup } from './cleanup.mjs';

const ACK_WAIT_MS = 2000;
const M = scaled(2000);
const which = (process.env.MYELIN_BENCH_TRANSPORTS ?? 'nats,redis').split(',');
const REPEATS = Math.min(repeats, 5);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond, what, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`failover: timed out waiting for ${what}`);
    await sleep(2);
  }
}

for (const kind of which) {
  const url = kind === 'nats' ? NATS_URL : REDIS_URL;
  if (!(await reachable(url))) {
    log(`skip: cluster.failover.${kind}: no server at ${url}`);
    continue;
  }
  const name = `myelin_failover_${runId}`;
  const transport = kind === 'nats' ? { kind, servers: url, stream: name.toUpperCase() } : { kind, url, prefix: name };
  const subject = `failover.${runId}.${kind}`;
  const bus = await openBus(transport, `cluster.failover.${kind}`);
  if (!bus) continue;
  const ms = [];
  const taken = [];
  const heldMs = [];
  const kids = [];
  try {
    process.stderr.write(`  cluster.failover.${kind}.ms:`);
    for (let r = 0; r < REPEATS; r++) {
      const base = { transport, subject, queue: `failover${r}`, subscribe: { ackWaitMs: ACK_WAIT_MS } };
      // The victim subscribes first, so it is given events before the healthy member exists.
      const victim = new Consumer('myelin', { ...base, hold: true });
      kids.push(victim);
      await victim.next('ready');
      const healthy = new Consumer('myelin', base);
      kids.push(healthy);
      await healthy.next('ready');
      const armed = healthy.next('armed');
      healthy.send({ type: 'expect', n: M });
      await armed;
      for (let i = 0; i < M; i++) {
        const d = makeEvent(i);
        if (!bus.publish(subject, d)) await bus.publishAsync(subject, d);
      }
      await bus.drain();
      await waitFor(() => victim.held > 0, 'the victim to hold events');
      // The healthy member drains everything the victim was not given; then it idles.
      let last = -1;
      let stableSince = Date.now();
      await waitFor(() => {
        if (healthy.count !== last) {
          last = healthy.count;
          stableSince = Date.now();
        }
        return Date.now() - stableSince > 100;
      }, 'the healthy member to go idle');
      const before = healthy.count;
      const tKill = performance.timeOrigin + performance.now();
      victim.child.kill('SIGKILL');
      await victim.exit;
      await waitFor(() => healthy.count >= M, `the takeover of ${M - before} events`, 60_000);
      const report = healthy.next('count');
      healthy.send({ type: 'report' });
      const got = await report;
      ms.push(got.lastAt - tKill);
      taken.push(M - before);
      heldMs.push(tKill - victim.firstHeldAt);
      await healthy.stop();
      process.stderr.write(` ${(got.lastAt - tKill).toFixed(0)}ms/${M - before}`);
    }
    process.stderr.write('\n');
    emit(`cluster.failover.${kind}.ms`, 'ms', ms, { ackWaitMs: ACK_WAIT_MS });
    emit(`cluster.failover.${kind}.events`, 'events', taken);
    // 'ms held', not 'ms': the table prints no ratio of this against the takeover time.
    emit(`cluster.failover.${kind}.held_ms`, 'ms held', heldMs);
  } catch (err) {
    process.stderr.write('\n');
    log(`cluster.failover.${kind}: ${err.message}`);
    process.exitCode = 1;
  } finally {
    for (const k of kids) if (!k.exited) k.child.kill('SIGKILL');
    await bus.close();
    await cleanup(transport);
  }
}
done();
