// The `myelin` command line.
import { MyelinError } from '../errors.js';
import { runBench } from './bench.js';
import { simulateCommand } from './simulate.js';

const USAGE = `usage:
  myelin serve [--config myelin.config.json] [--port 8080] [--host 127.0.0.1]
                                     the gateway: event bus, OpenAI-compatible API, metrics (--help for env and config)
  myelin bench [core|bus|ai|gateway|metrics|cluster|all] [--json]   benchmarks against their anchors, a table at the end
  myelin report [--url http://127.0.0.1:8080] [--from -1h] [--to now] [--out report.html]
                                     a self-contained HTML performance report from a running gateway's metrics history
  myelin config put NAME FILE.json --transport nats://host:4222|redis://host:6379
                                     store a new version of a cluster configuration entry (the ai section);
                                     every serve with cluster.config NAME reloads it (--help for more)
  myelin simulate [--port 9100] [--latency-ms 200] [--tokens-per-s 80] [--error-rate 0.01] [--rpm 600] ...
                                     OpenAI/Anthropic/Ollama-compatible upstream simulator (--help for all flags)
  myelin help`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'bench': {
      const json = rest.includes('--json');
      const suite = rest.find((a) => !a.startsWith('--')) ?? 'all';
      const { results, table, failed } = await runBench({ suite, json });
      if (json) process.stdout.write(`${JSON.stringify({ results, failed }, null, 2)}\n`);
      else process.stdout.write(`\n${table}\n`);
      return failed.length ? 1 : 0;
    }
    case 'serve':
      // Loaded on use: it brings the bus, the AI client and the gateway with it.
      return (await import('./serve.js')).serveCommand(rest);
    case 'simulate':
      return simulateCommand(rest);
    case 'config':
      return (await import('./config-cmd.js')).configCommand(rest);
    case 'report':
      return (await import('./report.js')).reportCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return cmd === undefined ? 1 : 0;
    default:
      process.stderr.write(`myelin: unknown command '${cmd}'\n${USAGE}\n`);
      return 2;
  }
}

export function run(argv: string[]): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      const e = err as MyelinError;
      process.stderr.write(`myelin: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
      process.exitCode = 1;
    },
  );
}
