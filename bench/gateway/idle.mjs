// Idle connections: N WebSocket connections (default 19,000; the fd limit here is
// 20,000 per process, so the client is this process and the server a child) upgrade and
// stay silent. Server RSS after a full GC at N open, minus the same at 1,000 open, over
// the N - 1,000 connections opened in between.
// For myelin, also the native connection state the server reports (the slab's bytes
// over open WebSockets, plus the reactor's per-socket slot and the connection tables):
// what an idle connection costs in the allocator, which RSS deltas here cannot resolve.
//   gateway.idle.<ws|epoll|io_uring>   KB per connection (RSS delta)
//   gateway.idle.<epoll|io_uring>.state  KB per connection (native state)
import { emit } from '../lib.mjs';
import { addon, sleep, startServer, targets, waitPhase } from './fixtures.mjs';

const n = Number(process.env.MYELIN_BENCH_IDLE ?? 19000);
const reps = Math.max(1, Number(process.env.MYELIN_BENCH_IDLE_REPEATS ?? 1));

for (const t of targets()) {
  const per = [];
  const state = [];
  const cpu = [];
  let opened = 0;
  process.stderr.write(`  idle ${t.name}: ${n} connections`);
  for (let r = 0; r < reps; r++) {
    const server = await startServer(t.kind, t.io, 'idle');
    // RSS at 1,000 open connections is the baseline, not RSS at none: between two
    // readings the process also hands back start-up memory (a few MB, which made a
    // none-based delta negative); with connections already open on both sides the
    // difference is what the next n - 1,000 connections cost.
    const base = 1000;
    const lc0 = new addon.LoadClient({ port: server.port, mode: 'idle', connections: base });
    lc0.start();
    await waitPhase(lc0, 'ready', 120000);
    await server.stats(true);
    await sleep(1000);
    const before = await server.stats(true);
    const lc = new addon.LoadClient({ port: server.port, mode: 'idle', connections: n - base });
    lc.start();
    const st = await waitPhase(lc, 'ready', 120000);
    await server.stats(true);
    await sleep(1000);
    const after = await server.stats(true);
    opened = st.upgraded + lc0.stats().upgraded;
    per.push((after.rss - before.rss) / 1024 / st.upgraded);
    // 40 B reactor slot + 12 B of connection tables per socket, beside the slab block.
    if (after.stateBytes !== undefined && after.websockets > 0) state.push((after.stateBytes / after.websockets + 52) / 1024);
    cpu.push((after.cpuUs - before.cpuUs) / 1e6);
    lc0.stop();
    lc.stop();
    await server.stop();
    process.stderr.write(` . (${st.upgraded} open, ${st.failed} failed)`);
  }
  process.stderr.write('\n');
  emit(`gateway.idle.${t.name}`, 'KB', per, { connections: opened });
  if (state.length) emit(`gateway.idle.${t.name}.state`, 'KB', state, { connections: opened });
  emit(`gateway.idle.${t.name}.server_cpu`, 's', cpu);
}
