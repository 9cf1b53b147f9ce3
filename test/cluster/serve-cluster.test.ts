// `myelin serve` on a cluster, on both engines (the shared NATS at 127.0.0.1:4222 with
// JetStream, the shared Redis at 127.0.0.1:6379): two real serve processes follow one
// configuration entry; `myelin config put` publishes versions; both nodes serve the new
// aliases (the official openai SDK) after each reload, keep the version they run when a
// version is refused (a schema error, a key variable this node lacks), report it in
// /api/cluster and in the registry (bus.cluster.nodes()). Each engine gets its own
// configuration name, stream / key prefix and upstream simulator, removed afterwards.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { AIClient } from '../../lib/ai/client/ai-client.js';
import { UpstreamSimulator } from '../../lib/ai/simulator/index.js';
import { Bus } from '../../lib/bus/bus.js';
import { Gateway } from '../../lib/gateway/gateway.js';
import { type Kind, NATS, REDIS, removeMade, sleep, uid } from './engines.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

async function until<T>(f: () => Promise<T | undefined | false>, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(100);
  }
}

/** The environment of a spawned command: none of the developer's MYELIN_/provider variables. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(MYELIN_|OPENAI_|ANTHROPIC_|OLLAMA_)/.test(k))) as Record<string, string>;
  // Nothing listens on port 1: discovery falls through to the built-in simulator at once.
  return { ...base, OLLAMA_HOST: '127.0.0.1:1', ...extra };
}

interface Node {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

async function startServe(configFile: string): Promise<Node> {
  const child = spawn(process.execPath, [join(root, 'bin', 'myelin.mjs'), 'serve', '--port', '0', '--config', configFile], {
    cwd: dirname(configFile),
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /myelin gateway listening on (http:\/\/\S+)/.exec(out);
      if (m && out.includes('/api/cluster')) resolve(m[1]);
    });
    void exited.then((code) => reject(new Error(`serve exited ${code} before listening:\n${err}`)));
  });
  return { child, url, stderr: () => err, exited };
}

/** Runs `myelin config ...`; resolves with its exit code and output. */
function configCmd(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(root, 'bin', 'myelin.mjs'), 'config', ...args], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((r) => child.on('exit', (code) => r({ code, stdout, stderr })));
}

interface ClusterView {
  node: { id: string; config: { name: string; version: number | null; source: string; rejected: { version: number; issues: Array<{ path: string; message: string }> } | null } };
  nodes: Array<{ id: string; config: Record<string, number>; seenAt: number }>;
}

async function clusterView(url: string): Promise<ClusterView> {
  const r = await fetch(`${url}/api/cluster`);
  expect(r.status).toBe(200);
  return (await r.json()) as ClusterView;
}

async function modelIds(client: OpenAI): Promise<string[]> {
  const ids: string[] = [];
  for await (const m of client.models.list()) ids.push(m.id);
  return ids;
}

const streams: string[] = [];
const prefixes: string[] = [];
const names: string[] = [];

afterAll(() => removeMade({ streams, prefixes, configs: names }));

describe.each<Kind>(['nats', 'redis'])('myelin serve on a %s cluster: configuration sync', (kind) => {
  it('two nodes follow one entry: reload on each version, keep the applied one on a refused version, report it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'myelin-serve-cluster-'));
    const name = `serve_${kind}_${uid()}`;
    names.push(name);
    let transport: Record<string, unknown>;
    let transportURL: string;
    const extraFlags: string[] = [];
    if (kind === 'nats') {
      const stream = `SC_${uid()}`;
      streams.push(stream);
      transport = { kind, servers: NATS, stream, heartbeatMs: 300 };
      transportURL = NATS;
    } else {
      const prefix = `sc${uid()}`;
      prefixes.push(prefix);
      transport = { kind, url: REDIS, prefix, heartbeatMs: 300 };
      transportURL = REDIS;
      extraFlags.push('--prefix', prefix);
    }
    const configFile = join(dir, 'myelin.config.json');
    writeFileSync(configFile, JSON.stringify({ bus: { transport }, cluster: { config: name, pollMs: 200 } }));

    const sim = new UpstreamSimulator({ models: ['sim-a', 'sim-b'], latencyMs: 0 });
    const { url: simURL } = await sim.listen(0, '127.0.0.1');
    const provider = { name: 'sim', kind: 'openai', baseURL: `${simURL}/v1` };
    const entry = (models: Record<string, string>, extra: Record<string, unknown> = {}) => ({ ai: { providers: [{ ...provider, ...extra }], models } });

    // A bus of the test's own on the same store: puts an entry the command would refuse, reads the registry.
    const bus = new Bus({ transport: { ...transport } as { kind: Kind } });
    const nodes: Node[] = [];
    try {
      await bus.ready;
      nodes.push(...(await Promise.all([startServe(configFile), startServe(configFile)])));
      const clients = nodes.map((n) => new OpenAI({ baseURL: `${n.url}/v1`, apiKey: 'unused', maxRetries: 0 }));
      // Not in the store yet: each node runs its file's (empty) ai section, the built-in simulator.
      for (const n of nodes) expect((await clusterView(n.url)).node.config).toMatchObject({ name, version: null, source: 'file' });

      // Version 1 routes `alpha` to the simulator's sim-a.
      const f1 = join(dir, 'v1.json');
      writeFileSync(f1, JSON.stringify(entry({ alpha: 'sim/sim-a' })));
      const put1 = await configCmd(['put', name, f1, '--transport', transportURL, ...extraFlags]);
      expect(put1.stderr).toBe('');
      expect(put1.code).toBe(0);
      const v1 = Number(new RegExp(`^${name} version (\\d+)\\n$`).exec(put1.stdout)?.[1]);
      expect(v1).toBeGreaterThan(0);
      for (const [i, c] of clients.entries()) {
        await until(async () => (await modelIds(c)).includes('alpha'), `node ${i} to serve alpha`);
        const { data, response } = await c.chat.completions.create({ model: 'alpha', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
        expect(data.choices[0].message.content?.length).toBeGreaterThan(0);
        expect(response.headers.get('x-myelin-target')).toBe('sim/sim-a');
        expect((await clusterView(nodes[i].url)).node.config).toMatchObject({ version: v1, source: 'cluster', rejected: null });
      }

      // Version 2 replaces it with `beta` (sim-b): both nodes switch, alpha is gone.
      const f2 = join(dir, 'v2.json');
      writeFileSync(f2, JSON.stringify(entry({ beta: 'sim/sim-b' })));
      const put2 = await configCmd(['put', name, f2, '--transport', transportURL, ...extraFlags]);
      expect(put2.code).toBe(0);
      const v2 = Number(/version (\d+)/.exec(put2.stdout)?.[1]);
      expect(v2).toBeGreaterThan(v1);
      for (const [i, c] of clients.entries()) {
        await until(async () => {
          const ids = await modelIds(c);
          return ids.includes('beta') && !ids.includes('alpha');
        }, `node ${i} to switch to beta`);
        const { response } = await c.chat.completions.create({ model: 'beta', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
        expect(response.headers.get('x-myelin-target')).toBe('sim/sim-b');
        await expect(c.chat.completions.create({ model: 'alpha', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 404 });
      }

      // The command refuses a file that fails the schema: exit 2, nothing stored.
      const bad = join(dir, 'bad.json');
      writeFileSync(bad, JSON.stringify(entry({ gamma: 'not-a-target' }, { kind: 'openaix' })));
      const putBad = await configCmd(['put', name, bad, '--transport', transportURL, ...extraFlags]);
      expect(putBad.code).toBe(2);
      expect(putBad.stderr).toContain('ai.providers[0].kind');
      expect(putBad.stderr).toContain('ai.models.gamma');
      expect((await bus.cluster!.getConfig(name))?.version).toBe(v2);

      // Version 3 passes the schema but names a key variable these nodes lack: refused by each node.
      const v3 = await bus.cluster!.putConfig(name, entry({ gamma: 'sim/sim-a' }, { apiKeyEnv: 'MYELIN_TEST_NO_SUCH_KEY' }));
      for (const n of nodes) {
        const view = await until(async () => {
          const v = await clusterView(n.url);
          return v.node.config.rejected?.version === v3 ? v : undefined;
        }, 'version 3 to be refused');
        expect(view.node.config.version).toBe(v2);
        expect(view.node.config.rejected!.issues).toEqual([{ path: 'ai.providers[0].apiKeyEnv', message: 'environment variable MYELIN_TEST_NO_SUCH_KEY is empty or unset' }]);
      }
      // Version 4 fails the schema (put past the command's check): refused too.
      const v4 = await bus.cluster!.putConfig(name, { ai: { models: { gamma: 42 } }, port: 1 });
      const refusedAt = Date.now();
      for (const [i, n] of nodes.entries()) {
        const view = await until(async () => {
          const v = await clusterView(n.url);
          return v.node.config.rejected?.version === v4 ? v : undefined;
        }, 'version 4 to be refused');
        expect(view.node.config.version).toBe(v2);
        expect(view.node.config.rejected!.issues.map((x) => x.path).sort()).toEqual(['ai.models.gamma', 'port']);
        expect(n.stderr()).toContain(`configuration ${name}: version ${v4} rejected; still running version ${v2}`);
        expect(n.stderr()).toContain(`configuration ${name}: reloaded version ${v2} (was version ${v1})`);
        // Still serving version 2.
        const { response } = await clients[i].chat.completions.create({ model: 'beta', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
        expect(response.headers.get('x-myelin-target')).toBe('sim/sim-b');
        expect(await modelIds(clients[i])).not.toContain('gamma');
      }

      // The registry lists both nodes, each reporting the version it runs (from a heartbeat after the refusals).
      const ids = await Promise.all(nodes.map(async (n) => (await clusterView(n.url)).node.id));
      expect(new Set(ids).size).toBe(2);
      const listed = await until(async () => {
        const all = await bus.cluster!.nodes();
        const ours = all.filter((n) => ids.includes(n.id));
        return ours.length === 2 && ours.every((n) => n.seenAt > refusedAt + 100) ? ours : undefined;
      }, 'both nodes in the registry after the refusals');
      for (const n of listed) expect(n.config[name]).toBe(v2);
      // Each node's /api/cluster lists the other too.
      for (const n of nodes) {
        const listedThere = (await clusterView(n.url)).nodes.map((x) => x.id);
        expect(listedThere).toEqual(expect.arrayContaining(ids));
      }

      for (const n of nodes) n.child.kill('SIGTERM');
      expect(await Promise.all(nodes.map((n) => n.exited))).toEqual([0, 0]);
    } finally {
      for (const n of nodes) n.child.kill('SIGKILL');
      await bus.close();
      await sim.close();
    }
  });
});

describe('myelin serve on a cluster: startup errors', () => {
  /** Runs serve with a config file; resolves with the exit code and stderr. */
  async function run(config: unknown, env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string; stdout: string }> {
    const dir = mkdtempSync(join(tmpdir(), 'myelin-serve-cluster-'));
    writeFileSync(join(dir, 'myelin.config.json'), JSON.stringify(config));
    const child = spawn(process.execPath, [join(root, 'bin', 'myelin.mjs'), 'serve', '--port', '0'], { cwd: dir, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    return { code, stderr, stdout };
  }

  it('an engine that does not answer: exit 1, saying where and what to check; a transport the bus refuses: exit 2, a config error', async () => {
    const [down, refused, noBus] = await Promise.all([
      // Port 1: nothing listens. The URL's password is never printed.
      run({ bus: { transport: { kind: 'redis', url: 'redis://:hunter2@127.0.0.1:1', connectTimeoutMs: 300 } } }),
      run({ bus: { transport: { kind: 'nats', servers: NATS, replicas: 9 } } }),
      run({ cluster: { config: 'x' } }),
    ]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('ERR_TRANSPORT_UNAVAILABLE: cannot reach the cluster bus (redis redis://***@127.0.0.1:1)');
    expect(down.stderr).toContain('MYELIN_BUS_TRANSPORT');
    expect(down.stderr).not.toContain('hunter2');
    expect(down.stdout).toBe('');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('invalid bus.transport (config file or MYELIN_BUS_TRANSPORT)');
    expect(refused.stderr).toContain('transport.replicas must be an integer from 1 to 5, got 9');
    expect(noBus.code).toBe(2);
    expect(noBus.stderr).toContain('cluster.config (or MYELIN_CLUSTER_CONFIG) needs a cluster bus');
  });
});

describe('Gateway.replaceAI: the hot swap serve uses', () => {
  it('new requests go to the new client; one in flight finishes on the old one, and only then does replaceAI resolve', async () => {
    const sim = new UpstreamSimulator({ models: ['m'], latencyMs: 0 });
    const { url: simURL } = await sim.listen(0, '127.0.0.1');
    const provider = { name: 'sim', kind: 'openai' as const, baseURL: `${simURL}/v1` };
    const oldAI = new AIClient({ providers: [provider], models: { old: 'sim/m' } });
    const newAI = new AIClient({ providers: [provider], models: { new: 'sim/m' } });
    const gw = new Gateway({ port: 0, ioThreads: 1, ai: oldAI, forwardHeaders: ['x-sim-*'] });
    try {
      const { port } = await gw.listen();
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused', maxRetries: 0 });
      // Held upstream for 3 s (the simulator's per-request latency header, forwarded).
      let slowSettled = false;
      const slow = client.chat.completions
        .create({ model: 'old', messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-sim-latency-ms': '3000' } })
        .finally(() => (slowSettled = true));
      await until(async () => gw.stats().httpInFlight === 1, 'the slow request to be in flight');
      let swapped = false;
      const idle = gw.replaceAI(newAI).then(() => (swapped = true));
      // New requests see the new catalog at once.
      const ids = await modelIds(client);
      expect(ids).toContain('new');
      expect(ids).not.toContain('old');
      // While the old client still serves a request, the swap is not done with it.
      if (!slowSettled) expect(swapped).toBe(false);
      const r = await slow;
      expect(r.choices[0].message.content?.length).toBeGreaterThan(0);
      await idle;
      expect(swapped).toBe(true);
      // Nothing in flight: the next swap resolves at once.
      await gw.replaceAI(oldAI);
      expect(await modelIds(client)).toContain('old');
    } finally {
      await gw.close();
      await oldAI.close();
      await newAI.close();
      await sim.close();
    }
  });
});
