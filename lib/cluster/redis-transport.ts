// The cluster bus over Redis Streams: one stream per (first subject token, partition),
// consumer groups for queue subscriptions, a hash for the node registry and versioned
// hashes plus a pub/sub channel for configuration. Subscriptions live in
// redis-subscription.ts, the atomic server-side steps in redis-scripts.ts.
//
// Keys (all under `prefix`):
//   <prefix>:s:<token>:<p>   stream of the events whose subject starts with <token>, partition p
//   <prefix>:tokens          set of the first tokens ever sent (wildcard subscribers find streams here)
//   <prefix>:d:<id>          dedupe marker of a caller-given publish id, expires after dedupeWindowMs
//   <prefix>:g:<group>:m     hash member -> expiry ms (server clock) of a group's live members
//   <prefix>:nodes           hash node id -> JSON NodeInfo (with its expiry)
//   <prefix>:cfg:<name>      hash { v: version, d: JSON value }; puts announce <name> on channel <prefix>:cfg
//
// Data flow of a send: partition (key hash, or round robin) -> XADD (or the dedupe
// script) on the main connection, auto-pipelined so a burst is one round trip -> the
// reply resolves send(), or our own timer rejects it (the command may still land: fate
// unknown). Commands wait in ioredis's offline queue across a reconnect.
import { Redis } from 'ioredis';
import { MyelinError, invalidArgument } from '../errors.js';
import { extraFields, packMeta } from './codec.js';
import { defineScripts, firstToken, partitionOf, type ScriptedRedis } from './redis-scripts.js';
import { RedisSubscription } from './redis-subscription.js';
import type { ConfigEntry, DeliverySink, Durability, EngineSubscription, GroupSignal, NodeInfo, OutMessage, SendResult, SubscribeSpec, Transport } from './transport.js';

export interface RedisTransportOptions {
  url: string;
  /** Key prefix (default 'myelin'). */
  prefix: string;
  /** Streams per first token (default 8): events with one key share one. */
  partitions: number;
  /** Approximate entries kept per stream (XADD MAXLEN ~); 0: never trim. Default 1_000_000. */
  maxLen: number;
  /** How long a caller-given publish id is remembered for dedupe. */
  dedupeWindowMs: number;
  /** How long one read blocks (default 500): bounds how late an ownership change or close applies. */
  blockMs?: number;
}

/** How often the set of tokens is refreshed by a sender (a lost set heals within this). */
const TOKEN_REFRESH_MS = 60_000;
const noop = (): void => {};

function unavailable(message: string, cause?: unknown): MyelinError {
  return new MyelinError('ERR_TRANSPORT_UNAVAILABLE', message, cause === undefined ? {} : { cause });
}

interface Watcher {
  fn: (e: ConfigEntry) => void;
  last: number;
}

interface BatchedSend {
  args: (string | Buffer | number)[];
  /** The dedupe script (a caller-given id), not a plain XADD. */
  dedupe: boolean;
  /** An XTRIM (no caller waits for it). */
  trim: boolean;
  pending: PendingSend | undefined;
  resolve: ((r: SendResult) => void) | undefined;
  reject: ((err: unknown) => void) | undefined;
}

interface PendingSend {
  deadline: number;
  done: boolean;
  subject: string;
  timeoutMs: number;
  reject: (err: unknown) => void;
}

const STORED: SendResult = Object.freeze({ duplicate: false, stored: true });
const DUPLICATE: SendResult = Object.freeze({ duplicate: true, stored: true });

export class RedisTransport implements Transport {
  readonly kind = 'redis' as const;
  readonly #o: Required<RedisTransportOptions>;
  readonly #nodeId: string;
  readonly #redis: ScriptedRedis;
  #giveUp = false;
  #lastError: Error | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #rr = 0;
  /** Token -> when this process last added it to the tokens set. */
  readonly #tokenSeen = new Map<string, number>();
  readonly #subs = new Set<RedisSubscription>();
  #subCount = 0;
  /** Group -> claims (redeliveries) made by this process. */
  readonly #claims = new Map<string, number>();
  #watchConn: Redis | undefined;
  #watchReady: Promise<unknown> | undefined;
  readonly #watchers = new Map<string, Set<Watcher>>();

  constructor(opts: RedisTransportOptions, nodeId: string) {
    this.#o = { blockMs: 500, ...opts };
    this.#nodeId = nodeId;
    const redis = new Redis(opts.url, {
      lazyConnect: true,
      // RESP2: the reply shapes (XREAD's [key, entries] pairs) parsed here, on any Redis version.
      protocol: 2,
      enableAutoPipelining: true,
      // Commands wait in the offline queue across a reconnect; send() bounds the wait with its own timer.
      maxRetriesPerRequest: null,
      retryStrategy: (n: number) => (this.#giveUp ? null : Math.min(50 * 2 ** Math.min(n, 6), 2000)),
    });
    redis.on('error', (err: Error) => (this.#lastError = err));
    this.#redis = defineScripts(redis);
  }

  get connected(): boolean {
    return this.#redis.status === 'ready';
  }

  async connect(deadlineMs: number): Promise<void> {
    if (this.#closed) throw unavailable('Redis transport: connect() after close()');
    const r = this.#redis;
    if (r.status === 'ready') return;
    this.#giveUp = false;
    await new Promise<void>((resolve, reject) => {
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        r.off('ready', onReady);
        // Stop retrying: the caller was told the engine is unavailable.
        this.#giveUp = true;
        r.disconnect();
        reject(unavailable(`Redis transport: cannot reach ${redactUrl(this.#o.url)} within ${deadlineMs} ms${this.#lastError ? ` (${this.#lastError.message})` : ''}`, this.#lastError));
      }, deadlineMs);
      r.once('ready', onReady);
      if (r.status === 'wait' || r.status === 'end') r.connect().catch(noop); // failures surface as the deadline
    });
  }

  /** MAXLEN's argument, as the string ioredis would make of it on every send. */
  get #maxLen(): string {
    return (this.#maxLenArg ??= String(this.#o.maxLen));
  }

  #maxLenArg: string | undefined;

  #streamKey(token: string, partition: number): string {
    return `${this.#o.prefix}:s:${token}:${partition}`;
  }

  send(msg: OutMessage, timeoutMs: number): Promise<SendResult> {
    if (this.#closed) return Promise.reject(unavailable('Redis transport: send() after close()'));
    const o = this.#o;
    const token = firstToken(msg.subject);
    const p = msg.key !== undefined ? partitionOf(msg.key, o.partitions) : this.#rr++ % o.partitions;
    if (this.#rr >= o.partitions) this.#rr = 0;
    const stream = this.#streamKey(token, p);
    const r = this.#redis;
    this.#noteToken(token);
    const u8 = msg.payload;
    const payload = msg.text ?? (Buffer.isBuffer(u8) ? u8 : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength));
    if (msg.userId) {
      // the dedupe script, in the same pipeline as the plain XADDs: one order for all sends
      const fields: (string | Buffer)[] = ['m', packMeta(msg, msg.subject), 'd', payload, ...(extraFields(msg) ?? [])];
      const args: (string | Buffer | number)[] = [`${o.prefix}:d:${msg.id}`, stream, o.dedupeWindowMs, o.maxLen, ...fields];
      return new Promise<SendResult>((resolve, reject) => {
        const pending = this.#deadline(msg.subject, timeoutMs, reject);
        if (this.#batch.length === 0) queueMicrotask(this.#flushBatch);
        this.#batch.push({ args, dedupe: true, trim: false, pending, resolve, reject });
      });
    }
    // XADD key * m <meta and subject> d <payload> [k <key>] [h <headers>], gathered for
    // the turn into one explicit pipeline (cheaper per command than auto-pipelining:
    // one exec, one result array). MAXLEN is not on every XADD: #trim trims each
    // stream every so many sends.
    const args: (string | Buffer)[] = [stream, '*', 'm', packMeta(msg, msg.subject), 'd', payload];
    const extra = extraFields(msg);
    if (extra !== undefined) for (let i = 0; i < extra.length; i++) args.push(extra[i]);
    if (o.maxLen > 0) this.#trim(stream);
    return new Promise<SendResult>((resolve, reject) => {
      const pending = this.#deadline(msg.subject, timeoutMs, reject);
      if (this.#batch.length === 0) queueMicrotask(this.#flushBatch);
      this.#batch.push({ args, dedupe: false, trim: false, pending, resolve, reject });
    });
  }

  /**
   * Trims a stream to about maxLen entries (XTRIM MAXLEN ~) once every trimEvery sends
   * to it, on the same pipeline as the sends: the stream can run over maxLen by at
   * most trimEvery entries, and no XADD carries three more arguments.
   */
  #trim(stream: string): void {
    const n = (this.#sinceTrim.get(stream) ?? 0) + 1;
    if (n < this.#trimEvery) {
      this.#sinceTrim.set(stream, n);
      return;
    }
    this.#sinceTrim.set(stream, 0);
    if (this.#batch.length === 0) queueMicrotask(this.#flushBatch);
    this.#batch.push({ args: [stream, 'MAXLEN', '~', this.#maxLen], dedupe: false, trim: true, pending: undefined, resolve: undefined, reject: undefined });
  }

  readonly #sinceTrim = new Map<string, number>();

  get #trimEvery(): number {
    return Math.max(1, Math.min(1024, Math.floor(this.#o.maxLen / 8)));
  }

  /** The turn's XADDs, sent as one pipeline at the end of the turn. */
  #batch: BatchedSend[] = [];

  readonly #flushBatch = (): void => {
    const batch = this.#batch;
    this.#batch = [];
    const p = this.#redis.pipeline();
    for (let i = 0; i < batch.length; i++) {
      const b = batch[i];
      if (b.dedupe) (p as unknown as { myelinDedupeXadd(...a: unknown[]): void }).myelinDedupeXadd(...b.args);
      else if (b.trim) p.call('XTRIM', b.args);
      else p.call('XADD', b.args);
    }
    p.exec().then(
      (results) => {
        for (let i = 0; i < batch.length; i++) {
          const b = batch[i];
          if (b.pending === undefined) continue; // a trim: a failed one is the next trim's to redo
          if (b.pending.done) continue;
          b.pending.done = true;
          const err = results?.[i]?.[0];
          if (err) b.reject!(unavailable(`Redis transport: send on ${b.pending.subject} failed: ${err.message}`, err));
          else b.resolve!(b.dedupe && results?.[i]?.[1] === 1 ? DUPLICATE : STORED);
        }
      },
      (err: Error) => {
        for (const b of batch) {
          if (b.pending === undefined || b.pending.done) continue;
          b.pending.done = true;
          b.reject!(unavailable(`Redis transport: send on ${b.pending.subject} failed: ${err.message}`, err));
        }
      },
    );
  };

  /** A send's deadline, in the FIFO one timer sweeps (sends on one connection complete in order), instead of a timer each. */
  #deadline(subject: string, timeoutMs: number, reject: (err: unknown) => void): PendingSend {
    const pending: PendingSend = { deadline: performance.now() + timeoutMs, done: false, subject, timeoutMs, reject };
    this.#deadlines.push(pending);
    this.#armSweep();
    return pending;
  }

  readonly #deadlines: PendingSend[] = [];
  #deadlineHead = 0;
  #sweep: NodeJS.Timeout | undefined;

  #armSweep(): void {
    if (this.#sweep !== undefined) return;
    this.#sweep = setTimeout(() => {
      this.#sweep = undefined;
      this.#sweepDeadlines();
    }, 100);
    this.#sweep.unref?.();
  }

  /** Rejects the sends whose deadline passed (it may still have been stored: the caller counts it unknown). */
  #sweepDeadlines(): void {
    const q = this.#deadlines;
    const now = performance.now();
    let i = this.#deadlineHead;
    for (; i < q.length; i++) {
      const p = q[i];
      if (p.done) continue;
      if (p.deadline > now) break;
      p.done = true;
      p.reject(unavailable(`Redis transport: no answer to send on ${p.subject} within ${p.timeoutMs} ms (${this.#redis.status}); it may still have been stored`));
    }
    // drop the settled entries at the head; later ones may have settled out of order
    while (i < q.length && q[i].done) i++;
    this.#deadlineHead = i;
    if (i > 1024 && i * 2 > q.length) {
      q.splice(0, i);
      this.#deadlineHead = 0;
    }
    if (this.#deadlineHead < q.length) this.#armSweep();
    else {
      q.length = 0;
      this.#deadlineHead = 0;
    }
  }

  /** Adds a token to the tokens set the first time, and again every minute (the set may have been lost). Sent ahead of the XADD on the same pipeline. */
  #noteToken(token: string): void {
    const now = Date.now();
    const seen = this.#tokenSeen.get(token);
    if (seen !== undefined && now - seen < TOKEN_REFRESH_MS) return;
    this.#tokenSeen.set(token, now);
    this.#redis.sadd(`${this.#o.prefix}:tokens`, token).catch(() => this.#tokenSeen.delete(token));
  }

  subscribe(spec: SubscribeSpec, sink: DeliverySink): EngineSubscription {
    if (this.#closed) throw unavailable('Redis transport: subscribe() after close()');
    const sub = new RedisSubscription(
      {
        main: this.#redis,
        prefix: this.#o.prefix,
        partitions: this.#o.partitions,
        blockMs: this.#o.blockMs,
        streamKey: (t, p) => this.#streamKey(t, p),
        countClaims: (g, n) => this.#claims.set(g, (this.#claims.get(g) ?? 0) + n),
      },
      spec,
      sink,
      `${this.#nodeId}:${++this.#subCount}`,
    );
    this.#subs.add(sub);
    const close = sub.close.bind(sub);
    return {
      ready: sub.ready,
      close: async () => {
        await close();
        this.#subs.delete(sub);
      },
    };
  }

  // ---- registry

  async announce(info: NodeInfo, ttlMs: number): Promise<void> {
    const now = Date.now();
    const entry = { ...info, seenAt: Number.isFinite(info.seenAt) ? info.seenAt : now, expiresAt: now + ttlMs };
    await this.#cmd('announce', this.#redis.hset(`${this.#o.prefix}:nodes`, info.id, JSON.stringify(entry)));
  }

  async withdraw(id: string): Promise<void> {
    await this.#cmd('withdraw', this.#redis.hdel(`${this.#o.prefix}:nodes`, id));
  }

  async nodes(): Promise<NodeInfo[]> {
    const key = `${this.#o.prefix}:nodes`;
    const all = await this.#cmd('nodes', this.#redis.hgetall(key));
    const now = Date.now();
    const live: NodeInfo[] = [];
    const expired: string[] = [];
    for (const [id, json] of Object.entries(all)) {
      let e: NodeInfo & { expiresAt?: number };
      try {
        e = JSON.parse(json) as NodeInfo & { expiresAt?: number };
      } catch {
        expired.push(id); // not ours to read: an entry another tool wrote badly
        continue;
      }
      if (!(typeof e.expiresAt === 'number' && e.expiresAt > now)) {
        expired.push(id);
        continue;
      }
      const { expiresAt: _, ...info } = e;
      live.push(info);
    }
    if (expired.length > 0) await this.#cmd('nodes', this.#redis.hdel(key, ...expired));
    return live.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  // ---- configuration

  #cfgKey(name: string): string {
    return `${this.#o.prefix}:cfg:${name}`;
  }

  async getConfig(name: string): Promise<ConfigEntry | undefined> {
    const [v, d] = await this.#cmd('getConfig', this.#redis.hmget(this.#cfgKey(name), 'v', 'd'));
    if (v === null || d === null) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(d);
    } catch (err) {
      throw unavailable(`Redis transport: configuration ${name} holds no JSON`, err);
    }
    return { name, value, version: Number(v) };
  }

  async putConfig(name: string, value: unknown): Promise<number> {
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch (err) {
      throw invalidArgument(`putConfig(${name}): value cannot be serialised (${(err as Error).message})`, err);
    }
    if (json === undefined) throw invalidArgument(`putConfig(${name}): value of type ${typeof value} cannot be serialised; use JSON-compatible values`);
    return this.#cmd('putConfig', this.#redis.myelinPutConfig(this.#cfgKey(name), json, `${this.#o.prefix}:cfg`, name));
  }

  watchConfig(name: string, onChange: (e: ConfigEntry) => void): () => void {
    const w: Watcher = { fn: onChange, last: 0 };
    let set = this.#watchers.get(name);
    if (set === undefined) this.#watchers.set(name, (set = new Set()));
    set.add(w);
    this.#ensureWatchConn();
    void this.#refresh(name);
    return () => {
      set.delete(w);
      if (set.size === 0 && this.#watchers.get(name) === set) this.#watchers.delete(name);
    };
  }

  /** One subscriber connection for every watch; after a reconnect every watched name is read again (a put may have passed unseen). */
  #ensureWatchConn(): void {
    if (this.#watchConn !== undefined) return;
    const channel = `${this.#o.prefix}:cfg`;
    const c = this.#redis.duplicate({ enableAutoPipelining: false, lazyConnect: false });
    this.#watchConn = c;
    c.on('error', noop);
    c.on('message', (ch: string, name: string) => {
      if (ch === channel && this.#watchers.has(name)) void this.#refresh(name);
    });
    let first = true;
    c.on('ready', () => {
      if (first) first = false;
      else for (const name of this.#watchers.keys()) void this.#refresh(name);
    });
    this.#watchReady = c.subscribe(channel).catch(noop);
  }

  /** Reads the entry and calls each watcher that has not seen this version (versions only go up, whatever order reads finish in). */
  async #refresh(name: string): Promise<void> {
    await this.#watchReady;
    let e: ConfigEntry | undefined;
    try {
      e = await this.getConfig(name);
    } catch {
      return; // read again after the reconnect
    }
    if (e === undefined) return;
    for (const w of this.#watchers.get(name) ?? []) {
      if (e.version <= w.last) continue;
      w.last = e.version;
      try {
        w.fn(e);
      } catch {
        // the watcher's own failure is its business; the next version still reaches it
      }
    }
  }

  // ---- figures

  async durability(): Promise<Durability> {
    const r = this.#redis;
    const notes: string[] = [];
    const info = await this.#cmd('durability', r.info('replication'));
    const replicas = 1 + Number(/connected_slaves:(\d+)/.exec(info)?.[1] ?? 0);
    let storage = 'unknown';
    let fsync = 'unknown';
    try {
      const get = async (k: string): Promise<string> => ((await r.call('CONFIG', 'GET', k)) as string[])[1] ?? '';
      const [aof, every, save] = await Promise.all([get('appendonly'), get('appendfsync'), get('save')]);
      if (aof === 'yes') {
        storage = 'aof';
        fsync = every || 'everysec';
        notes.push(
          fsync === 'always'
            ? 'AOF with appendfsync always: every acknowledged event is on disk.'
            : fsync === 'everysec'
              ? 'AOF with appendfsync everysec: a crash of the machine can lose about the last second of acknowledged events.'
              : 'AOF with appendfsync no: the operating system decides when events reach disk; a crash of the machine can lose more than a second of them.',
        );
      } else {
        fsync = 'off';
        if (save.trim() !== '') {
          storage = 'rdb';
          notes.push(`No AOF, RDB snapshots only (save ${save}): a restart loses every event since the last snapshot.`);
        } else {
          storage = 'memory';
          notes.push('No persistence (no AOF, no RDB): a Redis restart loses every stored event, group and pending entry.');
        }
      }
    } catch {
      notes.push('CONFIG GET was refused: how Redis persists is unknown.');
    }
    notes.push(
      replicas > 1
        ? `Replication to ${replicas - 1} replica(s) is asynchronous: a failover can lose events the primary acknowledged but had not yet copied.`
        : 'No replicas: the events live on this one Redis.',
    );
    notes.push(
      this.#o.maxLen > 0
        ? `Streams are trimmed to about ${this.#o.maxLen} entries each (MAXLEN ~): a group further behind loses the oldest events (counted as lost).`
        : 'Streams are never trimmed (maxLen 0): memory grows until something trims them.',
    );
    return { storage, replicas, fsync, notes };
  }

  async signals(): Promise<GroupSignal[]> {
    const byGroup = new Map<string, RedisSubscription>();
    for (const s of this.#subs) if (s.group !== undefined && !byGroup.has(s.group)) byGroup.set(s.group, s);
    const out: GroupSignal[] = [];
    for (const [group, sub] of byGroup) {
      const rows = await Promise.all(
        sub.streams().map((stream) => (this.#redis.call('XINFO', 'GROUPS', stream) as Promise<unknown[][]>).catch(() => [] as unknown[][])),
      );
      let lag = 0;
      let pending = 0;
      for (const groups of rows) {
        for (const row of groups) {
          const m = new Map<string, unknown>();
          for (let i = 0; i + 1 < row.length; i += 2) m.set(String(row[i]), row[i + 1]);
          if (m.get('name') !== group) continue;
          lag += Number(m.get('lag') ?? 0);
          pending += Number(m.get('pending') ?? 0);
        }
      }
      out.push({ group: sub.queue ?? group, pattern: sub.pattern, lag, pending, redelivered: this.#claims.get(group) ?? 0 });
    }
    return out;
  }

  // ---- lifecycle

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    if (this.#sweep !== undefined) clearTimeout(this.#sweep);
    await Promise.all([...this.#subs].map((s) => s.close()));
    this.#subs.clear();
    this.#watchers.clear();
    this.#watchConn?.disconnect();
    this.#giveUp = true;
    const r = this.#redis;
    if (r.status === 'ready') {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([r.quit().catch(noop), new Promise<void>((res) => (timer = setTimeout(res, 1000)))]);
      clearTimeout(timer);
    }
    r.disconnect();
  }

  /** Runs a command, turning a Redis failure into ERR_TRANSPORT_UNAVAILABLE. */
  async #cmd<T>(what: string, p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      throw unavailable(`Redis transport: ${what} failed: ${(err as Error).message}`, err);
    }
  }
}

/** The URL without its password, for messages. */
function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*):[^@/]*@/, '//$1:***@');
}
