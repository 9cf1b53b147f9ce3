// `myelin simulate`: the OpenAI/Anthropic/Ollama-compatible upstream simulator as a
// command. Runs until SIGINT or SIGTERM (or `io.signal`, for tests), then closes cleanly.
import { UpstreamSimulator, type UpstreamSimulatorOptions } from '../ai/simulator/index.js';

export const SIMULATE_USAGE = `usage: myelin simulate [options]
  --port N               port to listen on (default 9100; 0 picks a free one)
  --host H               address to bind (default 127.0.0.1)
  --latency-ms N         delay before the first byte (default 0)
  --jitter-ms N          extra random delay in [0, N) (default 0)
  --tokens-per-s N       streaming pace, 0 = unpaced (default 0)
  --error-rate R         share of requests in [0, 1] answered 5xx (Anthropic: 529) (default 0)
  --rpm N                requests per minute per provider before 429s, 0 = none (default 0)
  --tpm N                tokens per minute shown in rate-limit headers (default 1000000)
  --seed N               content seed (default 1)
  --tokens N             completion length in tokens (default 16)
  --embedding-dims N     embedding size (default 16)
  --models a,b,c         models listed by /v1/models and /api/tags
  --max-body-bytes N     larger request bodies get 413 (default 8388608)
  --loading-ms N         answer 503 "Loading model" for N ms after start, as llama.cpp (default 0)
  --retry-after-format seconds|date   form of computed retry-after values (default seconds)
  --api-key-env NAME     require the key held in environment variable NAME
  --quiet                no request log`;

const ENDPOINTS = `  OpenAI     POST /v1/chat/completions   POST /v1/embeddings   GET /v1/models
  Anthropic  POST /v1/messages   POST /v1/messages/count_tokens   (anthropic-version required)
  Ollama     POST /api/chat   POST /api/embed   GET /api/tags
  llama.cpp  GET /health
  faults     x-sim-fault: 429|quota|billing|401|500|502|503|529|midstream-error|truncate|reset|stall|split-utf8
             x-sim-fault-after  x-sim-retry-after  x-sim-retry-after-ms  x-sim-should-retry  x-sim-seed
             x-sim-tokens  x-sim-latency-ms  x-sim-tokens-per-s  x-sim-tool-calls  x-sim-keepalive-ms`;

export interface SimulateIO {
  stdout?: { write(s: string): unknown };
  stderr?: { write(s: string): unknown };
  /** Stops the simulator like SIGINT does. */
  signal?: AbortSignal;
  /** Called once listening, with the URL. */
  onListening?: (url: string) => void;
}

class UsageError extends Error {}

type Kind = 'int' | 'number' | 'rate' | 'string' | 'format' | 'list';

const FLAGS: Record<string, { key: keyof UpstreamSimulatorOptions | 'port' | 'host' | 'apiKeyEnv'; kind: Kind }> = {
  '--port': { key: 'port', kind: 'int' },
  '--host': { key: 'host', kind: 'string' },
  '--latency-ms': { key: 'latencyMs', kind: 'number' },
  '--jitter-ms': { key: 'jitterMs', kind: 'number' },
  '--tokens-per-s': { key: 'tokensPerS', kind: 'number' },
  '--error-rate': { key: 'errorRate', kind: 'rate' },
  '--rpm': { key: 'rpm', kind: 'int' },
  '--tpm': { key: 'tpm', kind: 'int' },
  '--seed': { key: 'seed', kind: 'int' },
  '--tokens': { key: 'tokens', kind: 'int' },
  '--embedding-dims': { key: 'embeddingDims', kind: 'int' },
  '--models': { key: 'models', kind: 'list' },
  '--max-body-bytes': { key: 'maxBodyBytes', kind: 'int' },
  '--loading-ms': { key: 'loadingMs', kind: 'number' },
  '--retry-after-format': { key: 'retryAfterFormat', kind: 'format' },
  '--api-key-env': { key: 'apiKeyEnv', kind: 'string' },
};

function value(flag: string, kind: Kind, raw: string): unknown {
  switch (kind) {
    case 'int':
      if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) throw new UsageError(`${flag} expects a non-negative integer, got '${raw}'`);
      return Number(raw);
    case 'number':
      if (!/^\d+(\.\d+)?$/.test(raw)) throw new UsageError(`${flag} expects a non-negative number, got '${raw}'`);
      return Number(raw);
    case 'rate': {
      const n = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
      if (!(n >= 0 && n <= 1)) throw new UsageError(`${flag} expects a number in [0, 1], got '${raw}'`);
      return n;
    }
    case 'format':
      if (raw !== 'seconds' && raw !== 'date') throw new UsageError(`${flag} expects seconds or date, got '${raw}'`);
      return raw;
    case 'list': {
      const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
      if (items.length === 0) throw new UsageError(`${flag} expects a comma-separated list`);
      return items;
    }
    default:
      if (raw === '') throw new UsageError(`${flag} expects a value`);
      return raw;
  }
}

interface Parsed {
  port: number;
  host: string;
  quiet: boolean;
  help: boolean;
  apiKeyEnv?: string;
  options: UpstreamSimulatorOptions;
}

export function parseSimulateArgs(args: string[]): Parsed {
  const out: Parsed = { port: 9100, host: '127.0.0.1', quiet: false, help: false, options: {} };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--quiet') {
      out.quiet = true;
      continue;
    }
    if (arg === '--help' || arg === '-h') {
      out.help = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const spec = FLAGS[flag];
    if (!spec) throw new UsageError(`unknown ${arg.startsWith('-') ? 'flag' : 'argument'} '${flag}'`);
    let raw: string;
    if (eq !== -1) raw = arg.slice(eq + 1);
    else {
      if (i + 1 >= args.length) throw new UsageError(`${flag} expects a value`);
      raw = args[++i];
    }
    const v = value(flag, spec.kind, raw);
    if (spec.key === 'port') {
      if ((v as number) > 65535) throw new UsageError(`--port expects an integer in [0, 65535], got '${raw}'`);
      out.port = v as number;
    } else if (spec.key === 'host') out.host = v as string;
    else if (spec.key === 'apiKeyEnv') out.apiKeyEnv = v as string;
    else (out.options as Record<string, unknown>)[spec.key] = v;
  }
  return out;
}

export async function simulateCommand(args: string[], io: SimulateIO = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  let parsed: Parsed;
  try {
    parsed = parseSimulateArgs(args);
    if (parsed.apiKeyEnv !== undefined) {
      const key = process.env[parsed.apiKeyEnv];
      if (!key) throw new UsageError(`--api-key-env: environment variable ${parsed.apiKeyEnv} is empty or unset`);
      parsed.options.apiKey = key;
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    stderr.write(`myelin simulate: ${err.message}\n${SIMULATE_USAGE}\n`);
    return 2;
  }
  if (parsed.help) {
    stdout.write(`${SIMULATE_USAGE}\n`);
    return 0;
  }
  if (!parsed.quiet) parsed.options.log = (line) => stdout.write(`${line}\n`);
  let sim: UpstreamSimulator;
  let url: string;
  try {
    sim = new UpstreamSimulator(parsed.options);
    ({ url } = await sim.listen(parsed.port, parsed.host));
  } catch (err) {
    stderr.write(`myelin simulate: ${(err as Error).message}\n`);
    return 1;
  }
  stdout.write(`myelin simulate: listening on ${url}${parsed.options.apiKey ? ' (API key required)' : ''}\n${ENDPOINTS}\n`);
  io.onListening?.(url);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      io.signal?.removeEventListener('abort', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    if (io.signal?.aborted) stop();
    else io.signal?.addEventListener('abort', stop, { once: true });
  });
  await sim.close();
  const s = sim.stats();
  stdout.write(`myelin simulate: closed after ${s.requests} requests\n`);
  return 0;
}
