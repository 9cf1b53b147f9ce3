// The queue checker at full size, for the record (bench/RESULTS.md): the same run as
// test/cluster/queue-checker.test.ts (3 consumer processes, a producer, a consumer
// kill -9, a consumer SIGSTOP past its ack-wait, a broker kill -9 and restart, all
// against our own broker instance), with 1,000,000 events by default and the producer
// unpaced. Prints progress, then one report per transport; exits 1 if anything
// acknowledged was lost or something unexpected was read.
//
//   node scripts/cluster-check.mjs [nats|redis|all] [--events 1000000] [--rate 0]
//                                  [--faults kill,stop,broker|none] [--json]
// (dist/ must be built: the consumer and producer processes load the package from it.)
import { register } from 'node:module';

register('../test/fixtures/ts-hooks.mjs', import.meta.url);
const { runQueueCheck } = await import('../test/cluster/harness.ts');
const { formatReport } = await import('../test/cluster/checker.ts');

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const which = args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--')) ?? 'all';
const kinds = which === 'all' ? ['nats', 'redis'] : [which];
const events = flag('events', Number(process.env.MYELIN_CHECK_EVENTS ?? 1_000_000));
const rate = flag('rate', 0);
const fi = args.indexOf('--faults');
const faultList = fi >= 0 ? String(args[fi + 1]).split(',') : ['kill', 'stop', 'broker'];
const faults = { killConsumer: faultList.includes('kill'), stopConsumer: faultList.includes('stop'), restartBroker: faultList.includes('broker') };
const log = (s) => process.stderr.write(`[cluster-check ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

let bad = false;
const out = [];
for (const kind of kinds) {
  log(`${kind}: ${events} events, rate ${rate || 'unpaced'}, faults ${faultList.join(',')}`);
  const t = Date.now();
  const r = await runQueueCheck({ kind, events, rate, faults, ackWaitMs: 2000, healDeadlineMs: 300_000, log });
  out.push({ ...r, wallMs: Date.now() - t });
  if (r.report.lost > 0 || r.report.unexpected > 0 || !r.healed) bad = true;
}

if (args.includes('--json')) {
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
} else {
  for (const r of out) {
    const p = r.producer;
    console.log(`\n== ${r.kind} (${r.broker}), ${(r.wallMs / 1000).toFixed(0)} s`);
    console.log(`producer: ${p.acked} acknowledged in ${(p.ms / 1000).toFixed(1)} s (${Math.round((p.acked * 1000) / p.ms)} events/s), ${p.failures} failed tries (retried with the same id), ${p.unknown} never acknowledged`);
    console.log(`faults: ${r.faults.map((f) => `${f.fault} @ ${f.atAcked} acked, ${(f.atMs / 1000).toFixed(1)} s${f.note ? ` (${f.note})` : ''}`).join('; ')}`);
    console.log(`consumers: ${r.consumers.map((c) => `${c.name}: ${c.killed ? 'killed' : `${c.handled} handled, ${c.redelivered} redelivered`}`).join('; ')}`);
    console.log(`healed: ${r.healed} after ${(r.healMs / 1000).toFixed(1)} s`);
    console.log(`checker: ${formatReport(r.report)}`);
    if (r.report.samples.lost.length) console.log(`lost (samples): ${r.report.samples.lost.join(' ')}`);
    if (r.report.samples.duplicated.length) console.log(`duplicated (samples): ${r.report.samples.duplicated.slice(0, 5).join(' ')}`);
  }
}
process.exit(bad ? 1 : 0);
