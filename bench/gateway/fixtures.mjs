// Shared by the gateway scenarios: the server under test in a child process
// (server.mjs), the native load client from the addon, and waiting on its phases.
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const addon = createRequire(import.meta.url)('node-gyp-build')(root);

/** The backends this machine runs: epoll always, io_uring where the kernel allows it. */
export const backends = () => (addon.ioUringUsable() ? ['epoll', 'io_uring'] : ['epoll']);

/** The targets a scenario compares: the ws anchor, then myelin on each backend. */
export const targets = () => [{ kind: 'ws', name: 'ws' }, ...backends().map((io) => ({ kind: 'myelin', io, name: io }))];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts server.mjs in a child process; resolves with its port and an IPC face. */
export async function startServer(kind, io, scenario, extra = {}) {
  const child = fork(fileURLToPath(new URL('./server.mjs', import.meta.url)), [], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const queue = [];
  child.on('message', (m) => queue.shift()?.(m));
  const call = (msg) =>
    new Promise((resolve, reject) => {
      queue.push((m) => (m.error ? reject(new Error(m.error)) : resolve(m)));
      child.send(msg);
    });
  const exited = new Promise((r) => child.once('exit', r));
  const { port, pid } = await call({ cmd: 'start', kind, io, scenario, ...extra });
  return {
    port,
    pid,
    stats: (gc = false) => call({ cmd: 'stats', gc }),
    stop: async () => {
      child.send({ cmd: 'stop' });
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Polls the load client until it reaches `phase` (or throws after timeoutMs). */
export async function waitPhase(lc, phase, timeoutMs = 60000) {
  const order = ['connecting', 'ready', 'running', 'done'];
  const want = order.indexOf(phase);
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = lc.stats();
    if (order.indexOf(s.phase) >= want) return s;
    if (Date.now() > until) throw new Error(`load client stuck in '${s.phase}' waiting for '${phase}': ${JSON.stringify(s)}`);
    await sleep(20);
  }
}

/** Waits until the server reports at least n subscriptions (sub frames have no ack). */
export async function waitSubs(server, n, timeoutMs = 60000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = await server.stats();
    if (s.subs >= n) return;
    if (Date.now() > until) throw new Error(`server has ${s.subs} of ${n} subscriptions`);
    await sleep(50);
  }
}

/** A ~1 KiB JSON `pub` frame, as the anchors used (986 bytes there). */
export function pubFrame(subject, bytes = 986) {
  const base = { op: 'pub', subject, data: { user: 'u-12345', kind: 'order.created', amount: 1234.5, items: [], note: '' } };
  for (let i = 0; JSON.stringify(base).length < bytes - 40; i++) base.data.items.push({ sku: `sku-${i}`, qty: i % 7 });
  base.data.note = 'x'.repeat(Math.max(0, bytes - JSON.stringify(base).length));
  return JSON.stringify(base);
}

export const us = (ns) => ns / 1000;
