// The upstream simulator: one node:http server that speaks OpenAI's, Anthropic's and
// Ollama's wire formats (shared/AI-WIRE.md) with controllable latency, pace, errors,
// rate limits and faults, so that the AI client can be tested against real sockets
// without a provider. Per-request fault headers are documented in controls.ts.
//
// Keys: the simulator compares the key it was given with the request's, and never
// writes a key (or any request header) into a body, a header or a log line.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MyelinError } from '../../errors.js';
import * as anthropic from './anthropic.js';
import {
  ControlError,
  type RequestControls,
  type RetryAfter,
  type SimFault,
  ALL_FAULTS,
  STATUS_FAULTS,
  type StatusFault,
  parseControls,
  parseRetryAfter,
} from './controls.js';
import { AbortedError, type Dialect, type ErrorKind, Exchange, type Provider, type SimHooks, type SimSettings } from './exchange.js';
import * as ollama from './ollama.js';
import * as openai from './openai.js';
import { RateWindow, formatDuration, rfc3339 } from './rate-window.js';
import { mulberry32 } from './text.js';

export { ALL_FAULTS, type SimFault } from './controls.js';
export type { Provider } from './exchange.js';

export interface UpstreamSimulatorOptions {
  /** Delay before the first byte of every answer, ms. Default 0. */
  latencyMs?: number;
  /** Extra random delay in [0, jitterMs) added to latencyMs. Default 0. */
  jitterMs?: number;
  /** Streaming pace in content tokens per second; 0 sends as fast as the socket takes. Default 0. */
  tokensPerS?: number;
  /** Share of requests, in [0, 1], answered with a server error (OpenAI 500, Anthropic 529, Ollama 500). Default 0. */
  errorRate?: number;
  /** Requests per minute per provider before 429s; 0 for no limit. Default 0. */
  rpm?: number;
  /** Tokens per minute reported in the rate-limit headers (not enforced). Default 1,000,000. */
  tpm?: number;
  /** Content seed; the same request and seed give the same text. Default 1. */
  seed?: number;
  /** Completion length in tokens when the request does not cap it lower. Default 16. */
  tokens?: number;
  /** Embedding size when the request names none. Default 16. */
  embeddingDims?: number;
  /** Model ids listed by /v1/models and /api/tags. */
  models?: string[];
  /** When set, OpenAI requests must carry `Authorization: Bearer <apiKey>` and Anthropic ones `x-api-key: <apiKey>`. */
  apiKey?: string;
  /** Request bodies above this get 413. Default 8 MiB. */
  maxBodyBytes?: number;
  /** Form of computed retry-after values: seconds or an HTTP date. Default 'seconds'. */
  retryAfterFormat?: 'seconds' | 'date';
  /** For this long after listen(), answer 503 "Loading model" as llama.cpp does. Default 0. */
  loadingMs?: number;
  /** One line per finished request: method, path, status, time, fault. */
  log?: (line: string) => void;
}

export interface SimulatorStats {
  requests: number;
  active: number;
  byProvider: Record<Provider, number>;
  byStatus: Record<string, number>;
  faults: Record<string, number>;
  rateLimited: number;
  tokensIn: number;
  tokensOut: number;
}

const DEFAULT_MODELS = ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small', 'claude-sonnet-4', 'llama3.2'];

const STATUS_KIND: Record<StatusFault, ErrorKind> = {
  '429': 'rate_limit',
  quota: 'quota',
  billing: 'billing',
  '401': 'auth',
  '500': 'server',
  '502': 'bad_gateway',
  '503': 'unavailable',
  '529': 'overloaded',
};

const MESSAGES: Record<ErrorKind, string> = {
  invalid_request: 'invalid request',
  auth: 'invalid API key (simulated)',
  not_found: 'unknown path',
  method: 'method not allowed',
  too_large: 'request body too large',
  rate_limit: 'Rate limit reached for requests (simulated). Please try again later.',
  quota: 'You exceeded your current quota, please check your plan and billing details. (simulated)',
  billing: 'Your credit balance is too low to access the API. (simulated)',
  server: 'The server had an error while processing your request. (simulated)',
  bad_gateway: 'Bad gateway (simulated)',
  unavailable: 'The service is temporarily unavailable. (simulated)',
  overloaded: 'Overloaded',
  loading: 'Loading model',
};

type Handler = (ex: Exchange, hooks: SimHooks) => Promise<void>;

interface Route {
  method: 'GET' | 'POST';
  dialect: Dialect;
  body: boolean;
  auth: boolean;
  run: Handler;
}

const ROUTES = new Map<string, Route>([
  ['/v1/chat/completions', { method: 'POST', dialect: openai.openaiDialect, body: true, auth: true, run: openai.chatCompletions }],
  ['/v1/embeddings', { method: 'POST', dialect: openai.openaiDialect, body: true, auth: true, run: openai.embeddings }],
  ['/v1/models', { method: 'GET', dialect: openai.openaiDialect, body: false, auth: true, run: openai.listModels }],
  ['/v1/messages', { method: 'POST', dialect: anthropic.anthropicDialect, body: true, auth: true, run: anthropic.messages }],
  ['/v1/messages/count_tokens', { method: 'POST', dialect: anthropic.anthropicDialect, body: true, auth: true, run: anthropic.countTokens }],
  ['/api/chat', { method: 'POST', dialect: ollama.ollamaDialect, body: true, auth: false, run: ollama.chat }],
  ['/api/embed', { method: 'POST', dialect: ollama.ollamaDialect, body: true, auth: false, run: ollama.embed }],
  ['/api/tags', { method: 'GET', dialect: ollama.ollamaDialect, body: false, auth: false, run: ollama.tags }],
]);

interface Scripted {
  fault: SimFault;
  remaining: number;
  retryAfter?: RetryAfter;
}

function nonNegative(name: string, v: unknown, def: number, integer = false): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v))) {
    throw new MyelinError('ERR_INVALID_ARGUMENT', `UpstreamSimulator: ${name} must be a non-negative ${integer ? 'integer' : 'number'}, got ${String(v)}`);
  }
  return v;
}

function sameKey(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export class UpstreamSimulator {
  readonly #settings: SimSettings;
  readonly #latencyMs: number;
  readonly #jitterMs: number;
  readonly #errorRate: number;
  readonly #rpm: number;
  readonly #tpm: number;
  readonly #apiKey: string | undefined;
  readonly #maxBody: number;
  readonly #retryAfterFormat: 'seconds' | 'date';
  readonly #loadingMs: number;
  readonly #log: ((line: string) => void) | undefined;
  readonly #rand: () => number;
  readonly #windows = new Map<Provider, RateWindow>();
  readonly #aborts = new Set<AbortController>();
  readonly #script: Scripted[] = [];
  readonly #hooks: SimHooks;
  #server: Server | undefined;
  #closing: Promise<void> | undefined;
  #listenedAt = 0;
  #stats: SimulatorStats = {
    requests: 0,
    active: 0,
    byProvider: { openai: 0, anthropic: 0, ollama: 0 },
    byStatus: {},
    faults: {},
    rateLimited: 0,
    tokensIn: 0,
    tokensOut: 0,
  };

  constructor(opts: UpstreamSimulatorOptions = {}) {
    if (opts === null || typeof opts !== 'object') throw new MyelinError('ERR_INVALID_ARGUMENT', 'UpstreamSimulator: options must be an object');
    this.#latencyMs = nonNegative('latencyMs', opts.latencyMs, 0);
    this.#jitterMs = nonNegative('jitterMs', opts.jitterMs, 0);
    const tokensPerS = nonNegative('tokensPerS', opts.tokensPerS, 0);
    this.#errorRate = nonNegative('errorRate', opts.errorRate, 0);
    if (this.#errorRate > 1) throw new MyelinError('ERR_INVALID_ARGUMENT', `UpstreamSimulator: errorRate must be in [0, 1], got ${opts.errorRate}`);
    this.#rpm = nonNegative('rpm', opts.rpm, 0, true);
    this.#tpm = nonNegative('tpm', opts.tpm, 1_000_000, true);
    const seed = nonNegative('seed', opts.seed, 1, true);
    const tokens = nonNegative('tokens', opts.tokens, 16, true);
    const dims = nonNegative('embeddingDims', opts.embeddingDims, 16, true);
    if (dims < 1 || dims > 4096) throw new MyelinError('ERR_INVALID_ARGUMENT', 'UpstreamSimulator: embeddingDims must be in [1, 4096]');
    this.#maxBody = nonNegative('maxBodyBytes', opts.maxBodyBytes, 8 * 1024 * 1024, true);
    this.#loadingMs = nonNegative('loadingMs', opts.loadingMs, 0);
    if (opts.apiKey !== undefined && (typeof opts.apiKey !== 'string' || opts.apiKey === '')) {
      throw new MyelinError('ERR_INVALID_ARGUMENT', 'UpstreamSimulator: apiKey must be a non-empty string');
    }
    this.#apiKey = opts.apiKey;
    const form = opts.retryAfterFormat ?? 'seconds';
    if (form !== 'seconds' && form !== 'date') throw new MyelinError('ERR_INVALID_ARGUMENT', "UpstreamSimulator: retryAfterFormat must be 'seconds' or 'date'");
    this.#retryAfterFormat = form;
    const models = opts.models ?? DEFAULT_MODELS;
    if (!Array.isArray(models) || models.length === 0 || !models.every((m) => typeof m === 'string' && m !== '')) {
      throw new MyelinError('ERR_INVALID_ARGUMENT', 'UpstreamSimulator: models must be a non-empty array of strings');
    }
    if (opts.log !== undefined && typeof opts.log !== 'function') throw new MyelinError('ERR_INVALID_ARGUMENT', 'UpstreamSimulator: log must be a function');
    this.#log = opts.log;
    this.#settings = Object.freeze({ seed: seed >>> 0, defaultTokens: tokens, tokensPerS, embeddingDims: dims, models: Object.freeze([...models]) });
    this.#rand = mulberry32(seed ^ 0x2545f491);
    this.#hooks = {
      settings: this.#settings,
      gate: (ex) => this.#gate(ex),
      countTokens: (ex, input, output) => {
        this.#stats.tokensIn += input;
        this.#stats.tokensOut += output;
        this.#window(ex.dialect.provider).addTokens(Date.now(), input, output);
      },
    };
  }

  /** Starts listening; port 0 (the default) picks a free one. */
  async listen(port = 0, host = '127.0.0.1'): Promise<{ port: number; url: string }> {
    if (this.#closing) throw new MyelinError('ERR_CLOSED', 'UpstreamSimulator: listen() after close()');
    if (this.#server) throw new MyelinError('ERR_INVALID_ARGUMENT', 'UpstreamSimulator: already listening');
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new MyelinError('ERR_INVALID_ARGUMENT', `UpstreamSimulator: port must be an integer in [0, 65535], got ${String(port)}`);
    }
    const server = createServer((req, res) => {
      void this.#serve(req, res);
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        this.#server = undefined;
        reject(new MyelinError('ERR_INVALID_ARGUMENT', `UpstreamSimulator: cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
      };
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    this.#listenedAt = Date.now();
    const bound = (server.address() as AddressInfo).port;
    const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    return { port: bound, url: `http://${shown}:${bound}` };
  }

  /** Ends open streams and stalls, drops connections and stops listening. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const ac of this.#aborts) ac.abort();
      const server = this.#server;
      if (!server) return;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    })();
    return this.#closing;
  }

  /**
   * The next `count` well-formed requests to a provider endpoint (every route but
   * /health) get `fault`: a status fault answers instead of content (a fault header on
   * the request takes precedence), a stream fault applies to the answer.
   */
  failNext(count: number, fault: SimFault = '429', options: { retryAfter?: string | number } = {}): void {
    if (!Number.isInteger(count) || count < 1) throw new MyelinError('ERR_INVALID_ARGUMENT', `failNext: count must be a positive integer, got ${String(count)}`);
    if (!ALL_FAULTS.includes(fault)) throw new MyelinError('ERR_INVALID_ARGUMENT', `failNext: unknown fault; expected one of ${ALL_FAULTS.join(', ')}`);
    let retryAfter: RetryAfter | undefined;
    if (options.retryAfter !== undefined) {
      try {
        retryAfter = parseRetryAfter(options.retryAfter, 'failNext retryAfter');
      } catch (err) {
        throw new MyelinError('ERR_INVALID_ARGUMENT', (err as Error).message);
      }
    }
    this.#script.push({ fault, remaining: count, retryAfter });
  }

  stats(): SimulatorStats {
    const s = this.#stats;
    return {
      ...s,
      active: this.#aborts.size,
      byProvider: { ...s.byProvider },
      byStatus: { ...s.byStatus },
      faults: { ...s.faults },
    };
  }

  #window(p: Provider): RateWindow {
    let w = this.#windows.get(p);
    if (!w) this.#windows.set(p, (w = new RateWindow()));
    return w;
  }

  #fault(name: string): void {
    this.#stats.faults[name] = (this.#stats.faults[name] ?? 0) + 1;
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    this.#stats.requests++;
    const ac = new AbortController();
    this.#aborts.add(ac);
    if (this.#closing) ac.abort();
    const path = pathOf(req.url);
    const route = ROUTES.get(path);
    // GET /v1/models is both OpenAI's and Anthropic's; anthropic-version tells them apart.
    const dialect =
      path.startsWith('/v1/models') && req.headers['anthropic-version'] !== undefined
        ? anthropic.anthropicDialect
        : (route?.dialect ?? dialectFor(path, req));
    this.#stats.byProvider[dialect.provider]++;
    const logPath = route || path === '/health' ? path : path.startsWith('/v1/models/') ? '/v1/models/:id' : '(unknown path)';
    let ex: Exchange | undefined;
    res.on('close', () => {
      ac.abort();
      this.#aborts.delete(ac);
      const status = res.headersSent ? String(res.statusCode) : 'none';
      this.#stats.byStatus[status] = (this.#stats.byStatus[status] ?? 0) + 1;
      if (ex?.fault) this.#fault(ex.fault);
      // Method, route and outcome only: an unknown path or a query could hold a key.
      this.#log?.(`${req.method} ${logPath} ${status} ${Math.round(performance.now() - started)}ms${ex?.fault ? ` fault=${ex.fault}` : ''}`);
    });
    try {
      const requestId = dialect.provider === 'anthropic' ? anthropic.anthropicRequestId() : `req_${randomBytes(12).toString('hex')}`;
      let controls: RequestControls;
      let controlError: string | undefined;
      try {
        controls = parseControls(req.headers);
      } catch (err) {
        if (!(err instanceof ControlError)) throw err;
        controls = { splitUtf8: false };
        controlError = err.message;
      }
      ex = new Exchange(req, res, dialect, controls, requestId, ac.signal);
      if (dialect.provider === 'openai') ex.headers['x-request-id'] = requestId;
      if (dialect.provider === 'anthropic') ex.headers['request-id'] = requestId;
      if (controls.shouldRetry) ex.headers['x-should-retry'] = controls.shouldRetry;
      if (controlError) return await ex.fail('invalid_request', controlError);

      if (path === '/health' && req.method === 'GET') return await this.#health(ex);
      const modelId = path.startsWith('/v1/models/') ? decodeModelId(path.slice('/v1/models/'.length)) : undefined;
      if (!route && modelId === undefined) return await ex.fail('not_found', MESSAGES.not_found);
      if ((route?.method ?? 'GET') !== req.method) return await ex.fail('method', MESSAGES.method);
      if (route?.auth !== false) {
        const problem = this.#authenticate(req, dialect.provider);
        if (problem) return await ex.fail('auth', problem);
      }
      if (dialect.provider === 'anthropic' && !req.headers['anthropic-version']) {
        return await ex.fail('invalid_request', 'anthropic-version: header is required');
      }
      if (route?.body) {
        const buf = await ex.readBody(this.#maxBody);
        if (buf === 'too-large') return await ex.fail('too_large', `request body exceeds ${this.#maxBody} bytes`);
        let parsed: unknown;
        try {
          parsed = JSON.parse(buf.toString('utf8'));
        } catch {
          return await ex.fail('invalid_request', 'could not parse the JSON body of the request');
        }
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
          return await ex.fail('invalid_request', 'the request body must be a JSON object');
        }
        ex.body = parsed as Record<string, unknown>;
      }
      if (modelId !== undefined) return await openai.getModel(ex, this.#hooks, modelId);
      if (path === '/v1/models' && dialect.provider === 'anthropic') return await anthropic.listModels(ex, this.#hooks);
      await route!.run(ex, this.#hooks);
    } catch (err) {
      if (err instanceof AbortedError || ac.signal.aborted) {
        res.destroy();
        return;
      }
      // A bug in the simulator: answer 500 if still possible, never the error's text
      // (it could quote a request).
      this.#log?.(`simulator error on ${req.method} ${logPath}: ${(err as Error)?.name ?? 'Error'}`);
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"simulator internal error","type":"server_error","param":null,"code":null}}');
      } else {
        res.destroy();
      }
    }
  }

  async #health(ex: Exchange): Promise<void> {
    if (this.#loading()) return ex.fail('loading', MESSAGES.loading);
    return ex.sendJson(200, { status: 'ok' });
  }

  #loading(): boolean {
    return this.#loadingMs > 0 && Date.now() - this.#listenedAt < this.#loadingMs;
  }

  /** Returns the problem (for the 401 message), or undefined when the key is acceptable. */
  #authenticate(req: IncomingMessage, provider: Provider): string | undefined {
    if (provider === 'openai') {
      if (this.#apiKey === undefined) return undefined;
      const auth = req.headers.authorization;
      if (!auth) return "You didn't provide an API key. (simulated)";
      const m = /^Bearer\s+(.+)$/i.exec(auth);
      if (!m || !sameKey(m[1].trim(), this.#apiKey)) return 'Incorrect API key provided. (simulated)';
      return undefined;
    }
    if (provider === 'anthropic') {
      const key = req.headers['x-api-key'];
      if (typeof key !== 'string' || key === '') return 'x-api-key header is required';
      if (this.#apiKey !== undefined && !sameKey(key, this.#apiKey)) return 'invalid x-api-key';
    }
    return undefined;
  }

  async #gate(ex: Exchange): Promise<boolean> {
    const c = ex.controls;
    const provider = ex.dialect.provider;
    let status = c.status;
    let retryAfter = c.retryAfter;
    const scripted = this.#script[0];
    if (scripted) {
      if (--scripted.remaining === 0) this.#script.shift();
      if ((STATUS_FAULTS as readonly string[]).includes(scripted.fault)) status ??= scripted.fault as StatusFault;
      else if (scripted.fault === 'split-utf8') c.splitUtf8 = true;
      else c.end ??= scripted.fault as RequestControls['end'];
      retryAfter ??= scripted.retryAfter;
    }
    const now = Date.now();
    const win = this.#window(provider);
    let kind: ErrorKind | undefined = status ? STATUS_KIND[status] : undefined;
    if (kind === undefined && this.#loading()) kind = 'loading';
    let limited = false;
    if (kind === undefined && this.#rpm > 0 && win.requests(now) >= this.#rpm) {
      kind = 'rate_limit';
      limited = true;
      this.#stats.rateLimited++;
      if (retryAfter === undefined) {
        const seconds = Math.max(1, Math.ceil(win.resetMs(now) / 1000));
        retryAfter = this.#retryAfterFormat === 'date' ? { kind: 'date', aheadMs: seconds * 1000 } : { kind: 'seconds', seconds };
      }
    }
    if (!limited) win.addRequest(now);
    if (kind === undefined && this.#errorRate > 0 && this.#rand() < this.#errorRate) {
      kind = provider === 'anthropic' ? 'overloaded' : 'server';
    }
    this.#rateHeaders(ex, win, now);
    if (kind !== undefined) {
      if (kind === 'rate_limit' && retryAfter === undefined) {
        retryAfter = this.#retryAfterFormat === 'date' ? { kind: 'date', aheadMs: 1000 } : { kind: 'seconds', seconds: 1 };
      }
      if (kind !== 'quota' && kind !== 'billing' && kind !== 'auth') this.#retryHeaders(ex, retryAfter);
      this.#fault(status ?? (limited ? 'rpm' : kind === 'loading' ? 'loading' : 'error-rate'));
    }
    const delay = ex.controls.latencyMs ?? this.#latencyMs + (this.#jitterMs > 0 ? this.#rand() * this.#jitterMs : 0);
    await ex.sleep(delay);
    if (kind === undefined) return false;
    await ex.fail(kind, MESSAGES[kind]);
    return true;
  }

  #retryHeaders(ex: Exchange, ra: RetryAfter | undefined): void {
    const h = ex.headers;
    let ms: number | undefined;
    if (ra?.kind === 'seconds') {
      h['retry-after'] = String(ra.seconds);
      ms = ra.seconds * 1000;
    } else if (ra?.kind === 'date') {
      h['retry-after'] = new Date(Date.now() + ra.aheadMs).toUTCString();
    } else if (ra?.kind === 'at') {
      h['retry-after'] = ra.date;
    }
    if (ex.dialect.provider === 'openai') {
      const explicit = ex.controls.retryAfterMs;
      if (explicit !== undefined) h['retry-after-ms'] = String(explicit);
      else if (ms !== undefined) h['retry-after-ms'] = String(ms);
    }
  }

  #rateHeaders(ex: Exchange, win: RateWindow, now: number): void {
    const h = ex.headers;
    const provider = ex.dialect.provider;
    if (provider === 'ollama') return;
    const reqLimit = this.#rpm > 0 ? this.#rpm : 10_000;
    const used = win.requests(now);
    const input = win.inputTokens(now);
    const output = win.outputTokens(now);
    const reset = win.resetMs(now);
    const remaining = (limit: number, n: number) => String(Math.max(0, limit - n));
    if (provider === 'openai') {
      h['x-ratelimit-limit-requests'] = String(reqLimit);
      h['x-ratelimit-remaining-requests'] = remaining(reqLimit, used);
      h['x-ratelimit-reset-requests'] = formatDuration(reset);
      h['x-ratelimit-limit-tokens'] = String(this.#tpm);
      h['x-ratelimit-remaining-tokens'] = remaining(this.#tpm, input + output);
      h['x-ratelimit-reset-tokens'] = formatDuration(reset);
      return;
    }
    const at = rfc3339(now + reset);
    const set = (name: string, limit: number, n: number) => {
      h[`anthropic-ratelimit-${name}-limit`] = String(limit);
      h[`anthropic-ratelimit-${name}-remaining`] = remaining(limit, n);
      h[`anthropic-ratelimit-${name}-reset`] = at;
    };
    set('requests', reqLimit, used);
    set('tokens', this.#tpm, input + output);
    set('input-tokens', this.#tpm, input);
    set('output-tokens', this.#tpm, output);
  }
}

function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  const p = q === -1 ? raw : raw.slice(0, q);
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

function decodeModelId(s: string): string | undefined {
  if (s === '' || s.includes('/')) return undefined;
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

function dialectFor(path: string, req: IncomingMessage): Dialect {
  if (path.startsWith('/api/')) return ollama.ollamaDialect;
  if (path.startsWith('/v1/messages') || req.headers['anthropic-version'] !== undefined) return anthropic.anthropicDialect;
  return openai.openaiDialect;
}
