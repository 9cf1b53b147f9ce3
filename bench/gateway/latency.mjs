// Delivery latency through the event plane, open loop: one publisher connection sends
// `pub` frames at a fixed rate, each carrying its due time; M subscriber connections
// record (receive time - due time) in an HDR histogram (the native load client).
//   fanout: 10,000 subscribers, a few publishes per second: one publish to 10,000
//           sockets; latency of every delivery. Anchor: a ws broadcast loop.
//   e2e:    1 subscriber, 100,000 publishes per second. Anchor: ws + an EventEmitter relay.
// Emits gateway.<scenario>.<ws|epoll|io_uring>.{p50,p99,p999,max} in us (median over
// repeats, min-max spread), .rate (deliveries/s), .lost and .server_cores.
// fanout.mjs and e2e.mjs run it, one scenario per process.
import { emit, repeats } from '../lib.mjs';
import { addon, sleep, startServer, targets, waitPhase, waitSubs } from './fixtures.mjs';

export async function runLatency(scenario) {
  const cfg =
    scenario === 'fanout'
      ? { subscribers: Number(process.env.MYELIN_BENCH_FANOUT ?? 10000), rate: 5, seconds: 4, warmup: 400, subject: 'bench.fan', pad: 64 }
      : { subscribers: 1, rate: Number(process.env.MYELIN_BENCH_E2E_RATE ?? 100000), seconds: 3, warmup: 500, subject: 'bench.e2e', pad: 64 };
  const reps = scenario === 'fanout' ? Math.min(repeats, 3) : repeats;

  async function once(t) {
    const server = await startServer(t.kind, t.io, scenario);
    const lc = new addon.LoadClient({
      port: server.port,
      mode: 'latency',
      connections: cfg.subscribers,
      subFrame: JSON.stringify({ op: 'sub', id: 's', subject: cfg.subject }),
      pubPrefix: `{"op":"pub","subject":"${cfg.subject}","data":{"t":`,
      pubSuffix: `,"pad":"${'p'.repeat(cfg.pad)}"}}`,
      rate: cfg.rate,
    });
    lc.start();
    await waitPhase(lc, 'ready', 120000);
    await waitSubs(server, cfg.subscribers);
    const s0 = await server.stats();
    const t0 = performance.now();
    lc.go(cfg.seconds * 1000, cfg.warmup);
    let st = await waitPhase(lc, 'done', (cfg.seconds + 60) * 1000);
    const s1 = await server.stats();
    const wall = (performance.now() - t0) / 1000;
    // Deliveries still queued at the deadline are late, not lost: wait for them (up to
    // 20 s) so that the histogram holds them; what never arrives counts as lost.
    const expected = st.sent * cfg.subscribers;
    for (let i = 0; i < 400 && st.received < expected; i++) {
      await sleep(50);
      st = lc.stats();
    }
    lc.stop();
    await server.stop();
    return {
      ...st.latency,
      rate: st.received / wall,
      lost: Math.max(0, expected - st.received),
      serverCores: (s1.cpuUs - s0.cpuUs) / 1e6 / wall,
      lagUs: st.publisherLagNs / 1000,
    };
  }

  for (const t of targets()) {
    process.stderr.write(`  ${scenario} ${t.name}: ${cfg.subscribers} subscribers, ${cfg.rate} pubs/s`);
    const rs = [];
    for (let r = 0; r < reps; r++) {
      rs.push(await once(t));
      process.stderr.write(` . p99 ${(rs.at(-1).p99 / 1000).toFixed(0)} us`);
    }
    process.stderr.write('\n');
    const p = `gateway.${scenario}.${t.name}`;
    for (const k of ['p50', 'p99', 'p999', 'max']) emit(`${p}.${k}`, 'us', rs.map((x) => x[k] / 1000));
    emit(`${p}.rate`, 'deliveries/s', rs.map((x) => x.rate));
    emit(`${p}.lost`, 'msgs', rs.map((x) => x.lost));
    emit(`${p}.server_cores`, 'cores', rs.map((x) => x.serverCores));
    emit(`${p}.publisher_lag`, 'us', rs.map((x) => x.lagUs));
  }
}
