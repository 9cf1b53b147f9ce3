// One subscription of the Redis transport: which streams it reads, its read loop on a
// connection of its own (blocking reads would stall everything else on a shared one),
// and, for a queue group, the member heartbeat that decides which partitions it owns,
// the periodic claim of entries whose ack-wait passed, and the audit of entries MAXLEN
// trimmed before the group read them.
//
// Data flow: XREAD / XREADGROUP (or a claim) -> readEntry -> pattern filter -> sink.push
// -> (bus handler) -> Delivery.ack -> XACK on the transport's main connection.
//
// Ownership: live members sorted, partition p belongs to members[p % n]; one reader per
// partition stream is what keeps one key's events in order across processes. A change
// applies at the next read (a read blocks at most blockMs), so for up to about one
// heartbeat two members may both read a partition that changed hands.
import type { Redis } from 'ioredis';
import { MyelinError } from '../errors.js';
import { compareIds, firstToken, isNoGroup, readEntry, subjectMatcher, type ClaimRow, type Entry, type ScriptedRedis } from './redis-scripts.js';
import type { Delivery, DeliverySink, EngineSubscription, SubscribeSpec } from './transport.js';

/** What a subscription needs from its transport. */
export interface SubscriptionContext {
  main: ScriptedRedis;
  prefix: string;
  partitions: number;
  blockMs: number;
  streamKey(token: string, partition: number): string;
  /** Called for every claim (redelivery), for signals(). */
  countClaims(group: string, n: number): void;
}

/** A trimmed gap larger than this is counted once the group is closer to it (the count reads the entries past the group's position). */
const AUDIT_MAX_COUNT = 10_000;
const MAX_READ = 256;

const noop = (): void => {};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref?.());

function wrap(what: string, err: unknown): MyelinError {
  return err instanceof MyelinError ? err : new MyelinError('ERR_TRANSPORT_UNAVAILABLE', `Redis transport: ${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

export class RedisSubscription implements EngineSubscription {
  readonly ready: Promise<void>;
  /** The group name (`queue|pattern`), undefined without a queue. */
  readonly group: string | undefined;
  readonly pattern: string;
  /** The queue name the caller gave (the group's name in metrics and signals). */
  readonly queue: string | undefined;

  readonly #ctx: SubscriptionContext;
  readonly #spec: SubscribeSpec;
  readonly #sink: DeliverySink;
  readonly #member: string;
  readonly #matches: (subject: string) => boolean;
  /** The literal first token, or undefined for a `*` / `>` first token (every token in the tokens set). */
  readonly #token: string | undefined;
  readonly #conn: Redis;
  #closed = false;
  #tokens: string[] = [];
  /** Stream -> the last id read (XREAD), or the last id delivered (group; where a lost group is recreated). */
  readonly #lastIds = new Map<string, string>();
  #owned: number[] = [];
  /** Server time at subscribe, as a stream id: where a late-found stream starts. */
  #sinceId = '0-0';
  readonly #timers = new Set<NodeJS.Timeout>();
  #loop: Promise<void> = Promise.resolve();
  #clientId: number | undefined;
  #closing: Promise<void> | undefined;
  /** Reported once: the audit cannot count trimmed entries on some stream. */
  #auditBlind = false;

  constructor(ctx: SubscriptionContext, spec: SubscribeSpec, sink: DeliverySink, member: string) {
    this.#ctx = ctx;
    this.#spec = spec;
    this.#sink = sink;
    this.#member = member;
    this.pattern = spec.pattern;
    this.queue = spec.queue;
    this.group = spec.queue === undefined ? undefined : `${spec.queue}|${spec.pattern}`;
    this.#matches = subjectMatcher(spec.pattern);
    const t = firstToken(spec.pattern);
    this.#token = t === '*' || t === '>' ? undefined : t;
    this.#conn = ctx.main.duplicate({ enableAutoPipelining: false, lazyConnect: false });
    this.#conn.on('error', noop); // reported through the read loop's failures
    this.#conn.on('ready', () => {
      this.#conn.call('CLIENT', 'ID').then((id) => (this.#clientId = Number(id)), noop);
    });
    this.ready = this.#start();
    this.ready.catch(noop);
  }

  /** Every stream this subscription reads or may read (all partitions of its tokens). */
  streams(): string[] {
    const out: string[] = [];
    for (const t of this.#tokens) for (let p = 0; p < this.#ctx.partitions; p++) out.push(this.#ctx.streamKey(t, p));
    return out;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    if (this.#ackScheduled) this.#flushAcks(); // acknowledgements of the last handlers go out first
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    // Wake the blocked read now (as if its block ran out: nothing is handed to this
    // member), rather than waiting up to blockMs; cut the connection if that fails.
    if (this.#clientId !== undefined) await this.#ctx.main.call('CLIENT', 'UNBLOCK', this.#clientId).catch(noop);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#loop, new Promise<void>((r) => (timer = setTimeout(r, this.#ctx.blockMs + 500)))]);
    clearTimeout(timer);
    this.#conn.disconnect();
    // Leave the group now, so the other members take this member's partitions at once.
    if (this.group !== undefined) await this.#heartbeat(true).catch(noop);
  }

  async #start(): Promise<void> {
    const main = this.#ctx.main;
    let backoff = 100;
    for (;;) {
      if (this.#closed) throw new MyelinError('ERR_TRANSPORT_UNAVAILABLE', `Redis transport: subscription to ${this.pattern} closed before it was ready`);
      try {
        const [sec, usec] = (await main.call('TIME')) as [string, string];
        this.#sinceId = `${Number(sec) * 1000 + Math.floor(Number(usec) / 1000)}-0`;
        this.#tokens = this.#token !== undefined ? [this.#token] : ((await main.smembers(`${this.#ctx.prefix}:tokens`)) as string[]).sort();
        if (this.group === undefined) {
          // `$` semantics, resolved to ids now so that no event between two reads is missed.
          await Promise.all(this.streams().map(async (s) => this.#lastIds.set(s, await this.#lastId(s))));
        } else {
          await Promise.all(this.streams().map((s) => this.#createGroup(s, '$')));
          await this.#heartbeat(false);
        }
        break;
      } catch (err) {
        this.#sink.error(wrap(`subscribing to ${this.pattern}`, err));
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 2000);
      }
    }
    if (this.#closed) return;
    this.#loop = this.group === undefined ? this.#readLoop() : this.#groupLoop();
    if (this.#token === undefined) this.#every(1000, () => this.#pollTokens());
    if (this.group !== undefined) {
      this.#every(Math.max(10, Math.min(this.#spec.ackWaitMs / 3, 1000)), () => this.#heartbeat(false));
      this.#every(Math.max(10, Math.min(this.#spec.ackWaitMs / 2, 1000)), () => this.#maintain());
    }
  }

  /** Runs fn every ms (never overlapping itself) until close; failures go to sink.error. */
  #every(ms: number, fn: () => Promise<unknown>): void {
    const tick = (): void => {
      const t = setTimeout(() => {
        this.#timers.delete(t);
        if (this.#closed) return;
        fn()
          .catch((err) => {
            if (!this.#closed) this.#sink.error(wrap(`maintaining ${this.group ?? this.pattern}`, err));
          })
          .finally(() => {
            if (!this.#closed) tick();
          });
      }, ms);
      this.#timers.add(t);
    };
    tick();
  }

  async #lastId(stream: string): Promise<string> {
    const last = (await this.#ctx.main.xrevrange(stream, '+', '-', 'COUNT', 1)) as [string, string[]][];
    return last.length > 0 ? last[0][0] : '0-0';
  }

  async #createGroup(stream: string, id: string): Promise<void> {
    await this.#ctx.main.myelinCreateGroup(stream, this.group!, id); // an existing group is left as it is
  }

  async #pollTokens(): Promise<void> {
    const all = ((await this.#ctx.main.smembers(`${this.#ctx.prefix}:tokens`)) as string[]).sort();
    const fresh = all.filter((t) => !this.#tokens.includes(t));
    if (fresh.length === 0) return;
    for (const t of fresh) {
      for (let p = 0; p < this.#ctx.partitions; p++) {
        const s = this.#ctx.streamKey(t, p);
        // A token first seen now: every entry of its streams came after this
        // subscription's start (senders add the token before their first entry). A group
        // starts at 0 (all of them); a plain reader at its own start time, in case the
        // tokens set was lost and the stream is older.
        if (this.group === undefined) this.#lastIds.set(s, this.#sinceId);
        else await this.#createGroup(s, '0');
      }
    }
    this.#tokens = [...this.#tokens, ...fresh].sort();
  }

  /** Refreshes this member (or leaves) and recomputes the partitions it owns. */
  async #heartbeat(leave: boolean): Promise<void> {
    const ttl = Math.max(this.#spec.ackWaitMs, 3000);
    const live = (await this.#ctx.main.myelinHeartbeat(this.#membersKey(), this.#member, ttl, leave ? '1' : '0')).sort();
    if (leave) return;
    const me = live.indexOf(this.#member);
    const owned: number[] = [];
    if (me >= 0) for (let p = 0; p < this.#ctx.partitions; p++) if (p % live.length === me) owned.push(p);
    this.#owned = owned;
  }

  #membersKey(): string {
    return `${this.#ctx.prefix}:g:${this.group}:m`;
  }

  #ownedStreams(): string[] {
    const out: string[] = [];
    for (const t of this.#tokens) for (const p of this.#owned) out.push(this.#ctx.streamKey(t, p));
    return out;
  }

  /** How many to read now; 0 after waiting for room (then the caller re-checks closed). */
  async #want(): Promise<number> {
    const room = this.#sink.room();
    if (room > 0) return Math.min(room, MAX_READ);
    await this.#sink.waitRoom();
    return 0;
  }

  async #readLoop(): Promise<void> {
    let backoff = 100;
    while (!this.#closed) {
      try {
        const n = await this.#want();
        if (n === 0) continue;
        const keys = this.streams();
        if (keys.length === 0) {
          await sleep(this.#ctx.blockMs);
          continue;
        }
        const ids = keys.map((k) => this.#lastIds.get(k) ?? this.#sinceId);
        const res = (await this.#conn.callBuffer('XREAD', 'COUNT', n, 'BLOCK', this.#ctx.blockMs, 'STREAMS', ...keys, ...ids)) as [Buffer, [Buffer, Buffer[]][]][] | null;
        backoff = 100;
        if (res === null) continue;
        for (const [k, entries] of res) {
          const stream = k.toString();
          for (const [id, fields] of entries) {
            this.#lastIds.set(stream, id.toString());
            const e = readEntry(fields);
            if (this.#matches(e.subject)) this.#sink.push(this.#delivery(e, 1, noop));
          }
        }
      } catch (err) {
        if (this.#closed) break;
        this.#sink.error(wrap(`reading ${this.pattern}`, err));
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  }

  async #groupLoop(): Promise<void> {
    const group = this.group!;
    let backoff = 100;
    while (!this.#closed) {
      try {
        const n = await this.#want();
        if (n === 0) continue;
        const keys = this.#ownedStreams();
        if (keys.length === 0) {
          await sleep(this.#ctx.blockMs); // more members than partitions: this one waits for a share
          continue;
        }
        const res = (await this.#conn.callBuffer('XREADGROUP', 'GROUP', group, this.#member, 'COUNT', n, 'BLOCK', this.#ctx.blockMs, 'STREAMS', ...keys, ...keys.map(() => '>'))) as
          | [Buffer, [Buffer, Buffer[]][]][]
          | null;
        backoff = 100;
        if (res === null) continue;
        for (const [k, entries] of res) {
          const stream = k.toString();
          for (const [idBuf, fields] of entries) {
            const id = idBuf.toString();
            this.#lastIds.set(stream, id);
            this.#offer(stream, id, fields, 1);
          }
        }
      } catch (err) {
        if (this.#closed) break;
        if (isNoGroup(err)) {
          await this.#recreate(err).catch((e) => this.#sink.error(wrap(`recreating group ${group}`, e)));
          continue;
        }
        this.#sink.error(wrap(`reading group ${group}`, err));
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  }

  /** Pushes a group entry that matches the pattern; acknowledges one that does not (another pattern's event in the same stream). */
  #offer(stream: string, id: string, fields: Buffer[], deliveries: number): boolean {
    const e = readEntry(fields);
    if (!this.#matches(e.subject)) {
      this.#ack(stream, id);
      return false;
    }
    const d = this.#delivery(e, deliveries, () => this.#ack(stream, id));
    d.working = () => {
      // Claiming to itself with min-idle 0 resets the entry's idle time (its ack-wait); JUSTID leaves the delivery count alone.
      this.#ctx.main.call('XCLAIM', stream, this.group!, this.#member, 0, id, 'JUSTID').catch(noop);
    };
    this.#sink.push(d);
    return true;
  }

  /**
   * Acknowledgements wait for the end of the turn and go out as one XACK per stream
   * (a batch of handlers settles in one turn): one command instead of one per event.
   */
  #ack(stream: string, id: string): void {
    let ids = this.#acks.get(stream);
    if (ids === undefined) this.#acks.set(stream, (ids = []));
    ids.push(id);
    if (!this.#ackScheduled) {
      this.#ackScheduled = true;
      setImmediate(this.#flushAcks);
    }
  }

  readonly #acks = new Map<string, string[]>();
  #ackScheduled = false;

  readonly #flushAcks = (): void => {
    this.#ackScheduled = false;
    for (const [stream, ids] of this.#acks) {
      this.#ctx.main.call('XACK', stream, this.group!, ...ids).catch((err) => this.#sink.error(wrap(`acknowledging ${ids.length} entries on ${stream}`, err)));
    }
    this.#acks.clear();
  };

  #delivery(e: Entry, deliveries: number, ack: () => void): Delivery {
    return { subject: e.subject, payload: e.payload, meta: e.meta, deliveries, ack };
  }

  /**
   * The stream or the group was deleted under us. The group is recreated at the last id
   * this member delivered from each stream (or, where it delivered none, at this
   * subscription's start): `$` would skip what arrived between the loss and now, and `0`
   * would hand out again everything still in a stream whose group alone was destroyed.
   * A stream that was itself deleted starts again with ids above both, so nothing new is skipped.
   */
  async #recreate(cause: unknown): Promise<void> {
    const streams = this.streams();
    await Promise.all(
      streams.map(async (s) => {
        const last = this.#lastIds.get(s);
        const from = last !== undefined && compareIds(last, this.#sinceId) > 0 ? last : this.#sinceId;
        await this.#createGroup(s, from);
      }),
    );
    this.#sink.error(new MyelinError('ERR_TRANSPORT_UNAVAILABLE', `Redis transport: group ${this.group} was missing on its streams (deleted?); recreated it`, { cause }));
  }

  /** Claims entries whose ack-wait passed (redelivery, takeover of a lapsed member), and audits trimming. */
  async #maintain(): Promise<void> {
    const group = this.group!;
    for (const stream of this.#ownedStreams()) {
      if (this.#closed) return;
      try {
        await this.#claim(stream, group);
        await this.#audit(stream, group);
      } catch (err) {
        if (isNoGroup(err)) await this.#recreate(err);
        else throw err;
      }
    }
  }

  async #claim(stream: string, group: string): Promise<void> {
    const room = this.#sink.room();
    if (room <= 0) return;
    const rows = (await this.#ctx.main.myelinClaimBuffer(stream, group, this.#member, Math.max(1, Math.floor(this.#spec.ackWaitMs)), Math.min(room, MAX_READ))) as ClaimRow[];
    if (rows.length === 0) return;
    let gone = 0;
    let taken = 0;
    let takenIdle = 0;
    let claimed = 0;
    for (const [idBuf, consumer, idle, count, fields] of rows) {
      if (fields === undefined) {
        gone++;
        continue;
      }
      claimed++;
      if (consumer.toString() !== this.#member) {
        taken++;
        takenIdle = Math.max(takenIdle, Number(idle));
      }
      this.#offer(stream, idBuf.toString(), fields, Number(count) + 1);
    }
    if (claimed > 0) this.#ctx.countClaims(group, claimed);
    if (taken > 0) this.#sink.takeover(taken, takenIdle);
    if (gone > 0) this.#sink.lost(gone, 'trimmed before delivery');
  }

  async #audit(stream: string, group: string): Promise<void> {
    const [lost, status] = await this.#ctx.main.myelinAudit(stream, group, AUDIT_MAX_COUNT);
    if (status === 2 || status === 3) throw new MyelinError('ERR_TRANSPORT_UNAVAILABLE', `NOGROUP ${status === 2 ? 'stream' : 'group'} missing: ${group} on ${stream}`);
    if (lost > 0) this.#sink.lost(lost, 'trimmed unread by MAXLEN');
    if (status === 1 && !this.#auditBlind) {
      this.#auditBlind = true;
      this.#sink.error(
        new MyelinError('ERR_TRANSPORT_UNAVAILABLE', `Redis transport: group ${group} on ${stream} has no read counter (Redis < 7, or entries deleted with XDEL): entries MAXLEN trims before the group reads them cannot be counted`),
      );
    }
  }
}
