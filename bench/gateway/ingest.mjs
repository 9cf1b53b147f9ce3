// WebSocket ingest: 100 connections write ~1 KiB JSON `pub` frames, pre-masked, 64 per
// write (the native load client), for a few seconds per repeat. Measured on the server:
// events that reached a bus subscriber (myelin) or were JSON.parse'd (ws) per second of
// wall time and per server CPU-second (every server thread counted). The client's own
// CPU is reported to show it is not the bottleneck.
//   gateway.ingest.<ws|epoll|io_uring>          msgs/s
//   gateway.ingest.<...>.per_cpu                msgs per server CPU-second
//   gateway.ingest.<...>.server_cores / .client_cores
import { emit, repeats } from '../lib.mjs';
import { addon, pubFrame, sleep, startServer, targets, waitPhase } from './fixtures.mjs';

const seconds = Number(process.env.MYELIN_BENCH_SECONDS ?? 2);
const frame = pubFrame('bench.ingest');

async function once(server, port) {
  const lc = new addon.LoadClient({ port, mode: 'ingest', connections: 100, batch: 64, pubFrame: frame });
  lc.start();
  await waitPhase(lc, 'ready');
  const c0 = process.cpuUsage();
  const s0 = await server.stats();
  const t0 = performance.now();
  lc.go(seconds * 1000);
  await sleep(seconds * 1000);
  const s1 = await server.stats();
  const t1 = performance.now();
  const c1 = process.cpuUsage(c0);
  await waitPhase(lc, 'done', 30000).catch(() => {});
  const st = lc.stats();
  lc.stop();
  const wall = (t1 - t0) / 1000;
  const cpu = (s1.cpuUs - s0.cpuUs) / 1e6;
  const n = s1.count - s0.count;
  await sleep(300); // what the sockets still held drains before the next repeat
  return { rate: n / wall, perCpu: n / cpu, serverCores: cpu / wall, clientCores: (c1.user + c1.system) / 1e6 / wall, sent: st.sent, failed: st.failed };
}

for (const t of targets()) {
  const server = await startServer(t.kind, t.io, 'ingest');
  process.stderr.write(`  ingest ${t.name}: warm-up`);
  await once(server, server.port);
  const rs = [];
  for (let r = 0; r < repeats; r++) {
    rs.push(await once(server, server.port));
    process.stderr.write(' .');
  }
  process.stderr.write('\n');
  await server.stop();
  const p = `gateway.ingest.${t.name}`;
  emit(p, 'msgs/s', rs.map((x) => x.rate), { failed: Math.max(...rs.map((x) => x.failed)) });
  emit(`${p}.per_cpu`, 'msgs/cpu-s', rs.map((x) => x.perCpu));
  emit(`${p}.server_cores`, 'cores', rs.map((x) => x.serverCores));
  emit(`${p}.client_cores`, 'cores', rs.map((x) => x.clientCores));
}
