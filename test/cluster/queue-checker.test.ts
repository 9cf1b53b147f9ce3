// The Jepsen-style queue test (shared/RELIABILITY.md) on each cluster transport, against
// our own broker instance: 3 consumer processes in one queue group, a producer of N
// events (MYELIN_CHECK_EVENTS, default 20,000), and mid-stream a consumer kill -9 (and
// a replacement), a consumer SIGSTOP past its ack-wait, a broker kill -9 and restart
// (harness.ts). After healing: nothing acknowledged may be lost, nothing unexpected read.
//
// Duplicates are allowed (at-least-once) but bounded. Each fault can redeliver at most
// what the affected members held unacknowledged: a member holds at most its pull
// window (NATS: consume max_messages 512; Redis: XREADGROUP COUNT 256, taken twice at
// most while a handler batch finishes) plus the handlers running. The kill and the stop
// touch one member each, the broker restart all of them (acks in flight are lost with
// the connection): (1 + 1 + 3 + 1 replacement) members x 1,024 is the bound asserted,
// and the measured figures are printed.
import { describe, expect, it } from 'vitest';
import { formatReport } from './checker.js';
import { runQueueCheck, type Kind } from './harness.js';

const N = Number(process.env.MYELIN_CHECK_EVENTS ?? 20_000);
const PER_MEMBER = 1024;
const DUP_BOUND = 6 * PER_MEMBER;

describe.each(['nats', 'redis'] as Kind[])('queue checker on %s', (kind) => {
  it(`${N} events through consumer kill -9, SIGSTOP past ack-wait and a broker restart: nothing acknowledged is lost`, { timeout: 300_000 }, async () => {
    const lines: string[] = [];
    const log = (s: string) => {
      lines.push(s);
      process.stderr.write(`[queue-check] ${s}\n`);
    };
    // Paced so that the faults land mid-stream: about 10 s of publishing at the default N.
    const r = await runQueueCheck({ kind, events: N, rate: Math.max(1000, N / 10), ackWaitMs: 2000, healDeadlineMs: 60_000, log });
    log(`${kind}: ${formatReport(r.report)}`);
    log(`${kind}: faults: ${r.faults.map((f) => `${f.fault} @${f.atAcked}`).join('; ')}`);
    log(`${kind}: consumers: ${r.consumers.map((c) => `${c.name} ${c.killed ? 'killed' : `${c.handled} handled, ${c.redelivered} redelivered`}`).join('; ')}`);
    if (r.report.lost) log(`${kind}: lost samples: ${r.report.samples.lost.join(' ')}`);

    expect(r.faults.map((f) => f.fault)).toEqual(expect.arrayContaining(['kill -9 consumer-0', 'SIGSTOP consumer-1', 'kill -9 broker', 'broker restarted']));
    expect(r.producer.acked).toBeGreaterThan(0);
    expect(r.report.attempted).toBe(N);
    expect(r.report.unexpected).toBe(0);
    expect(r.report.lost).toBe(0);
    expect(r.healed).toBe(true);
    // JetStream 2.9 writes a durable consumer's state lazily, and after a kill -9 of the
    // server it may deliver again what was stored before the crash, as first deliveries
    // (bench/RESULTS.md "Queue checker"): on NATS the bound adds what was acknowledged
    // before the broker was killed.
    const brokerKill = r.faults.find((f) => f.fault === 'kill -9 broker')?.atAcked ?? 0;
    expect(r.report.duplicated).toBeLessThanOrEqual(DUP_BOUND + (kind === 'nats' ? brokerKill : 0));
  });
});
