// HTTP to the providers: one undici Pool per origin (bounded connections, keep-alive,
// HTTP/2 where TLS ALPN offers it). Rules that make it safe to point at paid APIs:
// - Redirects are never followed (undici's request() does not, and no redirect
//   interceptor is installed): a 3xx could carry the key to another origin or to a
//   metadata address, so it reaches the caller as an upstream error.
// - Every request carries an attempt's AbortSignal; aborting it destroys the request
//   and its socket, so a consumer that walks away frees the connection.
// - Errors name the provider and the path, never the origin's query, a header or a key.
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { MyelinError } from '../../errors.js';
import { aiError } from './failure.js';
import type { ResolvedProvider } from './options.js';

export interface TransportOptions {
  maxResponseSize: number;
  connectMs: number;
  /** Idle keep-alive per connection. Default 30 s. */
  keepAliveMs?: number;
}

export interface SendOptions {
  provider: ResolvedProvider;
  method: 'GET' | 'POST';
  /** Path below the provider's base path, e.g. '/chat/completions'. */
  path: string;
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
}

export interface PoolStats {
  connected: number;
  free: number;
  pending: number;
  running: number;
  size: number;
}

export class Transport {
  readonly #pools = new Map<string, Pool>();
  readonly #o: TransportOptions;
  #closed = false;

  constructor(o: TransportOptions) {
    this.#o = o;
  }

  #pool(p: ResolvedProvider): Pool {
    let pool = this.#pools.get(p.origin);
    if (!pool) {
      pool = new Pool(p.origin, {
        connections: p.connections,
        allowH2: true,
        keepAliveTimeout: this.#o.keepAliveMs ?? 30_000,
        connectTimeout: this.#o.connectMs,
        maxResponseSize: this.#o.maxResponseSize,
        // The client runs its own deadlines and watchdogs (scope.ts); these are backstops.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      this.#pools.set(p.origin, pool);
    }
    return pool;
  }

  async send(o: SendOptions): Promise<UpstreamResponse> {
    if (this.#closed) throw new MyelinError('ERR_AI_CLOSED', 'AIClient: request after close()');
    const pool = this.#pool(o.provider);
    try {
      const res = await pool.request({
        method: o.method,
        path: o.provider.basePath + o.path + o.provider.query,
        headers: o.headers,
        body: o.body,
        signal: o.signal,
      });
      return { status: res.statusCode, headers: res.headers, body: res.body };
    } catch (err) {
      if (o.signal.aborted) throw o.signal.reason;
      throw connectionError(err, o.provider.name, o.path);
    }
  }

  /** Per origin: open, free and busy connections. */
  stats(): Record<string, PoolStats> {
    const out: Record<string, PoolStats> = {};
    for (const [origin, pool] of this.#pools) {
      const s = pool.stats;
      out[origin] = { connected: s.connected, free: s.free, pending: s.pending, running: s.running, size: s.size };
    }
    return out;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    // destroy(), not close(): in-flight streams were the caller's to finish before close().
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}

/** Maps an undici failure (no response, or a body that broke) to a MyelinError. */
export function connectionError(err: unknown, provider: string, path: string): MyelinError {
  const code = (err as { code?: string } | null)?.code;
  if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') return tooLarge(provider, path, -1);
  if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    return aiError('ERR_AI_TIMEOUT', `${provider} ${path}: connect timed out`, { failure: 'timeout', retryable: true, provider, cause: err });
  }
  const what = typeof code === 'string' ? code : ((err as Error | null)?.name ?? 'error');
  return aiError('ERR_AI_UPSTREAM', `${provider} ${path}: connection failed (${what})`, { failure: 'connection', retryable: true, provider, cause: err });
}

/** The response exceeded maxResponseSize. undici enforces the limit on HTTP/1.1 only, so
 * the client counts too (HTTP/2 bodies, streams). */
export function tooLarge(provider: string, path: string, limit: number): MyelinError {
  const what = limit >= 0 ? ` (${limit} bytes)` : '';
  return aiError('ERR_AI_UPSTREAM', `${provider} ${path}: the response exceeded maxResponseSize${what}`, { failure: 'too-large', retryable: false, provider });
}

/** Reads a whole body as UTF-8 text under a byte limit. undici's request() never decodes
 * Content-Encoding, so what is counted is what arrived: no decompression bomb applies. */
export async function readText(body: AsyncIterable<Uint8Array> & { destroy(): unknown }, limit: number, provider: string, path: string): Promise<string> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > limit) {
      body.destroy();
      throw tooLarge(provider, path, limit);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks, n).toString('utf8');
}
