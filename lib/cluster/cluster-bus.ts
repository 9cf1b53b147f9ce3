// The bus on a cluster transport: the same API as the in-memory bus (lib/bus/bus.ts
// hands every call here when `transport` is set), with the engine (NATS JetStream,
// Redis Streams) carrying every event between processes.
//
// Publishing: publish() validates, encodes the data once and puts the event in the
// outbox, a FIFO bounded by `capacity` (events accepted and not yet acknowledged by the
// engine); the overflow policy applies when it is full, as to a full lane. The outbox
// sends at most WINDOW events at a time and counts each engine acknowledgement. A send
// that fails (broker down, no ack in time) is sent again, oldest first, after a backoff,
// with the same publish id, so the engine's dedupe window stores it once. publishAsync
// resolves on the engine's acknowledgement of its event, and rejects with
// ERR_TRANSPORT_UNAVAILABLE when none comes within ackTimeoutMs: its fate is then
// unknown, and it is never reported as ok.
//
// Delivering (ClusterConsumer): the transport pushes deliveries in engine order; one key
// runs one at a time per subscription, in order; at most `concurrency` handlers run at
// once. A handler's success acknowledges the event. A failure runs the handler again in
// place (the key stays held, so order holds) until `maxDeliver` runs, then the event is
// sent to `$DLQ.<subject>` with the error, and acknowledged only once the engine has
// acknowledged the dead letter. An event the engine delivers more than maxDeliver times
// (its consumers died or stalled past the ack-wait) is dead-lettered on arrival.
//
// Accounting: published = acknowledged + queued (outbox) + in flight to the engine +
// unknown (sent, no acknowledgement by publishAsync's deadline or by close) + dropped
// (overflow policy, or a publishAsync whose deadline passed before it was sent).
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MyelinError, invalidArgument } from '../errors.js';
import { HistogramRecorder, latencyUs as latencyOf } from '../internal/histogram.js';
import type { MetricsSink } from '../internal/metrics-sink.js';
import { native, packageRoot, type NativeHistogram } from '../internal/native.js';
import { BusMetrics, MAX_PREFIXES, StageSamples } from '../bus/bus-metrics.js';
import { checkOptions, checkSubject, describeType, parsePublishOptions, PRIORITIES, type ParsedPublish } from '../bus/options.js';
import { describeError, isThenable } from '../bus/handler-result.js';
import { type Handler, Subscription } from '../bus/subscription.js';
import type { BatchItem, BusEvent, BusStats, Overflow, PublishOptions, SubscribeOptions } from '../bus/types.js';
import { encodeData, toEvent } from './codec.js';
import { ClusterMetrics } from './cluster-metrics.js';
import { NatsTransport } from './nats-transport.js';
import {
  CLUSTER_BATCH_KEYS,
  CLUSTER_PUBLISH_KEYS,
  CLUSTER_SUBSCRIBE_KEYS,
  checkId,
  resolveSubscribe,
  resolveTransport,
  type ResolvedNats,
  type ResolvedRedis,
} from './options.js';
import { RedisTransport } from './redis-transport.js';
import { type ConfigEntry, type Delivery, type DeliverySink, type Durability, Encoding, type EngineSubscription, type GroupSignal, type NodeInfo, type OutMessage, type SendResult, type Transport, type WireMeta } from './transport.js';

/**
 * Sends in flight to the engine at once: each one waits for its own acknowledgement
 * (a JetStream PubAck, a Redis reply). Core NATS acknowledges a whole turn's sends
 * with one flush round trip, so it keeps a window as deep as a raw client's flush
 * interval.
 */
const WINDOW = 1024;
const CORE_WINDOW = 16384;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
const RESERVED_HEADER = /^(myelin-|nats-)/i;

export interface ClusterStats extends BusStats {
  transport: {
    kind: 'nats' | 'redis';
    node: string;
    connected: boolean;
    /** Events the engine acknowledged (stored, or handed to the connected subscribers where no stream captures the subject). */
    acked: number;
    /** Acknowledged as duplicates of an id inside the dedupe window (stored once). */
    duplicates: number;
    /** Acknowledged without being stored: no durable group's stream captures the subject. */
    notStored: number;
    /** Sent, waiting for the engine's acknowledgement. */
    unacked: number;
    /** Accepted, not yet sent (broker down or the window full). */
    outbox: number;
    /** Sends that failed and were retried. */
    sendFailures: number;
    /** publishAsync calls rejected with ERR_TRANSPORT_UNAVAILABLE, and sends abandoned at close: fate unknown. */
    unknown: number;
    /** Deliveries the engine made again (ack-wait expired, takeover). */
    redelivered: number;
    /** Events sent to $DLQ.<subject> after maxDeliver failed runs. */
    deadLettered: number;
    /** Pending events of lapsed members taken over, and the idle time of the last takeover. */
    takeovers: { count: number; lastMs: number };
    /** Events the engine lost before delivery (Redis MAXLEN trims), never silently. */
    lost: number;
    errors: number;
    lastError: string | undefined;
    durability: Durability | undefined;
    /** Where the engine promises less than transport.durability asked for (also a process warning, MYELIN_DURABILITY). */
    durabilityWarnings: string[];
  };
}

interface Entry {
  msg: OutMessage;
  seq: number;
  /** publishAsync / dead letters: called once with the outcome. */
  done: ((err: unknown) => void) | undefined;
  /** Retried until acknowledged (publish(), dead letters); publishAsync rejects on the first failure instead. */
  retry: boolean;
  state: 0 | 1 | 2; // 0 waiting, 1 sent, 2 finished
  timer: NodeJS.Timeout | undefined;
}

let packageVersion: string | undefined;
function version(): string {
  if (packageVersion === undefined) {
    try {
      packageVersion = (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      packageVersion = '0.0.0';
    }
  }
  return packageVersion;
}

export interface ClusterHandle {
  /** This node's id in the registry. */
  readonly id: string;
  /** The live nodes (registry entries with a heartbeat inside their TTL). */
  nodes(): Promise<NodeInfo[]>;
  getConfig(name: string): Promise<ConfigEntry | undefined>;
  /** Stores a new version of a configuration; every node watching it gets it. Resolves with the version. */
  putConfig(name: string, value: unknown): Promise<number>;
  /**
   * Calls back with the current version (if any) and every later one. The registry
   * reports, per name, the last version whose callback did not return false or throw
   * (the version this node runs). Returns a stop function.
   */
  watchConfig(name: string, onChange: (value: unknown, version: number) => void | boolean): () => void;
  /** Per-group lag, pending and redeliveries (the load signals). */
  signals(): Promise<GroupSignal[]>;
  /** What the engine is set up to promise. */
  durability(): Promise<Durability>;
}

export class ClusterBus {
  readonly #o: ResolvedNats | ResolvedRedis;
  readonly #t: Transport;
  readonly #capacity: number;
  readonly #window: number;
  readonly #overflow: Overflow;
  readonly #node: string;
  #seq = 0;
  /** Outbox order: retries go out oldest first. */
  #order = 0;
  #nextEvent = 1;
  #nextSub = 1;
  #failure: MyelinError | undefined;
  readonly #connecting: Promise<void>;
  #closed = false;
  #closing: Promise<void> | undefined;
  // outbox
  #queue: Entry[] = [];
  #qHead = 0;
  #retry: Entry[] = [];
  #retryTimer: NodeJS.Timeout | undefined;
  #backoff = 0;
  #sending = 0;
  #waiting = 0; // entries in #queue/#retry not finished
  #roomWaiters: Array<() => void> = [];
  #drainWaiters: Array<() => void> = [];
  // counters
  #published = 0;
  #acked = 0;
  #duplicates = 0;
  #notStored = 0;
  #dropped = 0;
  #refused = 0;
  #unknown = 0;
  #sendFailures = 0;
  #delivered = 0;
  #failed = 0;
  #redelivered = 0;
  #deadLettered = 0;
  #takeovers = 0;
  #takeoverMs = 0;
  #lost = 0;
  #errors = 0;
  #lastError: string | undefined;
  #durability: Durability | undefined;
  readonly #consumers = new Set<ClusterConsumer>();
  readonly #hist: NativeHistogram;
  readonly #latency: HistogramRecorder;
  // registry
  readonly #startedAt = Date.now();
  #heartbeat: NodeJS.Timeout | undefined;
  readonly #configVersions: Record<string, number> = {};
  readonly #watches = new Set<() => void>();
  #elu = performance.eventLoopUtilization();
  #lastBeat = { at: performance.now(), published: 0 };
  readonly #metrics: ClusterMetrics | undefined;
  /** The bus's own series (the same as an in-memory bus's: KPIs and dashboards read them). */
  readonly #busMetrics: BusMetrics | undefined;
  readonly #lanePublished = [0, 0, 0, 0];
  readonly #laneDropped = [0, 0, 0, 0];
  readonly cluster: ClusterHandle;

  constructor(transport: unknown, capacity: number, overflow: Overflow, metrics: MetricsSink | undefined) {
    this.#o = resolveTransport(transport);
    this.#capacity = capacity;
    this.#overflow = overflow;
    this.#node = `${hostname().replace(/[^A-Za-z0-9_-]/g, '_')}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.#t = this.#o.kind === 'nats' ? new NatsTransport(this.#o) : new RedisTransport(this.#o, this.#node);
    this.#window = this.#o.kind === 'nats' && this.#o.stream === false ? CORE_WINDOW : WINDOW;
    this.#hist = new (native().Histogram)();
    this.#latency = new HistogramRecorder(this.#hist);
    this.#connecting = this.#t.connect(this.#o.connectTimeoutMs).then(
      () => {
        this.#up = true;
        this.#pump();
        if (this.#closed) return;
        this.#beat();
        this.#heartbeat = setInterval(() => this.#beat(), this.#o.heartbeatMs);
        this.#heartbeat.unref();
        void this.#t.durability().then((d) => this.#checkDurability(d), (e) => this.#error(e));
      },
      (err: unknown) => {
        this.#failure = err instanceof MyelinError ? err : new MyelinError('ERR_TRANSPORT_UNAVAILABLE', `cannot connect: ${(err as Error).message}`, { cause: err });
        this.#failOutbox(this.#failure);
      },
    );
    const self = this;
    this.cluster = {
      id: this.#node,
      nodes: () => this.#afterConnect(() => this.#t.nodes()),
      getConfig: (name) => this.#afterConnect(() => this.#t.getConfig(checkName(name, 'getConfig'))),
      putConfig: (name, value) => this.#afterConnect(() => this.#t.putConfig(checkName(name, 'putConfig'), value)),
      watchConfig(name, onChange) {
        checkName(name, 'watchConfig');
        if (typeof onChange !== 'function') throw invalidArgument('watchConfig(name, onChange): onChange must be a function');
        let stop: (() => void) | undefined;
        let stopped = false;
        void self.#connecting.then(() => {
          if (stopped || self.#failure !== undefined) return;
          stop = self.#t.watchConfig(name, (e) => {
            // The registry reports the version this node runs: one its callback took,
            // not one it declined (returned false) or failed on (threw).
            try {
              if (onChange(e.value, e.version) !== false) self.#configVersions[name] = e.version;
            } catch (err) {
              self.#error(err);
            }
          });
        });
        const end = () => {
          stopped = true;
          stop?.();
          self.#watches.delete(end);
        };
        self.#watches.add(end);
        return end;
      },
      signals: () => this.#afterConnect(() => this.#t.signals()),
      durability: () => this.#afterConnect(() => this.#t.durability()),
    };
    if (metrics !== undefined) {
      this.#metrics = new ClusterMetrics(metrics, () => this.stats(), () => this.#t.signals());
      const none = new Array<number>(MAX_PREFIXES + 1).fill(0);
      this.#busMetrics = new BusMetrics(metrics, {
        stats: () => this.stats(),
        prefixes: { names: [], published: none, dropped: none, failed: none },
        stages: new StageSamples(),
        pools: () => [],
      });
    }
  }

  readonly #durabilityWarnings: string[] = [];

  /** Keeps what the engine reports, and warns where it promises less than the caller asked for. */
  #checkDurability(d: Durability): void {
    this.#durability = d;
    const want = this.#o.durability;
    if (want === undefined) return;
    const short: string[] = [];
    if (want.replicas !== undefined && d.replicas < want.replicas) short.push(`${want.replicas} replicas were asked for; the ${this.#t.kind} engine keeps ${d.replicas}`);
    if (want.persistent === true && (d.storage === 'memory' || d.storage === 'none')) short.push(`persistence was asked for; the ${this.#t.kind} engine keeps events in ${d.storage === 'none' ? 'no storage at all' : 'memory only'}: a restart loses them`);
    if (want.fsync === true && d.fsync !== 'always') {
      short.push(
        this.#t.kind === 'nats'
          ? 'fsync per event was asked for; JetStream syncs lazily by default and the client cannot see the server setting (set sync_interval: always in nats-server.conf)'
          : `fsync per event was asked for; Redis runs appendfsync ${d.fsync} (set appendonly yes, appendfsync always)`,
      );
    }
    for (const w of short) {
      this.#durabilityWarnings.push(w);
      process.emitWarning(`myelin bus: ${w}`, { code: 'MYELIN_DURABILITY' });
    }
  }

  /** Resolves once connected; rejects with ERR_TRANSPORT_UNAVAILABLE when the engine could not be reached in time. */
  get ready(): Promise<void> {
    return this.#connecting.then(() => {
      if (this.#failure !== undefined) throw this.#failure;
    });
  }

  async #afterConnect<T>(f: () => Promise<T>): Promise<T> {
    await this.ready;
    return f();
  }

  #error(err: unknown): void {
    this.#errors++;
    this.#lastError = err instanceof Error ? err.message : String(err);
  }

  // ------------------------------------------------------------------ publishing

  #check(where: string, subject: unknown): void {
    if (this.#closed) throw new MyelinError('ERR_BUS_CLOSED', `${where}('${String(subject)}'): the bus is closed`);
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** The last subject that passed validation: hot loops publish one subject (the native check is an N-API call). */
  #lastSubject = '';

  #message(subject: string, data: unknown, opts: PublishOptions | undefined, where: string, keys: ReadonlySet<string>): OutMessage {
    if (subject !== this.#lastSubject) {
      checkSubject(subject, false, where);
      this.#lastSubject = subject;
    }
    let o: ParsedPublish = { lane: 2, key: undefined, headers: undefined, json: false };
    let id: string | undefined;
    if (opts !== undefined) {
      o = parsePublishOptions(opts, where, keys);
      if (o.json && !(data instanceof Uint8Array)) {
        throw invalidArgument(`${where}: with contentType 'application/json' the data must be a Uint8Array or Buffer of UTF-8 JSON, got ${describeType(data)}`);
      }
      id = checkId((opts as { id?: unknown }).id, where);
      if (o.headers !== undefined) {
        for (const h in o.headers) {
          if (!HEADER_NAME.test(h) || RESERVED_HEADER.test(h)) throw invalidArgument(`${where}: header name '${h.slice(0, 64)}' must be an HTTP token and must not start with 'Myelin-' or 'Nats-'`);
          if (/[\r\n]/.test(o.headers[h])) throw invalidArgument(`${where}: headers['${h.slice(0, 64)}'] must not contain line breaks`);
        }
      }
    }
    const { enc, payload, text } = encodeData(data, o.json, where);
    return {
      subject,
      payload,
      text,
      enc,
      lane: o.lane,
      key: o.key,
      headers: o.headers,
      id: id ?? `${this.#node}.${++this.#seq}`,
      userId: id !== undefined,
      time: this.#clock(),
    };
  }

  #now = 0;
  #ticks = 0;
  #clockFresh = false;
  readonly #clockStale = (): void => {
    this.#clockFresh = false;
  };

  /**
   * The publish clock, as the in-memory bus keeps it: read once per task (the first
   * publish after the task's microtasks ran) and every 256 publishes, not per event.
   */
  #clock(): number {
    if (!this.#clockFresh) {
      this.#clockFresh = true;
      queueMicrotask(this.#clockStale);
    } else if (++this.#ticks < 256) return this.#now;
    this.#ticks = 0;
    return (this.#now = performance.timeOrigin + performance.now());
  }

  publish(subject: string, data?: unknown, opts?: PublishOptions): boolean {
    this.#check('publish', subject);
    const msg = this.#message(subject, data, opts, 'publish', CLUSTER_PUBLISH_KEYS);
    return this.#accept(msg, undefined, 'publish');
  }

  publishAsync(subject: string, data?: unknown, opts?: PublishOptions): Promise<void> {
    let msg: OutMessage;
    try {
      this.#check('publishAsync', subject);
      msg = this.#message(subject, data, opts, 'publishAsync', CLUSTER_PUBLISH_KEYS);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + this.#o.ackTimeoutMs;
      const done = (err: unknown) => (err === undefined ? resolve() : reject(err));
      const attempt = (): void => {
        try {
          if (this.#accept(msg, done, 'publishAsync')) return;
        } catch (err) {
          return reject(err);
        }
        if (this.#overflow !== 'wait') return resolve(); // dropped as newest: counted, not lost
        const left = deadline - Date.now();
        if (left <= 0) {
          return reject(new MyelinError('ERR_TRANSPORT_UNAVAILABLE', `publishAsync('${subject}'): the outbox stayed full (${this.#capacity} events unacknowledged) for ${this.#o.ackTimeoutMs} ms; the event was not sent`));
        }
        const t = setTimeout(attempt, left);
        this.#roomWaiters.push(() => {
          clearTimeout(t);
          if (this.#closed) reject(new MyelinError('ERR_BUS_CLOSED', `publishAsync('${subject}'): the bus closed while waiting for room`));
          else attempt();
        });
      };
      attempt();
    });
  }

  publishBatch(items: ReadonlyArray<BatchItem>): number {
    this.#check('publishBatch', '');
    if (!Array.isArray(items)) throw invalidArgument(`publishBatch(items): items must be an array, got ${describeType(items)}`);
    const msgs: OutMessage[] = [];
    for (let i = 0; i < items.length; i++) {
      const it = items[i];
      const where = `publishBatch: items[${i}]`;
      if (it === null || typeof it !== 'object') throw invalidArgument(`${where} must be an object, got ${describeType(it)}`);
      checkOptions(it, where, CLUSTER_BATCH_KEYS);
      const { subject, data, ...opts } = it;
      msgs.push(this.#message(subject, data, opts, where, CLUSTER_PUBLISH_KEYS));
    }
    if (this.#overflow === 'reject' && this.#outstanding() + msgs.length > this.#capacity) {
      this.#refused++;
      throw new MyelinError('ERR_BUS_FULL', `publishBatch: the outbox has room for ${this.#capacity - this.#outstanding()} events, the batch needs ${msgs.length} (nothing was sent)`);
    }
    let n = 0;
    for (let i = 0; i < msgs.length; i++) {
      if (this.#accept(msgs[i], undefined, 'publishBatch')) n++;
      else if (this.#overflow === 'wait') {
        this.#refused += msgs.length - i - 1; // #accept counted this one
        break;
      }
    }
    return n;
  }

  #outstanding(): number {
    return this.#waiting + this.#sending;
  }

  /** Puts one message in the outbox under the overflow policy; false: not accepted (full, or dropped as newest). */
  #accept(msg: OutMessage, done: ((err: unknown) => void) | undefined, where: string): boolean {
    if (this.#outstanding() >= this.#capacity) {
      switch (this.#overflow) {
        case 'wait':
          if (done === undefined) this.#refused++;
          return false;
        case 'reject':
          this.#refused++;
          throw new MyelinError('ERR_BUS_FULL', `${where}('${msg.subject}'): the outbox is full (${this.#capacity} events not yet acknowledged by the engine)`);
        case 'drop-newest':
          this.#published++;
          this.#lanePublished[msg.lane]++;
          this.#dropped++;
          this.#laneDropped[msg.lane]++;
          return false;
        case 'drop-oldest':
          if (!this.#dropOldest()) {
            this.#published++;
            this.#lanePublished[msg.lane]++;
            this.#dropped++;
            this.#laneDropped[msg.lane]++;
            return false;
          }
          break;
      }
    }
    this.#published++;
    this.#lanePublished[msg.lane]++;
    this.#waiting++;
    const e: Entry = { msg, seq: ++this.#order, done, retry: done === undefined, state: 0, timer: undefined };
    if (done !== undefined) {
      e.timer = setTimeout(() => this.#expire(e), this.#o.ackTimeoutMs);
      e.timer.unref?.();
    }
    this.#queue.push(e);
    if (this.#sending < this.#window && this.#retryTimer === undefined) this.#pump();
    return true;
  }

  /** drop-oldest: removes the oldest event not yet sent. False when every outstanding event is already in flight. */
  #dropOldest(): boolean {
    // Retries were sent before anything still queued, so the oldest is among them when
    // there are any (the list is sorted only when a retry round starts).
    let oldest: Entry | undefined;
    for (const e of this.#retry) if (e.state === 0 && (oldest === undefined || e.seq < oldest.seq)) oldest = e;
    for (let i = this.#qHead; oldest === undefined && i < this.#queue.length; i++) if (this.#queue[i].state === 0) oldest = this.#queue[i];
    if (oldest === undefined) return false;
    this.#finish(oldest, new MyelinError('ERR_BUS_FULL', `'${oldest.msg.subject}' was dropped from the full outbox (drop-oldest)`));
    this.#dropped++;
    this.#laneDropped[oldest.msg.lane]++;
    return true;
  }

  /**
   * A publishAsync deadline passed. Sent: the send's own timeout (ackTimeoutMs from
   * the send) settles it, as unknown if no acknowledgement comes. Still in
   * the outbox behind other events: while the engine keeps acknowledging (an ack inside
   * the last ackTimeoutMs), the event is only queued behind a deep outbox, and its
   * deadline is extended; when nothing has been acknowledged for that long, it is
   * taken out, never sent (counted dropped), and the error says so.
   */
  #expire(e: Entry): void {
    if (e.state === 2) return;
    const kind = this.#t.kind;
    if (e.state === 0) {
      const quiet = performance.now() - this.#lastAckAt;
      if (quiet < this.#o.ackTimeoutMs && this.#t.connected) {
        e.timer = setTimeout(() => this.#expire(e), this.#o.ackTimeoutMs - quiet);
        e.timer.unref?.();
        return;
      }
      this.#dropped++;
      this.#laneDropped[e.msg.lane]++;
      this.#finish(e, new MyelinError('ERR_TRANSPORT_UNAVAILABLE', `publishAsync('${e.msg.subject}'): not sent: the ${kind} engine acknowledged nothing for ${Math.round(quiet)} ms (${this.#outstanding() - 1} events ahead of it); it was taken out of the outbox`));
    }
  }

  /** When the engine last acknowledged a send (performance.now()). */
  #lastAckAt = 0;

  /** Ends an entry once: reports to its caller, frees its outbox slot (a sent entry's slot is #sending's, freed by its send callback). */
  #finish(e: Entry, err: unknown): void {
    const was = e.state;
    if (was === 2) return;
    e.state = 2;
    if (e.timer !== undefined) clearTimeout(e.timer);
    if (was === 0) this.#waiting--;
    e.done?.(err);
    this.#room();
  }

  #room(): void {
    if (this.#roomWaiters.length > 0 && this.#outstanding() < this.#capacity) {
      const w = this.#roomWaiters;
      this.#roomWaiters = [];
      for (const f of w) f();
    }
    this.#checkDrained();
  }

  /** Sends waiting entries, retries first (oldest first), while the window has room. */
  #pump(): void {
    if (!this.#up || this.#failure !== undefined || this.#retryTimer !== undefined) return;
    const window = this.#window;
    while (this.#sending < window) {
      let e: Entry | undefined;
      if (this.#retry.length > 0) e = this.#retry.shift();
      else if (this.#qHead < this.#queue.length) {
        e = this.#queue[this.#qHead++];
        if (this.#qHead > 4096 && this.#qHead * 2 > this.#queue.length) {
          this.#queue = this.#queue.slice(this.#qHead);
          this.#qHead = 0;
        }
      } else break;
      if (e === undefined || e.state !== 0) continue;
      e.state = 1;
      this.#waiting--;
      this.#sending++;
      const p = this.#t.send(e.msg, this.#o.ackTimeoutMs);
      // A transport may answer many sends with one promise (core NATS: one flush per
      // turn): those entries share one pair of reactions instead of one pair each.
      if (p === this.#batchOf) {
        (this.#batch as Entry[]).push(e);
        continue;
      }
      const batch = [e];
      this.#batchOf = p;
      this.#batch = batch;
      p.then(
        (r) => {
          if (this.#batchOf === p) this.#batchOf = this.#batch = undefined;
          for (let i = 0; i < batch.length; i++) this.#sent(batch[i], r);
          this.#pump();
          this.#room();
        },
        (err: unknown) => {
          if (this.#batchOf === p) this.#batchOf = this.#batch = undefined;
          for (let i = 0; i < batch.length; i++) this.#sendFailed(batch[i], err);
          this.#room();
        },
      );
    }
  }

  #batchOf: Promise<unknown> | undefined;
  #batch: Entry[] | undefined;

  /** The engine acknowledged a send. */
  #sent(e: Entry, r: SendResult): void {
    this.#sending--;
    this.#backoff = 0;
    this.#acked++;
    this.#lastAckAt = performance.now();
    if (r.duplicate) this.#duplicates++;
    if (!r.stored) this.#notStored++;
    if (e.state === 1) this.#finish(e, undefined);
  }

  /** A send failed: publish() events go again after a backoff (same id); a publishAsync's fate is unknown. */
  #sendFailed(e: Entry, err: unknown): void {
    this.#sending--;
    this.#sendFailures++;
    this.#error(err);
    if (e.state !== 1) return;
    if (e.retry && !this.#closedHard && this.#failure === undefined) {
      // Sent again after a backoff, with the same id: the engine stores it once.
      e.state = 0;
      this.#waiting++;
      this.#retry.push(e); // sorted once, when the retry round starts (#scheduleRetry)
      this.#scheduleRetry();
    } else {
      this.#unknown++;
      this.#finish(e, err instanceof MyelinError ? err : new MyelinError('ERR_TRANSPORT_UNAVAILABLE', `${(err as Error).message}; the event's fate is unknown`, { cause: err }));
    }
  }

  #scheduleRetry(): void {
    if (this.#retryTimer !== undefined) return;
    this.#backoff = Math.min(this.#backoff === 0 ? 50 : this.#backoff * 2, 2000);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#retry.sort((a, b) => a.seq - b.seq); // oldest first; #pump waits for this timer
      this.#pump();
    }, this.#backoff);
  }

  /** Ends every event not yet sent (connect failed, or close gave up): never sent, so counted dropped. */
  #failOutbox(err: MyelinError): void {
    for (const list of [this.#retry, this.#queue]) {
      for (const e of list) {
        if (e.state !== 0) continue;
        this.#dropped++;
        this.#laneDropped[e.msg.lane]++;
        this.#finish(e, err);
      }
    }
    this.#retry = [];
    this.#queue = [];
    this.#qHead = 0;
    const w = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const f of w) f();
  }

  /** Sends a dead letter; `then` runs once the engine has it (retried until it does, or the bus closes hard). */
  sendInternal(msg: OutMessage, then: (err: unknown) => void): void {
    this.#published++;
    this.#lanePublished[msg.lane]++;
    this.#waiting++;
    const e: Entry = { msg, seq: ++this.#order, done: then, retry: true, state: 0, timer: undefined };
    this.#queue.push(e);
    this.#pump();
  }

  newMessage(subject: string, data: unknown, key: string | undefined, lane: number): OutMessage {
    const { enc, payload, text } = encodeData(data, false, 'dead letter');
    return { subject, payload, text, enc, lane, key, headers: undefined, id: `${this.#node}.${++this.#seq}`, userId: false, time: performance.timeOrigin + performance.now() };
  }

  // ------------------------------------------------------------------ receiving

  subscribe(pattern: string, handler?: Handler, opts: SubscribeOptions & { ackWaitMs?: number; maxDeliver?: number } = {}): Subscription {
    if (this.#closed) throw new MyelinError('ERR_BUS_CLOSED', `subscribe('${pattern}'): the bus is closed`);
    if (typeof pattern !== 'string') throw invalidArgument(`subscribe: pattern must be a string, got ${typeof pattern}`);
    checkSubject(pattern, true, 'subscribe');
    if (handler !== undefined && typeof handler !== 'function') throw invalidArgument('subscribe: handler must be a function');
    checkOptions(opts, 'subscribe', CLUSTER_SUBSCRIBE_KEYS);
    const { queue, concurrency, signal } = opts;
    if (queue !== undefined && (typeof queue !== 'string' || queue === '' || queue.length > 200)) throw invalidArgument('subscribe: queue must be a non-empty string of at most 200 characters');
    if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 65536)) {
      throw invalidArgument(`subscribe: concurrency must be an integer from 1 to 65536 on a cluster transport, got ${String(concurrency)}`);
    }
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgument('subscribe: signal must be an AbortSignal');
    const { ackWaitMs, maxDeliver } = resolveSubscribe(opts);
    let consumer: ClusterConsumer | undefined;
    const sub = new Subscription(this.#nextSub++, pattern, handler, { queue, concurrency }, () => consumer?.stop());
    consumer = new ClusterConsumer(this, sub, { pattern, queue, ackWaitMs, maxDeliver });
    this.#consumers.add(consumer);
    const c = consumer;
    sub.ready = this.#connecting.then(() => {
      if (this.#failure !== undefined) throw this.#failure;
      if (sub.closed) return;
      return c.start(this.#t);
    });
    sub.ready.catch((err: unknown) => this.#error(err));
    if (signal) {
      if (signal.aborted) sub.unsubscribe();
      else signal.addEventListener('abort', () => sub.unsubscribe(), { once: true });
    }
    return sub;
  }

  /** Request/reply over the engine (NATS core request); the first reply wins. */
  async request<T = unknown>(subject: string, data?: unknown, opts?: PublishOptions & { timeoutMs?: number; signal?: AbortSignal }): Promise<T> {
    this.#check('request', subject);
    const o = (opts ?? {}) as PublishOptions & { timeoutMs?: unknown; signal?: unknown };
    checkOptions(o, 'request', new Set([...CLUSTER_PUBLISH_KEYS, 'timeoutMs', 'signal']));
    const { timeoutMs: t, signal, ...publishOpts } = o;
    const timeoutMs = t === undefined ? 5000 : t;
    if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || timeoutMs > 2 ** 31 - 1) throw invalidArgument(`request: timeoutMs must be a number from 1 to 2^31-1, got ${String(timeoutMs)}`);
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgument(`request: signal must be an AbortSignal, got ${describeType(signal)}`);
    const msg = this.#message(subject, data, publishOpts, 'request', CLUSTER_PUBLISH_KEYS);
    if (this.#t.request === undefined) throw invalidArgument(`request('${subject}'): the ${this.#t.kind} transport does not carry request/reply; use the NATS transport or an in-memory bus`);
    await this.ready;
    if (signal?.aborted) throw new MyelinError('ERR_ABORTED', `request('${subject}') aborted`, { cause: signal.reason });
    const r = await this.#t.request(msg, timeoutMs);
    const err = r.meta.headers?.['X-Myelin-Error'];
    if (err !== undefined) throw new MyelinError('ERR_HANDLER_FAILED', `request('${subject}'): the handler failed: ${err}`);
    return toEvent({ subject, payload: r.payload, meta: r.meta, deliveries: 1, ack: () => {} }, 0).data as T;
  }

  workers(): Promise<never> {
    return Promise.reject(invalidArgument(`workers(): worker pools on a ${this.#t.kind} transport are not available yet; subscribe with a queue group in each process instead`));
  }

  // ------------------------------------------------------------------ consumer callbacks

  nextEventId(): number {
    return this.#nextEvent++;
  }

  onDelivered(time: number): void {
    this.#delivered++;
    const lat = (this.#clock() - time) * 1e6;
    this.#latency.recordTrusted(lat > 0 ? lat : 0);
  }

  onFailed(): void {
    this.#failed++;
  }

  onRedelivered(): void {
    this.#redelivered++;
  }

  onDeadLettered(): void {
    this.#deadLettered++;
  }

  onTakeover(count: number, idleMs: number): void {
    this.#takeovers += count;
    this.#takeoverMs = idleMs;
  }

  onLost(count: number, why: string): void {
    this.#lost += count;
    this.#error(new Error(`${count} events lost: ${why}`));
  }

  onError(err: unknown): void {
    this.#error(err);
  }

  onSettled(): void {
    this.#checkDrained();
  }

  consumerEnded(c: ClusterConsumer): void {
    this.#consumers.delete(c);
    this.#checkDrained();
  }

  // ------------------------------------------------------------------ registry

  #beat(): void {
    if (this.#closed) return;
    const now = performance.now();
    const elu = performance.eventLoopUtilization(this.#elu);
    this.#elu = performance.eventLoopUtilization();
    const secs = (now - this.#lastBeat.at) / 1000;
    const rate = secs > 0 ? (this.#published - this.#lastBeat.published) / secs : 0;
    this.#lastBeat = { at: now, published: this.#published };
    let inFlight = 0;
    for (const c of this.#consumers) inFlight += c.inFlight;
    const info: NodeInfo = {
      id: this.#node,
      address: this.#o.address ?? `${hostname()}:${process.pid}`,
      version: version(),
      capabilities: ['bus', this.#t.kind],
      load: { queued: this.#outstanding(), inFlight, elu: Math.round(elu.utilization * 1000) / 1000, rate: Math.round(rate) },
      config: { ...this.#configVersions },
      startedAt: this.#startedAt,
      seenAt: Date.now(),
    };
    this.#t.announce(info, this.#o.heartbeatMs * 3).catch((e: unknown) => this.#error(e));
  }

  // ------------------------------------------------------------------ lifecycle

  #idle(): boolean {
    if (this.#outstanding() > 0) return false;
    for (const c of this.#consumers) if (c.inFlight > 0) return false;
    return true;
  }

  #checkDrained(): void {
    if (this.#drainWaiters.length === 0 || !this.#idle()) return;
    const w = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const f of w) f();
  }

  /** Resolves once every accepted event is acknowledged by the engine (or failed) and every local delivery settled. */
  drain(): Promise<void> {
    if (this.#idle()) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #closedHard = false;
  /** Connected once: sends start (before that, events wait in the outbox). */
  #up = false;

  /**
   * Stops accepting events, waits for the outbox to be acknowledged (at most
   * ackTimeoutMs after the last progress; what is left then is counted `unknown`),
   * lets local deliveries finish, leaves the registry and disconnects. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#closing = (async () => {
      await this.#connecting;
      if (this.#failure === undefined) {
        let last = -1;
        while (this.#outstanding() > 0 && this.#outstanding() !== last) {
          last = this.#outstanding();
          await Promise.race([this.drain(), new Promise((r) => setTimeout(r, this.#o.ackTimeoutMs + 100))]);
        }
      }
      this.#closedHard = true;
      if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
      this.#failOutbox(new MyelinError('ERR_BUS_CLOSED', 'the bus closed before the engine acknowledged this event; its fate is unknown'));
      for (const end of [...this.#watches]) end();
      await this.#metrics?.close(); // while the groups still exist: their last lag
      await Promise.all([...this.#consumers].map((c) => c.close()));
      if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
      if (this.#failure === undefined) await this.#t.withdraw(this.#node).catch((e: unknown) => this.#error(e));
      this.#busMetrics?.close();
      await this.#t.close().catch((e: unknown) => this.#error(e));
      this.#latency.close();
      this.#hist.close();
    })();
    return this.#closing;
  }

  get closed(): boolean {
    return this.#closed;
  }

  stats(): ClusterStats {
    let inFlight = 0;
    let queued = 0;
    let subscriptions = 0;
    for (const c of this.#consumers) {
      inFlight += c.running;
      queued += c.buffered;
      if (!c.sub.closed) subscriptions++;
    }
    // Per priority: published and dropped. A cluster bus has no local lanes (its outbox
    // is one FIFO, transport.outbox; the subscriptions' backlog is `queued`), so a
    // lane's queued is 0.
    const lanes = {} as BusStats['lanes'];
    for (let l = 0; l < 4; l++) lanes[PRIORITIES[l]] = { published: this.#lanePublished[l], queued: 0, dropped: this.#laneDropped[l], capacity: this.#capacity };
    const latencyUs = latencyOf(this.#hist, this.#closing !== undefined);
    return {
      published: this.#published,
      delivered: this.#delivered,
      dropped: this.#dropped,
      failed: this.#failed,
      queued,
      inFlight,
      unrouted: 0,
      refused: this.#refused,
      shed: 0,
      subscriptions,
      lanes,
      latencyUs,
      transport: {
        kind: this.#t.kind,
        node: this.#node,
        connected: this.#t.connected,
        acked: this.#acked,
        duplicates: this.#duplicates,
        notStored: this.#notStored,
        unacked: this.#sending,
        outbox: this.#waiting,
        sendFailures: this.#sendFailures,
        unknown: this.#unknown,
        redelivered: this.#redelivered,
        deadLettered: this.#deadLettered,
        takeovers: { count: this.#takeovers, lastMs: this.#takeoverMs },
        lost: this.#lost,
        errors: this.#errors,
        lastError: this.#lastError,
        durability: this.#durability,
        durabilityWarnings: [...this.#durabilityWarnings],
      },
    };
  }
}

function checkName(name: unknown, where: string): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_-]{1,128}$/.test(name)) {
    throw invalidArgument(`${where}(name): name must be 1 to 128 letters, digits, '_' or '-', got ${typeof name === 'string' ? `'${name.slice(0, 64)}'` : describeType(name)}`);
  }
  return name;
}

interface ConsumerSpec {
  pattern: string;
  queue: string | undefined;
  ackWaitMs: number;
  maxDeliver: number;
}

/**
 * One subscription's deliveries: per-key order, the concurrency bound, acknowledgement
 * after success, in-place retries, dead letters. The public handle is `sub`
 * (lib/bus/subscription.ts); `sub.inflight` counts every delivery taken and not settled,
 * so its drain() works as on the in-memory bus.
 */
class ClusterConsumer implements DeliverySink {
  readonly sub: Subscription;
  readonly #bus: ClusterBus;
  readonly #spec: ConsumerSpec;
  readonly #handler: Handler;
  readonly #concurrency: number;
  readonly #maxBuffered: number;
  #buf: Delivery[] = [];
  #head = 0;
  readonly #keys = new Set<string>();
  running = 0;
  #engine: EngineSubscription | undefined;
  #roomWaiters: Array<() => void> = [];
  #stopped = false;

  constructor(bus: ClusterBus, sub: Subscription, spec: ConsumerSpec) {
    this.#bus = bus;
    this.sub = sub;
    this.#spec = spec;
    this.#handler = sub.handler;
    this.#concurrency = sub.concurrency;
    this.#maxBuffered = Math.max(512, this.#concurrency * 4);
  }

  get buffered(): number {
    return this.#buf.length - this.#head;
  }

  get inFlight(): number {
    return this.running + this.buffered;
  }

  async start(t: Transport): Promise<void> {
    this.#engine = t.subscribe(this.#spec, this);
    if (this.#stopped) void this.#engine.close();
    await this.#engine.ready;
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    void this.#engine?.close().catch((e: unknown) => this.#bus.onError(e));
    this.#wakeRoom();
    if (this.inFlight === 0) this.#bus.consumerEnded(this);
  }

  /**
   * Unsubscribes and waits for the deliveries taken to settle, at most the ack-wait:
   * a handler that never settles must not hold close() forever, and its event, never
   * acknowledged, goes to another member after the ack-wait anyway.
   */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.sub.drain(), new Promise<void>((r) => (timer = setTimeout(r, this.#spec.ackWaitMs)))]);
    clearTimeout(timer);
    this.stop();
  }

  // DeliverySink

  push(d: Delivery): void {
    this.sub.inflight++;
    if (d.deliveries > 1) this.#bus.onRedelivered();
    const key = d.meta.key;
    if (this.running < this.#concurrency && this.buffered === 0 && (key === undefined || !this.#keys.has(key))) this.#run(d, d.deliveries);
    else this.#buf.push(d);
  }

  room(): number {
    return this.#stopped ? 0 : Math.max(0, this.#maxBuffered - this.buffered - this.running);
  }

  waitRoom(): Promise<void> {
    if (this.#stopped || this.room() > 0) return Promise.resolve();
    return new Promise((r) => this.#roomWaiters.push(r));
  }

  takeover(count: number, idleMs: number): void {
    this.#bus.onTakeover(count, idleMs);
  }

  lost(count: number, why: string): void {
    this.#bus.onLost(count, why);
  }

  error(err: unknown): void {
    this.#bus.onError(err);
  }

  #wakeRoom(): void {
    if (this.#roomWaiters.length === 0) return;
    const w = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const f of w) f();
  }

  #pumping = false;
  #again = false;

  /**
   * Starts buffered deliveries that have a slot and a free key, in order. Not
   * re-entrant: a handler that settles at once calls back here through #settle, which
   * only asks for another pass; each pass restarts at the head, where a key freed by
   * that settlement may have made an earlier parked delivery runnable.
   */
  #pump(): void {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#again = false;
        let i = this.#head;
        while (i < this.#buf.length && this.running < this.#concurrency) {
          const d = this.#buf[i];
          const key = d.meta.key;
          if (key !== undefined && this.#keys.has(key)) {
            i++;
            continue;
          }
          if (i === this.#head) this.#head++;
          else this.#buf.splice(i, 1);
          this.#run(d, d.deliveries);
          i = this.#head;
        }
      } while (this.#again && this.running < this.#concurrency);
    } finally {
      this.#pumping = false;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#buf.length) {
      this.#buf = this.#buf.slice(this.#head);
      this.#head = 0;
    }
    if (this.room() * 2 >= this.#maxBuffered) this.#wakeRoom();
  }

  #run(d: Delivery, deliveries: number): void {
    this.running++;
    const key = d.meta.key;
    if (key !== undefined) this.#keys.add(key);
    if (deliveries > this.#spec.maxDeliver) {
      // The engine delivered it more often than allowed without an acknowledgement
      // (members died or stalled past the ack-wait): dead-letter it now.
      return this.#deadLetter(d, deliveries, new MyelinError('ERR_REQUEST_TIMEOUT', `delivered ${deliveries} times without an acknowledgement (ack-wait ${this.#spec.ackWaitMs} ms expired each time)`));
    }
    let ev: BusEvent;
    let result: unknown;
    try {
      ev = toEvent(d.deliveries === deliveries ? d : { ...d, deliveries }, this.#bus.nextEventId());
      result = this.#handler(ev);
    } catch (err) {
      return this.#fail(d, deliveries, err);
    }
    if (isThenable(result)) {
      result.then(
        (v) => this.#ok(d, v),
        (err: unknown) => this.#fail(d, deliveries, err),
      );
    } else {
      this.#ok(d, result);
    }
  }

  #ok(d: Delivery, value: unknown): void {
    d.ack();
    if (d.respond !== undefined) {
      try {
        const { enc, payload, text } = encodeData(value, false, 'reply');
        d.respond(text === undefined ? payload : Buffer.from(text), { enc, lane: 2, key: undefined, headers: undefined, id: '', userId: false, time: Date.now() });
      } catch (err) {
        d.respond(new Uint8Array(0), { enc: Encoding.None, lane: 2, key: undefined, headers: { 'X-Myelin-Error': (err as Error).message }, id: '', userId: false, time: Date.now() });
      }
    }
    this.#bus.onDelivered(d.meta.time);
    this.#settle(d);
  }

  #fail(d: Delivery, deliveries: number, err: unknown): void {
    if (d.respond !== undefined) {
      // A request is answered with the failure at once, not retried.
      d.respond(new Uint8Array(0), { enc: Encoding.None, lane: 2, key: undefined, headers: { 'X-Myelin-Error': describeError(err, false).message.replace(/[\r\n]+/g, ' ').slice(0, 512) }, id: '', userId: false, time: Date.now() });
      d.ack();
      this.#bus.onFailed();
      return this.#settle(d);
    }
    if (this.#spec.queue === undefined || deliveries >= this.#spec.maxDeliver) return this.#deadLetter(d, deliveries, err);
    // Run it again in place: the key stays held, so later events of the key wait.
    d.working?.();
    const delay = Math.min(10 * 2 ** (deliveries - 1), 1000);
    setTimeout(() => {
      this.running--;
      const key = d.meta.key;
      if (key !== undefined) this.#keys.delete(key);
      this.#run(d, deliveries + 1);
    }, delay);
  }

  #deadLetter(d: Delivery, deliveries: number, err: unknown): void {
    this.#bus.onFailed();
    if (d.subject.startsWith('$DLQ.')) {
      // never dead-letter a dead letter: acknowledged and counted as failed
      d.ack();
      return this.#settle(d);
    }
    let data: unknown;
    try {
      data = toEvent(d, 0).data;
    } catch {
      data = Buffer.from(d.payload).toString('base64');
    }
    if (d.meta.enc === Encoding.JsonBytes) data = Buffer.from(d.payload).toString('utf8');
    const letter = {
      error: describeError(err, false),
      event: { subject: d.subject, data, key: d.meta.key, priority: PRIORITIES[d.meta.lane], headers: d.meta.headers, id: d.meta.id, time: d.meta.time, deliveries },
    };
    let msg: OutMessage;
    try {
      msg = this.#bus.newMessage(`$DLQ.${d.subject}`, letter, d.meta.key, 2);
    } catch (e) {
      this.#bus.onError(e);
      d.ack();
      return this.#settle(d);
    }
    // Acknowledged only once the engine has the dead letter: a crash in between
    // redelivers the event instead of losing it.
    this.#bus.sendInternal(msg, (e) => {
      if (e === undefined) {
        this.#bus.onDeadLettered();
        d.ack();
      } else {
        this.#bus.onError(e);
      }
      this.#settle(d);
    });
  }

  #settle(d: Delivery): void {
    this.running--;
    const key = d.meta.key;
    if (key !== undefined) this.#keys.delete(key);
    this.sub.inflight--;
    if (this.buffered > 0) this.#pump();
    else if (this.#roomWaiters.length > 0) this.#wakeRoom();
    this.sub.settled();
    this.#bus.onSettled();
    if (this.#stopped && this.inFlight === 0) this.#bus.consumerEnded(this);
  }
}
