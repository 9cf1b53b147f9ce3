// Gateway: one port for the WebSocket event plane, the OpenAI-compatible API, events
// over HTTP, metrics, health and the dashboard (shared/API.md). The network half runs
// on native I/O threads (native/src/io/server.h); this class configures it, turns
// its records into bus events and HTTP exchanges, and owns the life cycle.
import os from 'node:os';
import { Bus } from '../bus/bus.js';
import { invalidArgument, MyelinError } from '../errors.js';
import { native, type NativeGatewayServer, type NativeGatewayStats } from '../internal/native.js';
import { isMetricsSink, type MetricsSink } from '../internal/metrics-sink.js';
import { GatewayMetrics } from './gateway-metrics.js';
import { EventPlane } from './event-plane.js';
import { HttpExchange, tokenOf } from './http-exchange.js';
import type { RouteHandler, RouteResult } from './http-types.js';
import { IoChannel, type InRecord } from './io-channel.js';
import { In } from './records.js';
import { dashboardPage } from './dashboard.js';
import { dashboardAsset } from './dashboard-assets.js';
import { createOpenAIRoutes, type OpenAIRoutes } from './openai.js';
import { AIClient } from '../ai/client/ai-client.js';
import { MetricHistory, historyRoute } from '../metrics/history.js';
import type { ByteRing } from '../bus/byte-ring.js';

export type IoBackend = 'auto' | 'epoll' | 'io_uring';

export interface GatewayOptions {
  port?: number;
  host?: string;
  bus?: Bus;
  ai?: AIClient;
  metrics?: MetricsSink;
  auth?: { tokens: string[] };
  maxPayloadBytes?: number;
  ioThreads?: number;
  io?: IoBackend;
  /** Pin I/O threads to cores. */
  pin?: boolean;
  maxConnections?: number;
  /** WebSocket keepalive: ping after this much silence, close after twice. 0 disables. */
  pingIntervalMs?: number;
  /** A request head must arrive whole within this (slowloris); 408 after. Default 10,000. */
  headTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Publish rate limits for network clients (events per second); 0 or absent = none. */
  rateLimit?: { perConnection?: number; perToken?: number };
  /** Bytes a connection may have waiting to be sent before it is closed as a slow consumer. */
  maxBufferedBytes?: number;
  /** Answers are simulated (myelin serve with the built-in simulator): /v1/models says so. */
  simulated?: boolean;
  /** Request headers passed on to upstream AI calls (lower-case names, or 'prefix-*'). */
  forwardHeaders?: string[];
  tls?: undefined;
}

export interface GatewayStats {
  io: 'epoll' | 'io_uring';
  ioThreads: number;
  listening: boolean;
  connections: number;
  websockets: number;
  accepted: number;
  refused: number;
  httpRequests: number;
  httpInFlight: number;
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  eventsIn: number;
  eventsOut: number;
  eventsRefused: number;
  errorsSent: number;
  rateLimited: number;
  authFailures: number;
  ingressStalls: number;
  /** Memory reserved for connection state (the native slab), for sizing: per-connection cost = stateBytes / connections. */
  stateBytes: number;
  subscriptions: number;
  closes: Record<string, number>;
}

const OPTION_KEYS = new Set([
  'port', 'host', 'bus', 'ai', 'metrics', 'auth', 'maxPayloadBytes', 'ioThreads', 'io', 'pin', 'maxConnections', 'headTimeoutMs',
  'pingIntervalMs', 'idleTimeoutMs', 'rateLimit', 'maxBufferedBytes', 'simulated', 'forwardHeaders', 'tls',
]);

type State = 'new' | 'listening' | 'closing' | 'closed';

export class Gateway {
  readonly #opts: Required<Pick<GatewayOptions, 'port' | 'host' | 'maxPayloadBytes' | 'ioThreads'>> & GatewayOptions;
  readonly #bus: Bus;
  readonly #ownBus: boolean;
  readonly #tokens: readonly string[];
  readonly #routes = new Map<string, RouteHandler>();
  readonly #inFlight = new Set<HttpExchange>();
  readonly #exchanges = new Map<number, HttpExchange>();
  #openai: OpenAIRoutes | undefined;
  /** replaceAI() callers waiting for the AI requests that started on the previous client. */
  #retiring: Array<{ left: Set<HttpExchange>; done: () => void }> = [];
  #recorder: GatewayMetrics | undefined;
  /** The native counters as they were when the I/O threads stopped. */
  #finalNative: NativeGatewayStats | undefined;
  #io: IoChannel | undefined;
  #plane: EventPlane | undefined;
  #server: NativeGatewayServer | undefined;
  #backend: 'epoll' | 'io_uring' = 'epoll';
  #port = 0;
  #state: State = 'new';
  #closing: Promise<void> | undefined;
  #idle: (() => void) | undefined;

  constructor(options: GatewayOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalidArgument('Gateway options must be an object');
    for (const k of Object.keys(options)) {
      if (!OPTION_KEYS.has(k)) throw invalidArgument(`unknown Gateway option '${k}'`);
    }
    const port = options.port ?? 8080;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalidArgument(`port must be an integer from 0 to 65535, got ${String(port)}`);
    const host = options.host ?? '127.0.0.1';
    if (typeof host !== 'string' || host.length === 0) throw invalidArgument('host must be a non-empty string');
    const maxPayloadBytes = options.maxPayloadBytes ?? 1 << 20;
    checkInt('maxPayloadBytes', maxPayloadBytes, 1, 64 << 20);
    const cores = os.availableParallelism?.() ?? os.cpus().length;
    const ioThreads = options.ioThreads ?? Math.max(1, cores - 1);
    checkInt('ioThreads', ioThreads, 1, 64);
    if (options.io !== undefined && !['auto', 'epoll', 'io_uring'].includes(options.io)) {
      throw invalidArgument(`io must be 'auto', 'epoll' or 'io_uring', got ${String(options.io)}`);
    }
    if (options.tls !== undefined) {
      throw invalidArgument('tls is not supported by the native gateway yet: terminate TLS in front of it (a proxy or load balancer)');
    }
    for (const k of ['maxConnections', 'pingIntervalMs', 'idleTimeoutMs', 'maxBufferedBytes', 'headTimeoutMs'] as const) {
      if (options[k] !== undefined) checkInt(k, options[k], k === 'pingIntervalMs' ? 0 : 1, 2 ** 31);
    }
    if (options.rateLimit !== undefined) {
      if (options.rateLimit === null || typeof options.rateLimit !== 'object') throw invalidArgument('rateLimit must be an object');
      for (const [k, v] of Object.entries(options.rateLimit)) {
        if (k !== 'perConnection' && k !== 'perToken') throw invalidArgument(`unknown rateLimit option '${k}'`);
        if (v !== undefined) checkInt(`rateLimit.${k}`, v, 0, 2 ** 31);
      }
    }
    let tokens: string[] = [];
    if (options.auth !== undefined) {
      if (options.auth === null || typeof options.auth !== 'object' || !Array.isArray(options.auth.tokens)) {
        throw invalidArgument('auth must be { tokens: string[] }');
      }
      tokens = options.auth.tokens.slice();
      if (tokens.length > 254) throw invalidArgument('auth.tokens holds at most 254 tokens');
      for (const t of tokens) {
        // A token travels in an Authorization header or a query string: printable ASCII only.
        if (typeof t !== 'string' || !/^[\x21-\x7e]{8,4096}$/.test(t)) {
          throw invalidArgument('auth.tokens must be strings of 8 to 4096 printable ASCII characters (no spaces)');
        }
      }
    }
    if (options.bus !== undefined && !(options.bus instanceof Bus)) throw invalidArgument('bus must be a Bus');
    if (options.ai !== undefined && !(options.ai instanceof AIClient)) throw invalidArgument('ai must be an AIClient');
    if (options.metrics !== undefined && !isMetricsSink(options.metrics)) {
      throw invalidArgument('metrics must implement counter(), gauge() and histogram() (a Metrics instance)');
    }
    if (options.simulated !== undefined && typeof options.simulated !== 'boolean') throw invalidArgument('simulated must be a boolean');
    this.#openai = options.ai
      ? createOpenAIRoutes(options.ai, { simulated: options.simulated === true, forwardHeaders: options.forwardHeaders })
      : undefined;
    this.#tokens = tokens;
    this.#ownBus = options.bus === undefined;
    this.#bus = options.bus ?? new Bus();
    this.#opts = { ...options, port, host, maxPayloadBytes, ioThreads };
  }

  /**
   * Hot reload (myelin serve's configuration sync): OpenAI requests that arrive from now
   * on are served by `ai`; those already running finish on the client they started with.
   * Resolves once they have, so that the caller can close the previous client. Nothing
   * is closed here: the caller owns both clients. `simulated` defaults to the current flag.
   */
  replaceAI(ai: AIClient, options: { simulated?: boolean } = {}): Promise<void> {
    if (!(ai instanceof AIClient)) throw invalidArgument('replaceAI: ai must be an AIClient');
    if (options.simulated !== undefined && typeof options.simulated !== 'boolean') throw invalidArgument('replaceAI: simulated must be a boolean');
    if (this.#state === 'closing' || this.#state === 'closed') throw new MyelinError('ERR_INVALID_ARGUMENT', 'replaceAI: the gateway is closed');
    const simulated = options.simulated ?? this.#opts.simulated === true;
    // Built first: a bad forwardHeaders throws before anything changes.
    const routes = createOpenAIRoutes(ai, { simulated, forwardHeaders: this.#opts.forwardHeaders });
    // A request picks its handler when it arrives (#onRequest), so the ones in flight now
    // are exactly those that may still use the previous client.
    const left = new Set<HttpExchange>();
    for (const ex of this.#inFlight) if (isAIPath(ex.path)) left.add(ex);
    this.#openai = routes;
    this.#opts.ai = ai;
    this.#opts.simulated = simulated;
    const alerts = (this.#opts.metrics as { alerts?: { attach?: (p: { ai?: AIClient }) => void } } | undefined)?.alerts;
    if (this.#state === 'listening' && alerts && typeof alerts.attach === 'function') alerts.attach({ ai });
    if (left.size === 0) return Promise.resolve();
    return new Promise((done) => this.#retiring.push({ left, done }));
  }

  /** The bus the event plane publishes into. */
  get bus(): Bus {
    return this.#bus;
  }

  /** Adds a route: `handler(req, res)` writes a response or returns { status, headers, body }. */
  route(method: string, path: string, handler: RouteHandler): this {
    if (typeof method !== 'string' || !/^[A-Z]+$/.test(method)) throw invalidArgument('route method must be an upper-case HTTP method');
    if (typeof path !== 'string' || !path.startsWith('/')) throw invalidArgument("route path must start with '/'");
    if (typeof handler !== 'function') throw invalidArgument('route handler must be a function');
    if (path === '/ws' || path === '/v1/events') throw invalidArgument(`${path} is served by the gateway itself`);
    this.#routes.set(`${method} ${path}`, handler);
    return this;
  }

  async listen(): Promise<{ host: string; port: number }> {
    if (this.#state !== 'new') throw new MyelinError('ERR_INVALID_ARGUMENT', 'listen() was already called');
    const addon = native();
    const backend = chooseBackend(this.#opts.io ?? 'auto', addon.ioUringUsable());
    const ringBytes = pow2(Math.max(4 << 20, 4 * (this.#opts.maxPayloadBytes + (64 << 10))));
    const io = new IoChannel(this.#opts.ioThreads, ringBytes, ringBytes, (t, ring, rec) => this.#onRecord(t, ring, rec));
    const plane = new EventPlane(this.#bus, io);
    const rl = this.#opts.rateLimit ?? {};
    const server = new addon.GatewayServer(
      {
        host: this.#opts.host,
        port: this.#opts.port,
        ioThreads: this.#opts.ioThreads,
        io: backend,
        pin: this.#opts.pin === true,
        maxConnections: this.#opts.maxConnections ?? 10000,
        maxPayloadBytes: this.#opts.maxPayloadBytes,
        maxBufferedBytes: this.#opts.maxBufferedBytes ?? 8 << 20,
        pingIntervalMs: this.#opts.pingIntervalMs ?? 30000,
        idleTimeoutMs: this.#opts.idleTimeoutMs ?? 120000,
        headTimeoutMs: this.#opts.headTimeoutMs ?? 10000,
        pubPerSecond: rl.perConnection ?? 0,
        pubPerSecondPerToken: rl.perToken ?? 0,
        tokens: this.#tokens.slice(),
      },
      io.ringViews(),
      (t) => io.drain(t),
    );
    io.setWaker((t) => server.wake(t));
    try {
      this.#port = server.listen();
    } catch (err) {
      server.close();
      throw err;
    }
    this.#io = io;
    this.#plane = plane;
    this.#server = server;
    this.#backend = backend;
    this.#state = 'listening';
    // A Metrics instance: its alert actions and $SYS.alert events reach this bus and AI client.
    const alerts = (this.#opts.metrics as { alerts?: { attach?: (p: { bus?: Bus; ai?: AIClient }) => void } } | undefined)?.alerts;
    if (alerts && typeof alerts.attach === 'function') alerts.attach({ bus: this.#bus, ai: this.#opts.ai });
    if (this.#opts.metrics) {
      const recorder = new GatewayMetrics(this.#opts.metrics, () => this.stats());
      this.#recorder = recorder;
      plane.onIngress = (s) => recorder.ingress(s);
    }
    return this.address();
  }

  address(): { host: string; port: number } {
    return { host: this.#opts.host, port: this.#port };
  }

  stats(): GatewayStats {
    const n = this.#finalNative ?? this.#server?.stats();
    const p = this.#plane?.stats();
    return {
      io: this.#backend,
      ioThreads: this.#opts.ioThreads,
      listening: this.#state === 'listening',
      connections: n?.open ?? 0,
      websockets: n?.websockets ?? 0,
      accepted: n?.accepted ?? 0,
      refused: n?.refused ?? 0,
      httpRequests: n?.httpRequests ?? 0,
      httpInFlight: this.#inFlight.size,
      framesIn: n?.framesIn ?? 0,
      framesOut: n?.framesOut ?? 0,
      bytesIn: n?.bytesIn ?? 0,
      bytesOut: n?.bytesOut ?? 0,
      eventsIn: n?.eventsIn ?? 0,
      eventsOut: p?.eventsOut ?? 0,
      eventsRefused: p?.refused ?? 0,
      errorsSent: n?.errorsSent ?? 0,
      rateLimited: n?.rateLimited ?? 0,
      authFailures: n?.authFailures ?? 0,
      ingressStalls: n?.ingressStalls ?? 0,
      stateBytes: n?.stateBytes ?? 0,
      subscriptions: p?.subscriptions ?? 0,
      closes: n?.closes ?? {},
    };
  }

  /**
   * Stops accepting, closes WebSockets with 1001, lets in-flight HTTP requests finish,
   * hands every event already read to the bus and drains it, then stops the I/O threads.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#state === 'new') {
      this.#state = 'closed';
      if (this.#ownBus) await this.#bus.close();
      return;
    }
    this.#state = 'closing';
    const server = this.#server!;
    const io = this.#io!;
    server.stopAccepting();
    server.closeWebSockets(1001);
    // In-flight HTTP requests finish (bounded), WebSockets answer the close (bounded).
    const deadline = Date.now() + 10_000;
    while (this.#inFlight.size > 0 && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
        setTimeout(resolve, 50);
      });
    }
    const wsDeadline = Date.now() + 1_500;
    while (server.stats().websockets > 0 && Date.now() < wsDeadline) await sleep(20);
    // Every record the I/O threads produced is handed on before they stop, and after.
    for (let t = 0; t < io.threads; t++) io.drain(t);
    io.flushNow();
    server.close();
    this.#finalNative = server.stats(); // the last counts, shutdown closes included
    for (let t = 0; t < io.threads; t++) io.drain(t);
    while (this.#plane!.waiting > 0) await sleep(5);
    for (const ex of this.#inFlight) ex.gone();
    await this.#bus.drain();
    this.#recorder?.close();
    this.#plane!.close();
    this.#state = 'closed';
    if (this.#ownBus) await this.#bus.close();
  }

  // ---------------------------------------------------------------- records

  #onRecord(thread: number, ring: ByteRing, rec: InRecord): boolean {
    switch (rec.kind) {
      case In.HTTP_REQUEST:
        this.#onRequest(ring, rec);
        return true;
      case In.HTTP_CLOSED: {
        const ex = this.#exchanges.get(rec.conn);
        if (ex && ex.gen === rec.gen) ex.gone();
        return true;
      }
      case In.EVENTS_END:
        this.#onEventsEnd(ring, rec);
        return true;
      default:
        return this.#plane!.onRecord(thread, ring, rec);
    }
  }

  #onRequest(ring: ByteRing, rec: InRecord): void {
    const ex = HttpExchange.fromRecord(ring, rec, this.#io!, this.#tokens, (done) => this.#done(done));
    this.#inFlight.add(ex);
    this.#exchanges.set(ex.conn, ex);
    const handler = this.#handlerFor(ex);
    let result: ReturnType<RouteHandler>;
    try {
      result = handler(ex, ex);
    } catch (err) {
      this.#fail(ex, err);
      return;
    }
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      (result as Promise<void | RouteResult>).then(
        (r) => this.#finish(ex, r),
        (err: unknown) => this.#fail(ex, err),
      );
    } else {
      this.#finish(ex, result as void | RouteResult);
    }
  }

  #onEventsEnd(ring: ByteRing, rec: InRecord): void {
    const ex = new HttpExchange(
      { conn: rec.conn, gen: rec.gen, method: 'POST', target: '/v1/events', headerBlock: '', body: Buffer.alloc(0), token: tokenOf(rec, this.#tokens) },
      this.#io!,
      (d) => this.#done(d),
    );
    const count = ring.buf.readUInt32LE(rec.dataAt);
    const tally = this.#plane!.takeTally(rec.conn);
    this.#inFlight.add(ex);
    this.#exchanges.set(ex.conn, ex);
    if (tally.refused === 0) {
      ex.send(202, { accepted: tally.accepted });
    } else {
      const status = tally.code === 'ERR_BUS_FULL' ? 429 : 503;
      ex.send(status, {
        error: { message: `${tally.refused} of ${count} events were refused (${tally.code})`, type: 'server_error', code: tally.code },
        accepted: tally.accepted,
        refused: tally.refused,
      });
    }
  }

  #finish(ex: HttpExchange, r: void | RouteResult): void {
    if (ex.finished) return;
    if (r === undefined) {
      // The handler wrote nothing and returned nothing: it may still be streaming.
      if (!ex.headersSent) ex.send(204, undefined);
      return;
    }
    if (r === null || typeof r !== 'object') {
      ex.send(500, { error: { message: 'route handler returned a non-object', type: 'server_error' } });
      return;
    }
    if (ex.headersSent) {
      ex.end();
      return;
    }
    ex.send(r.status ?? 200, r.body, r.headers ?? {});
  }

  #fail(ex: HttpExchange, err: unknown): void {
    if (ex.finished) return;
    const code = err instanceof MyelinError ? err.code : 'ERR_HANDLER_FAILED';
    const status = code === 'ERR_INVALID_ARGUMENT' ? 400 : 500;
    if (ex.headersSent) {
      ex.end();
      return;
    }
    ex.send(status, { error: { message: status === 500 ? 'internal error' : (err as Error).message, type: 'server_error', code } });
  }

  #done(ex: HttpExchange): void {
    this.#inFlight.delete(ex);
    if (this.#retiring.length > 0) this.#retired(ex);
    this.#recorder?.response(ex.status || 499, (performance.now() - ex.started) / 1000);
    if (this.#exchanges.get(ex.conn) === ex) this.#exchanges.delete(ex.conn);
    if (this.#inFlight.size === 0 && this.#idle) {
      const r = this.#idle;
      this.#idle = undefined;
      r();
    }
  }

  #retired(ex: HttpExchange): void {
    this.#retiring = this.#retiring.filter((w) => {
      w.left.delete(ex);
      if (w.left.size > 0) return true;
      w.done();
      return false;
    });
  }

  #handlerFor(ex: HttpExchange): RouteHandler {
    const user = this.#routes.get(`${ex.method} ${ex.path}`) ?? (ex.method === 'HEAD' ? this.#routes.get(`GET ${ex.path}`) : undefined);
    if (user) return user;
    const builtin = this.#builtin(ex.method === 'HEAD' ? 'GET' : ex.method, ex.path);
    if (builtin) return builtin;
    return (req) => ({ status: 404, body: { error: { message: `no route for ${req.method} ${req.path}`, type: 'invalid_request_error', code: 'not_found' } } });
  }

  #builtin(method: string, path: string): RouteHandler | undefined {
    switch (`${method} ${path}`) {
      case 'GET /healthz':
        return () => ({ status: 200, body: { status: 'ok' } });
      case 'GET /readyz':
        return () =>
          this.#state === 'listening' && !this.#bus.closed
            ? { status: 200, body: { status: 'ready' } }
            : { status: 503, body: { status: 'not ready' } };
      case 'GET /metrics':
        return (req) => this.#metrics(req);
      case 'GET /dashboard':
        return () => ({ status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: dashboardPage() });
      case 'GET /api/metrics/history': {
        const history = this.#history();
        return history
          ? historyRoute(history)
          : () => ({ status: 404, body: { error: { message: 'no metrics history: pass a Metrics instance as `metrics`', type: 'invalid_request_error', code: 'not_found' } } });
      }
      case 'GET /api/alerts':
        return () => ({ status: 200, body: { alerts: this.#alertList() } });
      case 'GET /stats':
        return () => ({ status: 200, body: { gateway: this.stats(), bus: this.#bus.stats() } });
      case 'POST /v1/chat/completions':
        return this.#openai?.chatCompletions ?? noAI;
      case 'GET /v1/models':
        return this.#openai?.models ?? noAI;
      case 'POST /v1/embeddings':
        return this.#openai?.embeddings ?? noAI;
      default:
        if (method === 'GET' && path.startsWith('/v1/models/')) return this.#openai?.model ?? noAI;
        if (method === 'GET' && path.startsWith('/dashboard/')) return dashboardAsset(path);
        return undefined;
    }
  }

  #history(): MetricHistory | undefined {
    const h = (this.#opts.metrics as { alerts?: { history?: unknown } } | undefined)?.alerts?.history;
    return h instanceof MetricHistory ? h : undefined;
  }

  #alertList(): AlertView[] {
    type Listed = { rule: { name: string; severity?: string; when: { metric: string } }; state: string; silencedUntil?: number; last?: unknown };
    const alerts = (this.#opts.metrics as { alerts?: { list?: () => Listed[] } } | undefined)?.alerts;
    if (!alerts || typeof alerts.list !== 'function') return [];
    // Webhook URLs may carry credentials and actions are code: neither is shown.
    return alerts.list().map((a) => ({ name: a.rule.name, state: a.state, severity: a.rule.severity, metric: a.rule.when.metric, silencedUntil: a.silencedUntil, last: a.last }));
  }

  async #metrics(req: Parameters<RouteHandler>[0]): Promise<RouteResult> {
    type Expose = (o?: { accept?: string; acceptEncoding?: string }) => Promise<{ contentType: string; body: string | Uint8Array; contentEncoding?: string }>;
    const m = this.#opts.metrics as (MetricsSink & { expose?: Expose }) | undefined;
    let text = '';
    if (m && typeof m.expose === 'function') {
      // The request's Accept picks the format and Accept-Encoding the compression; the
      // content type comes from expose(), which never reflects the request's header.
      const r = await m.expose({ accept: req.headers['accept'], acceptEncoding: req.headers['accept-encoding'] });
      const headers: Record<string, string> = { 'content-type': r.contentType, vary: 'accept, accept-encoding' };
      if (r.contentEncoding === 'gzip') headers['content-encoding'] = 'gzip';
      return { status: 200, headers, body: r.body };
    }
    const g = this.stats();
    const b = this.#bus.stats();
    const line = (name: string, type: string, help: string, v: number, labels = '') =>
      `# HELP myelin_${name} ${help}\n# TYPE myelin_${name} ${type}\nmyelin_${name}${labels} ${v}\n`;
    text += line('gateway_connections', 'gauge', 'Open connections.', g.connections);
    text += line('gateway_websockets', 'gauge', 'Open WebSocket connections.', g.websockets);
    text += line('gateway_accepted_total', 'counter', 'Connections accepted.', g.accepted);
    text += line('gateway_refused_total', 'counter', 'Connections refused at the connection limit.', g.refused);
    text += line('gateway_http_requests_total', 'counter', 'HTTP requests parsed.', g.httpRequests);
    text += line('gateway_frames_in_total', 'counter', 'WebSocket messages received.', g.framesIn);
    text += line('gateway_frames_out_total', 'counter', 'WebSocket frames sent.', g.framesOut);
    text += line('gateway_bytes_in_total', 'counter', 'Bytes received.', g.bytesIn);
    text += line('gateway_bytes_out_total', 'counter', 'Bytes sent.', g.bytesOut);
    text += line('gateway_events_in_total', 'counter', 'Events published by network clients.', g.eventsIn);
    text += line('gateway_events_out_total', 'counter', 'Events delivered to WebSocket subscribers.', g.eventsOut);
    text += `# HELP myelin_gateway_closes_total Connections closed, by reason.\n# TYPE myelin_gateway_closes_total counter\n`;
    for (const [reason, v] of Object.entries(g.closes)) text += `myelin_gateway_closes_total{reason="${reason}"} ${v}\n`;
    text += line('bus_events_published_total', 'counter', 'Events published.', b.published);
    text += line('bus_events_delivered_total', 'counter', 'Event deliveries completed.', b.delivered);
    text += line('bus_events_dropped_total', 'counter', 'Events dropped by the overflow policy.', b.dropped);
    text += line('bus_events_failed_total', 'counter', 'Deliveries that failed.', b.failed);
    text += line('bus_events_queued', 'gauge', 'Events queued.', b.queued);
    return { status: 200, headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }, body: text };
  }
}

/** What the alert list endpoint and the dashboard show: rules, state and the last alert, without webhooks or actions. */
interface AlertView {
  name: string;
  state: string;
  severity?: string;
  metric?: string;
  silencedUntil?: number;
  last?: unknown;
}

/** The routes served by the AI client (replaceAI waits for these). */
function isAIPath(path: string): boolean {
  return path === '/v1/chat/completions' || path === '/v1/embeddings' || path === '/v1/models' || path.startsWith('/v1/models/');
}

const noAI: RouteHandler = () => ({
  status: 503,
  body: { error: { message: 'this gateway has no AI client: pass `ai` to new Gateway()', type: 'server_error', code: 'no_ai_client' } },
});

function chooseBackend(io: IoBackend, uringUsable: boolean): 'epoll' | 'io_uring' {
  const env = process.env.MYELIN_IO;
  let want: IoBackend = io;
  if (env !== undefined && env !== '') {
    if (env !== 'epoll' && env !== 'io_uring' && env !== 'auto') {
      throw invalidArgument(`MYELIN_IO must be 'epoll', 'io_uring' or 'auto', got '${env}'`);
    }
    want = env;
  }
  if (want === 'io_uring') {
    if (!uringUsable) throw new MyelinError('ERR_UNSUPPORTED', 'io_uring is not usable on this system (kernel too old, or disabled): use io: "epoll"');
    return 'io_uring';
  }
  // 'auto' picks epoll: measured here (bench/RESULTS.md, "Gateway"), epoll spent ~30%
  // less server CPU per ingested message (296 K vs 212 K msgs per CPU-second), and this
  // kernel's provided-buffer rings fail, so io_uring runs on its slower fallback
  // (buffers given back one SQE each). io_uring stays one option away.
  return 'epoll';
}

function checkInt(name: string, v: unknown, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalidArgument(`${name} must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
}

function pow2(n: number): number {
  let p = 1024;
  while (p < n) p *= 2;
  return p;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
