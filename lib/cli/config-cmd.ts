// `myelin config put|get`: the operator's side of configuration sync. `put` validates a
// JSON file ({ "ai": { ... } }, the `ai` schema of myelin.config.json) and stores it as
// a new version of a configuration entry in the cluster store (bus.cluster.putConfig);
// every `myelin serve` following that entry (cluster.config) reloads it. `get` prints
// the current version. The store is reached through a short-lived cluster bus on the
// transport given by --transport or MYELIN_BUS_TRANSPORT.
import { resolve } from 'node:path';
import { Bus } from '../bus/bus.js';
import { MyelinError } from '../errors.js';
import { CONFIG_NAME_RE, type Env, parseClusterEntry, readJSONFile, transportFromURL } from './serve-config.js';
import { redactURL } from './serve-cluster.js';

export const CONFIG_USAGE = `usage:
  myelin config put NAME FILE.json [--transport URL]   validate FILE's ai section and store it as a new version of NAME
  myelin config get NAME [--transport URL]             print NAME's current version and value
  --transport nats://host:4222 | redis://host:6379     the cluster store (default: MYELIN_BUS_TRANSPORT)
  --prefix P       Redis key prefix (default myelin; as bus.transport.prefix on the nodes)
FILE holds { "ai": { providers, models, retry, breaker, limits, cache, timeouts } }, the schema of
myelin.config.json's ai section. Keep keys out of it: name them with apiKeyEnv, read on each node.`;

export interface ConfigIO {
  stdout?: { write(s: string): unknown };
  stderr?: { write(s: string): unknown };
  env?: Env;
  cwd?: string;
}

class UsageError extends Error {}

interface Parsed {
  positional: string[];
  transport?: string;
  prefix?: string;
  help: boolean;
}

function parse(args: readonly string[]): Parsed {
  const out: Parsed = { positional: [], help: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--help' || a === '-h') {
      out.help = true;
      continue;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const flag = eq === -1 ? a : a.slice(0, eq);
      if (flag !== '--transport' && flag !== '--prefix') throw new UsageError(`unknown flag '${flag.slice(0, 40)}'`);
      let v: string;
      if (eq !== -1) v = a.slice(eq + 1);
      else {
        if (i + 1 >= args.length) throw new UsageError(`${flag} expects a value`);
        v = args[++i];
      }
      if (v === '') throw new UsageError(`${flag} expects a value`);
      if (flag === '--transport') out.transport = v;
      else out.prefix = v;
      continue;
    }
    out.positional.push(a);
  }
  return out;
}

export async function configCommand(args: string[], io: ConfigIO = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const env = io.env ?? process.env;
  const fail = (msg: string, code: number) => {
    stderr.write(`myelin config: ${msg}\n`);
    return code;
  };
  let p: Parsed;
  try {
    p = parse(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return fail(`${err.message}\n${CONFIG_USAGE}`, 2);
  }
  if (p.help) {
    stdout.write(`${CONFIG_USAGE}\n`);
    return 0;
  }
  const [sub, name, file, ...extra] = p.positional;
  const want = sub === 'put' ? 2 : sub === 'get' ? 1 : -1;
  if (want === -1) return fail(`${sub === undefined ? 'expected put or get' : `unknown subcommand '${sub.slice(0, 40)}'`}\n${CONFIG_USAGE}`, 2);
  if (p.positional.length - 1 !== want || extra.length > 0) return fail(`${sub} expects ${want === 2 ? 'NAME FILE.json' : 'NAME'}\n${CONFIG_USAGE}`, 2);
  if (!CONFIG_NAME_RE.test(name)) return fail(`NAME must be 1 to 128 letters, digits, '_' or '-'`, 2);

  const rawTransport = p.transport ?? env.MYELIN_BUS_TRANSPORT?.trim();
  if (rawTransport === undefined || rawTransport === '') return fail('no cluster store: pass --transport nats://host:4222 or redis://host:6379 (or set MYELIN_BUS_TRANSPORT)', 2);
  const transport = transportFromURL(rawTransport);
  if (transport === undefined) return fail('--transport must be a nats:// URL (or a comma-separated list of them) or a redis:// URL', 2);
  if (p.prefix !== undefined) {
    if (transport.kind !== 'redis') return fail('--prefix is a Redis setting', 2);
    (transport as { prefix?: string }).prefix = p.prefix;
  }

  // Checked before connecting: a bad file never reaches the store.
  let value: unknown;
  if (sub === 'put') {
    try {
      value = parseClusterEntry(readJSONFile(resolve(io.cwd ?? process.cwd(), file), 'file'), `file ${file}`);
    } catch (err) {
      if (!(err instanceof MyelinError) || err.code !== 'ERR_INVALID_ARGUMENT') throw err;
      return fail(err.message, 2);
    }
  }

  const where = transport.kind === 'redis' ? redactURL(transport.url) : [transport.servers].flat().map(redactURL).join(',');
  let bus: Bus;
  try {
    // A short heartbeat TTL is not needed: close() withdraws the registry entry.
    bus = new Bus({ transport: { ...transport, connectTimeoutMs: 5000 } });
  } catch (err) {
    if (!(err instanceof MyelinError) || err.code !== 'ERR_INVALID_ARGUMENT') throw err;
    return fail(`invalid transport: ${err.message}`, 2);
  }
  try {
    await bus.ready;
    if (sub === 'put') {
      const version = await bus.cluster!.putConfig(name, value);
      stdout.write(`${name} version ${version}\n`);
    } else {
      const e = await bus.cluster!.getConfig(name);
      if (e === undefined) {
        stderr.write(`myelin config: ${name} is not in the cluster store at ${where}\n`);
        return 1;
      }
      stdout.write(`${JSON.stringify({ name: e.name, version: e.version, value: e.value }, null, 2)}\n`);
    }
    return 0;
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    return fail(`${typeof e.code === 'string' ? `${e.code}: ` : ''}${String(e.message)} (store at ${where})`, 1);
  } finally {
    await bus.close().catch(() => {});
  }
}
