// The NATS transport: core NATS for every subscriber, JetStream for durable groups.
//
// Subjects map 1:1: a bus subject is the NATS subject. One JetStream stream (default
// 'MYELIN') stores what durable groups read; its subject list grows as groups subscribe
// (each group's pattern is added unless a subject already there covers it), so a group
// starts with the events published after it and nothing else is stored.
//
// send(): a JetStream publish, as a request with our own headers (Nats-Msg-Id for the
// dedupe window, Myelin-* for the event's metadata); the PubAck is the engine's ack. A
// subject no stream captures answers "no responders" at once: the event went to the
// core subscribers connected now, at most once, and the result says stored: false. In
// core mode (stream: false) send() is a plain publish: nothing is ever stored.
//
// A queue group is a durable pull consumer (explicit ack, ack-wait, no max-deliver: the
// bus dead-letters, so JetStream never drops an event silently after N deliveries). The
// members of a group share it: each event goes to one member. A plain subscription is
// a core subscription (at most once, every subscriber). Request/reply is core request/reply.
import { hostname } from 'node:os';
import { AckPolicy, DeliverPolicy, type JetStreamManager, type JsMsg, jetstream, type JetStreamClient, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { createInbox, headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription as NatsSub } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { MyelinError } from '../errors.js';
import type { ResolvedNats } from './options.js';
import {
  type ConfigEntry,
  type Delivery,
  type DeliverySink,
  type Durability,
  Encoding,
  type EngineSubscription,
  type GroupSignal,
  type NodeInfo,
  type OutMessage,
  type SendResult,
  type SubscribeSpec,
  type Transport,
  type WireMeta,
} from './transport.js';

const NODES_BUCKET = 'myelin_nodes';
const CONFIG_BUCKET = 'myelin_config';
const H_ENC = 'Myelin-Enc';
const H_LANE = 'Myelin-Lane';
const H_KEY = 'Myelin-Key';
const H_TIME = 'Myelin-Time';
const H_UID = 'Myelin-Uid';
const H_ID = 'Nats-Msg-Id';
/** Set on a bus request: only those are answered (a JetStream publish also carries a reply subject). */
const H_REQ = 'Myelin-Req';
const RESERVED = /^(myelin-|nats-)/i;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Whether subject pattern `a` matches every subject pattern `b` matches (NATS token rules). */
export function covers(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; i < x.length; i++) {
    if (x[i] === '>') return y.length > i; // '>' takes one or more remaining tokens
    if (i >= y.length) return false;
    if (y[i] === '>') return false; // b goes on indefinitely where a has a single token
    if (x[i] === '*') continue;
    if (x[i] !== y[i]) return false;
  }
  return x.length === y.length;
}

/** A durable consumer name for a group: NATS forbids '.', '*', '>' and whitespace. */
export function durableName(queue: string, pattern: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < pattern.length; i++) {
    h ^= pattern.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `${queue.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 200)}_${h.toString(16).padStart(8, '0')}`;
}

function metaHeaders(m: WireMeta, withId: boolean): MsgHdrs | undefined {
  const core = !withId;
  // Core mode leaves out what the defaults say (a JSON value, lane normal, no key), so a
  // plain event costs no header block at all.
  if (core && m.enc === Encoding.Json && m.lane === 2 && m.key === undefined && m.headers === undefined) return undefined;
  const h = natsHeaders();
  if (m.headers !== undefined) for (const k in m.headers) h.set(k, m.headers[k]);
  if (m.enc !== Encoding.Json) h.set(H_ENC, String(m.enc));
  if (m.lane !== 2) h.set(H_LANE, String(m.lane));
  if (m.key !== undefined) h.set(H_KEY, encodeURIComponent(m.key));
  if (withId) {
    h.set(H_ID, m.id);
    h.set(H_TIME, String(m.time));
    if (m.userId) h.set(H_UID, '1');
  }
  return h;
}

function readHeaders(h: MsgHdrs | undefined): WireMeta {
  if (h === undefined) return { enc: Encoding.Json, lane: 2, key: undefined, headers: undefined, id: '', userId: false, time: Date.now() };
  let user: Record<string, string> | undefined;
  for (const [k, v] of h) {
    if (RESERVED.test(k)) continue;
    (user ??= {})[k] = v[0] ?? '';
  }
  const enc = Number(h.get(H_ENC) || Encoding.Json);
  const lane = Number(h.get(H_LANE) || 2);
  const key = h.get(H_KEY);
  const time = Number(h.get(H_TIME));
  return {
    enc: (enc >= 0 && enc <= 3 ? enc : Encoding.Bytes) as Encoding,
    lane: lane >= 0 && lane <= 3 ? lane : 2,
    key: key ? decodeURIComponent(key) : undefined,
    headers: user,
    id: h.get(H_ID) ?? '',
    userId: h.get(H_UID) === '1',
    time: time > 0 ? time : Date.now(),
  };
}

function unavailable(what: string, cause?: unknown): MyelinError {
  return new MyelinError('ERR_TRANSPORT_UNAVAILABLE', what, cause === undefined ? {} : { cause });
}

export class NatsTransport implements Transport {
  readonly kind = 'nats';
  readonly #o: ResolvedNats;
  #nc: NatsConnection | undefined;
  #js: JetStreamClient | undefined;
  #jsm: JetStreamManager | undefined;
  #kv = new Map<string, Promise<KV>>();
  #connected = false;
  #closed = false;
  /** The stream's subject filters as last read: a 503 on a subject they cover means JetStream is down, not "not stored". */
  #filters: string[] = [];
  readonly #groups: Array<{ durable: string; spec: SubscribeSpec }> = [];

  constructor(o: ResolvedNats) {
    this.#o = o;
  }

  get connected(): boolean {
    return this.#connected;
  }

  async connect(deadlineMs: number): Promise<void> {
    try {
      this.#nc = await connect({
        servers: this.#o.servers,
        name: this.#o.name ?? `myelin ${hostname()}:${process.pid}`,
        timeout: deadlineMs,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: 10_000,
      });
    } catch (err) {
      throw unavailable(`NATS transport: cannot reach ${this.#o.servers.join(', ')} within ${deadlineMs} ms (${(err as Error).message})`, err);
    }
    const nc = this.#nc as NatsConnection;
    this.#connected = true;
    void this.#watchStatus(nc);
    if (this.#o.stream !== false) {
      this.#js = jetstream(nc, { timeout: this.#o.ackTimeoutMs });
      try {
        this.#jsm = await jetstreamManager(nc, { timeout: deadlineMs });
      } catch (err) {
        await nc.close();
        throw unavailable(`NATS transport: JetStream is not enabled on ${this.#o.servers.join(', ')} (start nats-server with -js, or set transport.stream: false for core NATS only)`, err);
      }
      await this.#refreshFilters();
      this.#followStream(nc, this.#o.stream);
      this.#listenForAcks(nc);
    }
  }

  async #watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') this.#connected = false;
      else if (s.type === 'reconnect') this.#connected = true;
    }
    this.#connected = false;
  }

  async #refreshFilters(): Promise<void> {
    if (this.#jsm === undefined || this.#o.stream === false) return;
    let next: string[];
    try {
      next = (await this.#jsm.streams.info(this.#o.stream)).config.subjects ?? [];
    } catch {
      next = [];
    }
    this.#setFilters(next);
  }

  #setFilters(next: string[]): void {
    if (next.length === this.#filters.length && next.every((f, i) => f === this.#filters[i])) return;
    this.#filters = next;
    this.#capturedCache.clear();
  }

  /**
   * Keeps the stream's subject list current: a group another node creates adds its
   * pattern, and publishes from here must go to JetStream from then on. The server's
   * stream advisories say so within milliseconds; a refresh every 5 s covers a
   * missed advisory (reconnect).
   */
  #followStream(nc: NatsConnection, stream: string): void {
    nc.subscribe(`$JS.EVENT.ADVISORY.STREAM.*.${stream}`, { callback: () => void this.#refreshFilters() });
    const t = setInterval(() => void this.#refreshFilters(), 5000);
    t.unref();
    this.#timers.push(t);
  }

  readonly #timers: NodeJS.Timeout[] = [];

  // ------------------------------------------------------------------ sending

  send(msg: OutMessage, timeoutMs: number): Promise<SendResult> {
    const nc = this.#nc;
    if (nc === undefined || this.#closed) return Promise.reject(unavailable('NATS transport: not connected'));
    if (this.#o.stream === false || !this.#captured(msg.subject)) {
      // No stream captures it: a core publish to the subscribers connected now. The
      // server has it once a PING sent after it is answered; one flush serves every
      // send of this tick.
      try {
        nc.publish(msg.subject, msg.text ?? msg.payload, { headers: metaHeaders(msg, this.#o.stream !== false) });
      } catch (err) {
        return Promise.reject(unavailable(`NATS transport: publish to '${msg.subject}' failed (${(err as Error).message})`, err));
      }
      return this.#flushed(nc, timeoutMs);
    }
    // A JetStream publish: the PubAck comes to our one reply subscription (#acks),
    // matched by the reply subject's sequence number. No request object, inbox lookup
    // or timer per event: one deadline sweeper covers every outstanding publish.
    const n = ++this.#ackSeq;
    try {
      nc.publish(msg.subject, msg.text ?? msg.payload, { headers: metaHeaders(msg, true), reply: `${this.#ackInbox}${n}` });
    } catch (err) {
      return Promise.reject(unavailable(`NATS transport: publish to '${msg.subject}' failed (${(err as Error).message})`, err));
    }
    return new Promise<SendResult>((resolve, reject) => {
      this.#awaiting.set(n, { resolve, reject, subject: msg.subject, deadline: performance.now() + timeoutMs, timeoutMs });
      this.#armSweep();
    });
  }

  /** Where PubAcks come back: `<inbox>.<seq>`. */
  #ackInbox = '';
  #ackSeq = 0;
  /** Outstanding JetStream publishes by sequence, in send order (a Map iterates in insertion order). */
  readonly #awaiting = new Map<number, AwaitingAck>();
  #sweep: NodeJS.Timeout | undefined;

  #listenForAcks(nc: NatsConnection): void {
    const inbox = createInbox();
    this.#ackInbox = `${inbox}.`;
    const from = this.#ackInbox.length;
    nc.subscribe(`${inbox}.*`, {
      callback: (err, m) => {
        if (err) return;
        const n = Number(m.subject.slice(from));
        const a = this.#awaiting.get(n);
        if (a === undefined) return; // answered after its deadline: already reported unknown
        this.#awaiting.delete(n);
        if (m.headers?.hasError) {
          // 503: no stream took it (JetStream down, or the stream gone)
          a.reject(unavailable(`NATS transport: JetStream answered ${m.headers.code} for '${a.subject}' (${m.headers.description || 'no responders'}); its fate is unknown`));
          return;
        }
        try {
          a.resolve(this.#pubAck(a.subject, m));
        } catch (e) {
          a.reject(e);
        }
      },
    });
  }

  #armSweep(): void {
    if (this.#sweep !== undefined) return;
    this.#sweep = setTimeout(() => {
      this.#sweep = undefined;
      const now = performance.now();
      for (const [n, a] of this.#awaiting) {
        if (a.deadline > now) break;
        this.#awaiting.delete(n);
        a.reject(unavailable(`NATS transport: no acknowledgement for '${a.subject}' within ${a.timeoutMs} ms; its fate is unknown`));
      }
      if (this.#awaiting.size > 0) this.#armSweep();
    }, 100);
    this.#sweep.unref?.();
  }

  #flush: Promise<SendResult> | undefined;

  #flushed(nc: NatsConnection, timeoutMs: number): Promise<SendResult> {
    if (this.#flush !== undefined) return this.#flush;
    const p = new Promise<SendResult>((resolve, reject) => {
      const t = setTimeout(() => reject(unavailable(`NATS transport: the server did not answer a flush within ${timeoutMs} ms; the events' fate is unknown`)), timeoutMs);
      queueMicrotask(() => {
        this.#flush = undefined;
        nc.flush().then(
          () => {
            clearTimeout(t);
            resolve(NOT_STORED);
          },
          (err: unknown) => {
            clearTimeout(t);
            reject(unavailable(`NATS transport: flush failed (${(err as Error).message})`, err));
          },
        );
      });
    });
    this.#flush = p;
    return p;
  }

  /** Whether the stream's subjects (as last read) capture `subject`: cached per subject, cleared when they change. */
  #captured(subject: string): boolean {
    let c = this.#capturedCache.get(subject);
    if (c === undefined) {
      c = this.#filters.some((f) => covers(f, subject));
      if (this.#capturedCache.size > 10_000) this.#capturedCache.clear();
      this.#capturedCache.set(subject, c);
    }
    return c;
  }

  readonly #capturedCache = new Map<string, boolean>();

  #pubAck(subject: string, reply: Msg): SendResult {
    let ack: { stream?: string; duplicate?: boolean; error?: { code?: number; description?: string } };
    try {
      ack = JSON.parse(decoder.decode(reply.data)) as typeof ack;
    } catch (err) {
      throw unavailable(`NATS transport: unreadable acknowledgement for '${subject}'`, err);
    }
    if (ack.error !== undefined) throw unavailable(`NATS transport: JetStream refused '${subject}': ${ack.error.description ?? 'error'} (${ack.error.code ?? '?'})`);
    return ack.duplicate === true ? STORED_DUPLICATE : STORED;
  }

  // ------------------------------------------------------------------ receiving

  subscribe(spec: SubscribeSpec, sink: DeliverySink): EngineSubscription {
    return spec.queue === undefined ? this.#coreSubscribe(spec, sink) : this.#durableSubscribe(spec, sink);
  }

  #coreSubscribe(spec: SubscribeSpec, sink: DeliverySink): EngineSubscription {
    const nc = this.#nc as NatsConnection;
    const sub: NatsSub = nc.subscribe(spec.pattern, {
      callback: (err, m) => {
        if (err) return sink.error(err);
        const reply = m.reply;
        const d: Delivery = {
          subject: m.subject,
          payload: m.data,
          meta: readHeaders(m.headers),
          deliveries: 1,
          ack: NOOP,
          respond:
            reply !== undefined && reply !== '' && m.headers?.get(H_REQ) === '1'
              ? (payload, meta) => {
                  try {
                    nc.publish(reply, payload, { headers: metaHeaders(meta, false) });
                  } catch (e) {
                    sink.error(e);
                  }
                }
              : undefined,
        };
        sink.push(d);
      },
    });
    // A core subscription exists once the server has seen the SUB: a flush proves it.
    const ready = nc.flush();
    ready.catch(NOOP);
    return {
      ready,
      close: async () => {
        sub.unsubscribe();
      },
    };
  }

  #durableSubscribe(spec: SubscribeSpec, sink: DeliverySink): EngineSubscription {
    const durable = durableName(spec.queue as string, spec.pattern);
    let stopped = false;
    let stop: (() => void) | undefined;
    const ready = (async () => {
      const jsm = this.#jsm;
      const js = this.#js;
      if (jsm === undefined || js === undefined || this.#o.stream === false) {
        throw new MyelinError('ERR_INVALID_ARGUMENT', `subscribe('${spec.pattern}', { queue }): a queue group is a durable JetStream consumer; this bus was created with transport.stream: false (core NATS only)`);
      }
      const stream = this.#o.stream;
      await this.#ensureCovered(jsm, stream, spec.pattern);
      const config = {
        durable_name: durable,
        filter_subject: spec.pattern,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.New,
        ack_wait: spec.ackWaitMs * 1e6,
        max_deliver: -1,
        max_ack_pending: 10_000,
      };
      try {
        const info = await jsm.consumers.info(stream, durable);
        if (info.config.ack_wait !== config.ack_wait) await jsm.consumers.update(stream, durable, { ack_wait: config.ack_wait });
      } catch {
        try {
          await jsm.consumers.add(stream, config);
        } catch (err) {
          // Another member may have created it between our info and add.
          await jsm.consumers.info(stream, durable).catch(() => {
            throw err;
          });
        }
      }
      this.#groups.push({ durable, spec });
      if (stopped) return;
      const consumer = await js.consumers.get(stream, durable);
      const messages = await consumer.consume({
        max_messages: 512,
        callback: (m: JsMsg) => {
          sink.push({
            subject: m.subject,
            payload: m.data,
            meta: readHeaders(m.headers),
            deliveries: m.info.deliveryCount,
            ack: () => m.ack(),
            working: () => m.working(),
          });
        },
      });
      stop = () => void messages.close().catch(NOOP);
      if (stopped) stop();
      void (async () => {
        for await (const s of messages.status()) {
          if (s.type === 'consumer_deleted' || s.type === 'consumer_not_found' || s.type === 'stream_not_found') {
            sink.error(new Error(`NATS transport: durable consumer ${durable}: ${s.type}`));
          }
        }
      })().catch(NOOP);
    })();
    ready.catch(NOOP);
    return {
      ready,
      close: async () => {
        stopped = true;
        stop?.();
      },
    };
  }

  /** Makes the stream exist and capture `pattern`, retrying on races with other nodes. */
  async #ensureCovered(jsm: JetStreamManager, stream: string, pattern: string): Promise<void> {
    let lastErr: unknown;
    for (let attempt = 0; attempt < 8; attempt++) {
      let subjects: string[] | undefined;
      try {
        subjects = (await jsm.streams.info(stream)).config.subjects ?? [];
      } catch {
        subjects = undefined;
      }
      try {
        if (subjects === undefined) {
          await jsm.streams.add({
            name: stream,
            subjects: [pattern],
            storage: this.#o.storage === 'memory' ? StorageType.Memory : StorageType.File,
            num_replicas: this.#o.replicas,
            retention: RetentionPolicy.Limits,
            duplicate_window: this.#o.dedupeWindowMs * 1e6,
            max_age: this.#o.maxAgeMs * 1e6,
          });
        } else if (subjects.some((s) => covers(s, pattern))) {
          this.#setFilters(subjects);
          return;
        } else {
          const next = subjects.filter((s) => !covers(pattern, s)).concat(pattern);
          await jsm.streams.update(stream, { subjects: next });
        }
      } catch (err) {
        lastErr = err;
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
      }
    }
    await this.#refreshFilters();
    if (this.#filters.some((s) => covers(s, pattern))) return;
    throw unavailable(`NATS transport: stream '${stream}' could not be made to capture '${pattern}' (${(lastErr as Error | undefined)?.message ?? 'unknown'}); another stream may capture overlapping subjects`, lastErr);
  }

  async request(msg: OutMessage, timeoutMs: number): Promise<{ payload: Uint8Array; meta: WireMeta }> {
    const nc = this.#nc;
    if (nc === undefined) throw unavailable('NATS transport: not connected');
    try {
      const h = metaHeaders(msg, false) ?? natsHeaders();
      h.set(H_REQ, '1');
      const r = await nc.request(msg.subject, msg.text ?? msg.payload, { headers: h, timeout: timeoutMs });
      return { payload: r.data, meta: readHeaders(r.headers) };
    } catch (err) {
      const e = err as { isNoResponders?: () => boolean; name?: string };
      if (typeof e.isNoResponders === 'function' && e.isNoResponders()) throw new MyelinError('ERR_NO_RESPONDERS', `request('${msg.subject}'): no subscription serves this subject`, { cause: err });
      if (e.name === 'TimeoutError' || /timeout/i.test((err as Error).message)) throw new MyelinError('ERR_REQUEST_TIMEOUT', `request('${msg.subject}'): no reply within ${timeoutMs} ms`, { cause: err });
      throw unavailable(`request('${msg.subject}'): ${(err as Error).message}`, err);
    }
  }

  // ------------------------------------------------------------------ registry and configuration

  /**
   * Opens a KV bucket, creating it on first use. Every node asks for the same settings
   * (a registry entry's liveness is its own expiresAt, not the bucket's TTL), so nodes
   * with other heartbeats never disagree about the bucket; a bucket an operator made
   * with other settings is opened as it is.
   */
  #bucket(name: string, opts: { ttl?: number; history?: number }): Promise<KV> {
    let kv = this.#kv.get(name);
    if (kv === undefined) {
      const js = this.#js;
      if (js === undefined) return Promise.reject(new MyelinError('ERR_INVALID_ARGUMENT', 'the NATS registry and configuration need JetStream (transport.stream is false)'));
      const kvm = new Kvm(js);
      kv = kvm.create(name, { ...opts, storage: this.#o.storage === 'memory' ? StorageType.Memory : StorageType.File }).catch(() => kvm.open(name));
      kv.catch(() => this.#kv.delete(name));
      this.#kv.set(name, kv);
    }
    return kv;
  }

  /** The registry bucket's own TTL: an upper bound that removes entries of nodes long gone. */
  static readonly NODES_TTL_MS = 600_000;

  async announce(info: NodeInfo, ttlMs: number): Promise<void> {
    if (this.#js === undefined) return; // core mode: no registry
    const kv = await this.#bucket(NODES_BUCKET, { ttl: NatsTransport.NODES_TTL_MS, history: 1 });
    await kv.put(info.id, encoder.encode(JSON.stringify({ ...info, expiresAt: info.seenAt + ttlMs })));
  }

  async withdraw(id: string): Promise<void> {
    if (this.#js === undefined) return;
    const kv = await this.#bucket(NODES_BUCKET, { ttl: NatsTransport.NODES_TTL_MS, history: 1 });
    await kv.delete(id);
  }

  async nodes(): Promise<NodeInfo[]> {
    if (this.#js === undefined) return [];
    const kv = await this.#bucket(NODES_BUCKET, { ttl: NatsTransport.NODES_TTL_MS, history: 1 });
    const out: NodeInfo[] = [];
    const now = Date.now();
    for await (const k of await kv.keys()) {
      const e = await kv.get(k);
      if (e === null || e.operation !== 'PUT' || e.value.length === 0) continue;
      try {
        const n = JSON.parse(decoder.decode(e.value)) as NodeInfo & { expiresAt?: number };
        if ((n.expiresAt ?? 0) < now) {
          void kv.purge(k).catch(NOOP); // a node long gone: its heartbeat lapsed
          continue;
        }
        delete n.expiresAt;
        out.push(n);
      } catch {
        // an entry another tool wrote: not ours
      }
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  async getConfig(name: string): Promise<ConfigEntry | undefined> {
    const kv = await this.#bucket(CONFIG_BUCKET, { history: 5 });
    const e = await kv.get(name);
    if (e === null || e.operation !== 'PUT') return undefined;
    return { name, value: JSON.parse(decoder.decode(e.value)), version: e.revision };
  }

  async putConfig(name: string, value: unknown): Promise<number> {
    const kv = await this.#bucket(CONFIG_BUCKET, { history: 5 });
    return kv.put(name, encoder.encode(JSON.stringify(value)));
  }

  watchConfig(name: string, onChange: (e: ConfigEntry) => void): () => void {
    let stop: (() => void) | undefined;
    let stopped = false;
    void (async () => {
      const kv = await this.#bucket(CONFIG_BUCKET, { history: 5 });
      const w = await kv.watch({ key: name });
      stop = () => w.stop();
      if (stopped) return stop();
      for await (const e of w) {
        if (e.operation !== 'PUT') continue;
        try {
          onChange({ name, value: JSON.parse(decoder.decode(e.value)), version: e.revision });
        } catch {
          // a value that is not JSON: not a configuration we wrote
        }
      }
    })().catch(NOOP);
    return () => {
      stopped = true;
      stop?.();
    };
  }

  async durability(): Promise<Durability> {
    if (this.#o.stream === false || this.#jsm === undefined) {
      return { storage: 'none', replicas: 0, fsync: 'none', notes: ['core NATS: nothing is stored; subscribers connected at publish time get each event at most once'] };
    }
    let storage: string = this.#o.storage;
    let replicas = this.#o.replicas;
    try {
      const info = await this.#jsm.streams.info(this.#o.stream);
      storage = info.config.storage === StorageType.Memory ? 'memory' : 'file';
      replicas = info.config.num_replicas;
    } catch {
      // the stream is created by the first durable subscription
    }
    const notes = [
      storage === 'memory' ? 'memory storage: a server restart loses the stream' : 'file storage: acknowledged events survive a server restart',
      "JetStream's default fsync is lazy: an acknowledged event reaches the page cache at once and the disk on the server's sync interval, so an OS crash or power loss can lose the last acknowledged events (set sync_interval: always on the server for fsync per write)",
      replicas > 1 ? `${replicas} replicas: an event is acknowledged once a quorum stored it` : '1 replica: losing the server or its disk loses the stream',
    ];
    return { storage, replicas, fsync: 'server sync interval (lazy by default)', notes };
  }

  async signals(): Promise<GroupSignal[]> {
    if (this.#jsm === undefined || this.#o.stream === false) return [];
    const out: GroupSignal[] = [];
    for (const g of this.#groups) {
      try {
        const i = await this.#jsm.consumers.info(this.#o.stream, g.durable);
        out.push({ group: g.spec.queue as string, pattern: g.spec.pattern, lag: i.num_pending, pending: i.num_ack_pending, redelivered: i.num_redelivered });
      } catch {
        // the consumer is gone (deleted by an operator): the group reports nothing
      }
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    if (this.#sweep !== undefined) clearTimeout(this.#sweep);
    for (const a of this.#awaiting.values()) a.reject(unavailable(`NATS transport: closed before '${a.subject}' was acknowledged; its fate is unknown`));
    this.#awaiting.clear();
    const nc = this.#nc;
    if (nc === undefined) return;
    try {
      await nc.drain();
    } catch {
      await nc.close().catch(NOOP);
    }
    this.#connected = false;
  }
}

interface AwaitingAck {
  resolve: (r: SendResult) => void;
  reject: (err: unknown) => void;
  subject: string;
  deadline: number;
  timeoutMs: number;
}

const NOOP = (): void => {};
const NOT_STORED: SendResult = Object.freeze({ duplicate: false, stored: false });
const STORED: SendResult = Object.freeze({ duplicate: false, stored: true });
const STORED_DUPLICATE: SendResult = Object.freeze({ duplicate: true, stored: true });
