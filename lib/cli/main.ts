// The `myelin` command line.
import { MyelinError } from '../errors.js';
import { runBench } from './bench.js';

const USAGE = `usage:
  myelin bench [core|all] [--json]   benchmarks against their anchors, a table at the end
  myelin help`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'bench': {
      const json = rest.includes('--json');
      const suite = rest.find((a) => !a.startsWith('--')) ?? 'all';
      const { results, table } = await runBench({ suite, json });
      if (json) process.stdout.write(`${JSON.stringify({ results }, null, 2)}\n`);
      else process.stdout.write(`\n${table}\n`);
      return 0;
    }
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
