// The contract between the cluster bus (lib/cluster/cluster-bus.ts), which owns the
// bus's semantics (options, overflow, per-key order, handler runs, retries, dead
// letters, accounting), and an engine transport (nats-transport.ts, redis-transport.ts),
// which owns the wire: sending an event and learning that the engine has it, reading a
// subscription's events in engine order, acknowledging them, and the engine's
// key-value services (node registry, configuration).
//
// Data flows one way: ClusterBus -> Transport.send -> engine -> Transport subscription
// -> DeliverySink.push -> ClusterBus handler run -> Delivery.ack.
//
// A transport never runs a handler and never decides an event's fate: it reports what
// the engine said (acked, duplicate, failed) and how many times the engine delivered
// an event (`deliveries`). It never swallows an error: a send that cannot be confirmed
// rejects, and the bus counts and reports it.

/** How the payload bytes encode the event's data. */
export const Encoding = {
  /** No data (`undefined`). */
  None: 0,
  /** A JSON value the bus encoded (JSON.stringify): decoded with JSON.parse on receipt. */
  Json: 1,
  /** A JSON-bytes event (contentType 'application/json'): the caller's bytes, carried undecoded. */
  JsonBytes: 2,
  /** Raw bytes (Uint8Array / Buffer): delivered as a Buffer. */
  Bytes: 3,
} as const;
export type Encoding = (typeof Encoding)[keyof typeof Encoding];

/** Everything about an event other than its subject and payload; carried in NATS headers or Redis stream fields. */
export interface WireMeta {
  enc: Encoding;
  /** Lane 0..3 (critical, high, normal, low). */
  lane: number;
  key: string | undefined;
  headers: Record<string, string> | undefined;
  /**
   * The publish id: the caller's `id` when given (dedupe within the window), else
   * `<node>.<seq>`, unique per publishing bus. The engine dedupes on it (JetStream's
   * Nats-Msg-Id), so a send retried after a reconnect is stored once.
   */
  id: string;
  /** Whether `id` came from the caller (a Redis transport dedupes only those: one extra write each). */
  userId: boolean;
  /** Publish time, epoch ms (fractional). */
  time: number;
}

export interface OutMessage extends WireMeta {
  subject: string;
  /** The payload bytes; empty when `text` carries it. */
  payload: Uint8Array;
  /**
   * The payload as text, when the bus encoded it from a JSON value (Encoding.Json): the
   * UTF-8 of this string is the payload, and no Buffer was made of it. Both clients
   * take strings (ioredis writes a command with only string arguments without building
   * one Buffer of it; nats.js encodes it once). Send `text ?? payload`.
   */
  text?: string;
}

/** What the engine said about a send. */
export interface SendResult {
  /** The engine had this id already inside its dedupe window: stored once, not again. */
  duplicate: boolean;
  /**
   * The engine stored the event (JetStream stream, Redis stream). False: no stream
   * captures the subject, so it went to the subscribers connected now (at most once).
   */
  stored: boolean;
}

/** One delivery of one event to one subscription, as the engine made it. */
export interface Delivery {
  subject: string;
  payload: Uint8Array;
  meta: WireMeta;
  /** 1 on the first delivery; more after an ack-wait expired or a takeover. */
  deliveries: number;
  /** Marks the event done for this subscription (handler succeeded, or dead-lettered). Never throws. */
  ack(): void;
  /** Tells the engine the event is still being worked on (resets its ack-wait). Optional per engine. */
  working?(): void;
  /** Request/reply only: answers the requester. */
  respond?(payload: Uint8Array, meta: WireMeta): void;
}

/** Where a transport's subscription puts its deliveries. */
export interface DeliverySink {
  /** Takes one delivery, in engine order. Always accepted; room() says whether to pull more. */
  push(d: Delivery): void;
  /** How many more deliveries the subscription wants now (0: stop pulling until waitRoom resolves). */
  room(): number;
  /** Resolves once room() > 0 again, or the subscription ended. */
  waitRoom(): Promise<void>;
  /** Pending events of a lapsed member were taken over: how many, and how long since their last delivery. */
  takeover(count: number, idleMs: number): void;
  /** Events the engine lost before they could be delivered (e.g. Redis entries trimmed by MAXLEN while pending). */
  lost(count: number, why: string): void;
  /** A transport-side error worth surfacing (a read failed, a group was recreated). Never fatal. */
  error(err: unknown): void;
}

export interface SubscribeSpec {
  pattern: string;
  /** A durable group (NATS durable consumer, Redis consumer group); undefined: every event, at most once. */
  queue: string | undefined;
  ackWaitMs: number;
  maxDeliver: number;
}

export interface EngineSubscription {
  /** Resolves once the engine-side subscription (durable consumer, group) exists. */
  readonly ready: Promise<void>;
  /** Stops pulling. Deliveries already pushed may still ack. Leaves a durable group in place. */
  close(): Promise<void>;
}

/** A node's entry in the cluster registry (bus.cluster.nodes()). */
export interface NodeInfo {
  id: string;
  /** host:pid, or what the service set (a gateway's address). */
  address: string;
  version: string;
  capabilities: string[];
  /** Load figures at the last heartbeat: queue depth, in-flight, event-loop utilisation, events/s. */
  load: { queued: number; inFlight: number; elu: number; rate: number };
  /** Configuration names this node runs, and their versions (bus.cluster.watchConfig). */
  config: Record<string, number>;
  startedAt: number;
  /** Time of the last heartbeat, epoch ms. */
  seenAt: number;
}

/** What the engine is set up to promise (bus.stats().transport.durability). */
export interface Durability {
  /** Where events are kept: 'file' | 'memory' (NATS), 'memory' | 'aof' | 'rdb' (Redis), 'none' (core NATS). */
  storage: string;
  replicas: number;
  /** When a write reaches disk: NATS sync interval, Redis appendfsync ('always' | 'everysec' | 'no' | 'off'). */
  fsync: string;
  /** Plain words: what survives what. */
  notes: string[];
}

/** Per group figures for the load signals (metrics sink, autoscale). */
export interface GroupSignal {
  group: string;
  pattern: string;
  /** Events in the engine the group has not been given yet. */
  lag: number;
  /** Delivered, not acknowledged. */
  pending: number;
  /** Redeliveries the engine counted (NATS num_redelivered; Redis: claims). */
  redelivered: number;
}

/** A configuration entry (bus.cluster.getConfig/putConfig/watchConfig). */
export interface ConfigEntry {
  name: string;
  value: unknown;
  /** Engine revision: increases on every put. */
  version: number;
}

export interface Transport {
  readonly kind: 'nats' | 'redis';
  /** Connects, within the deadline (ERR_TRANSPORT_UNAVAILABLE otherwise). */
  connect(deadlineMs: number): Promise<void>;
  /** Whether the engine connection is up now. */
  readonly connected: boolean;
  /**
   * Sends one event. Resolves with the engine's answer; rejects when the engine did not
   * confirm within timeoutMs or the connection failed (the event's fate is then
   * unknown: it may have been stored).
   */
  send(msg: OutMessage, timeoutMs: number): Promise<SendResult>;
  subscribe(spec: SubscribeSpec, sink: DeliverySink): EngineSubscription;
  /** Request/reply over the engine; undefined where the engine does not carry it. */
  request?(msg: OutMessage, timeoutMs: number): Promise<{ payload: Uint8Array; meta: WireMeta }>;
  /** Writes this node's registry entry, to expire after ttlMs without another. */
  announce(info: NodeInfo, ttlMs: number): Promise<void>;
  /** Removes this node's entry (on close). */
  withdraw(id: string): Promise<void>;
  /** The live nodes. */
  nodes(): Promise<NodeInfo[]>;
  getConfig(name: string): Promise<ConfigEntry | undefined>;
  putConfig(name: string, value: unknown): Promise<number>;
  /** Calls back with each new version of `name` (and the current one, if any). Returns a stop function. */
  watchConfig(name: string, onChange: (e: ConfigEntry) => void): () => void;
  durability(): Promise<Durability>;
  signals(): Promise<GroupSignal[]>;
  close(): Promise<void>;
}
