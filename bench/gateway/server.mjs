// The server under test, in its own process so that its CPU seconds and RSS are its own
// (process.cpuUsage() here counts every thread: the native I/O threads too). Driven by
// the scenario over IPC:
//   { cmd: 'start', kind: 'myelin' | 'ws', io, scenario }  -> { port }
//   { cmd: 'stats', gc? }  -> { cpuUs, rss, count, subs }
//   { cmd: 'stop' }        -> exits
// kind 'myelin': the Gateway (one I/O thread, the given backend); a bus subscriber on
// `bench.>` counts ingested events without reading their data.
// kind 'ws': the `ws` package, the anchor: JSON.parse per message; `pub` counted
// (ingest), relayed through an EventEmitter to subscribers (e2e), or sent by one
// broadcast loop over the subject's sockets, serialized once (fan-out).
// scenario 'chat': the Gateway's /v1/chat/completions over an AIClient whose provider is
// the simulator at `simUrl`.
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

// MYELIN_BENCH_DIST: another build of dist/esm (a snapshot, while dist/ is being rebuilt).
const dist = process.env.MYELIN_BENCH_DIST ? pathToFileURL(`${process.env.MYELIN_BENCH_DIST}/index.js`).href : '../../dist/esm/index.js';

let count = 0;
let gw;
let wss;
let subs = 0;

function rssBytes() {
  // /proc reads the resident set now (process.memoryUsage().rss does too, but this is
  // what the scenario would read from outside).
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

async function startMyelin({ io, scenario, simUrl }) {
  const { Gateway, AIClient, Bus } = await import(dist);
  const bus = new Bus();
  let ai;
  if (scenario === 'chat') {
    ai = new AIClient({ providers: [{ name: 'sim', kind: 'openai', baseURL: `${simUrl}/v1`, apiKey: 'sk-bench' }] });
  }
  if (scenario === 'ingest') bus.subscribe('bench.>', () => count++);
  gw = new Gateway({ port: 0, io, ioThreads: 1, bus, ai, maxConnections: 20000, pingIntervalMs: 0, maxBufferedBytes: 64 << 20 });
  const { port } = await gw.listen();
  return port;
}

async function startWs({ scenario }) {
  const { WebSocketServer } = await import('ws');
  wss = new WebSocketServer({ port: 0, host: '127.0.0.1', path: '/ws', perMessageDeflate: false, clientTracking: false });
  await new Promise((r) => wss.once('listening', r));
  const ee = new EventEmitter();
  ee.setMaxListeners(0);
  const bySubject = new Map(); // fan-out: subject -> Set of [socket, sub id]
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (raw) => {
      const m = JSON.parse(raw);
      if (m.op === 'pub') {
        count++;
        if (scenario === 'fanout') {
          const set = bySubject.get(m.subject);
          if (!set) return;
          const out = JSON.stringify({ op: 'event', subject: m.subject, data: m.data, sub: 's' });
          for (const s of set) s.send(out);
        } else if (scenario === 'e2e') {
          ee.emit(m.subject, m);
        }
      } else if (m.op === 'sub') {
        subs++;
        if (scenario === 'fanout') {
          let set = bySubject.get(m.subject);
          if (!set) bySubject.set(m.subject, (set = new Set()));
          set.add(ws);
          ws.on('close', () => set.delete(ws));
        } else {
          const id = m.id;
          const listener = (ev) => ws.send(JSON.stringify({ op: 'event', subject: ev.subject, data: ev.data, sub: id }));
          ee.on(m.subject, listener);
          ws.on('close', () => ee.off(m.subject, listener));
        }
      }
    });
  });
  return wss.address().port;
}

process.on('message', async (msg) => {
  try {
    if (msg.cmd === 'start') {
      const port = msg.kind === 'ws' ? await startWs(msg) : await startMyelin(msg);
      process.send({ port, pid: process.pid });
    } else if (msg.cmd === 'stats') {
      if (msg.gc && global.gc) {
        global.gc();
        global.gc();
      }
      const c = process.cpuUsage();
      const s = gw?.stats();
      process.send({ cpuUs: c.user + c.system, rss: rssBytes(), count, subs: gw ? s.subscriptions : subs, websockets: gw ? s.websockets : undefined, stateBytes: gw ? s.stateBytes : undefined });
    } else if (msg.cmd === 'stop') {
      if (gw) await gw.close();
      if (wss) wss.close();
      process.exit(0);
    }
  } catch (err) {
    process.send({ error: String(err?.stack ?? err) });
  }
});
process.on('disconnect', () => process.exit(0));
