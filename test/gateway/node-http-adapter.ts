// Test-only: serves gateway RouteHandlers from a node:http server, implementing
// GatewayRequest and ResponseWriter over node's req/res as lib/gateway/http-types.ts
// describes them, until the native Gateway can host the same handlers. Tests talk to
// the URL only, so that they can move to the real Gateway unchanged.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GatewayRequest, ResponseWriter, RouteHandler, RouteResult } from '../../lib/gateway/http-types.js';

/** 'METHOD /path' -> handler; a path ending in '*' matches every path with that prefix. */
export type RouteTable = Record<string, RouteHandler>;

export interface StartedServer {
  /** http://127.0.0.1:port, no trailing slash. */
  url: string;
  close(): Promise<void>;
}

function find(routes: RouteTable, method: string, path: string): RouteHandler | undefined {
  const exact = routes[`${method} ${path}`];
  if (exact) return exact;
  for (const [k, h] of Object.entries(routes)) {
    if (!k.endsWith('*')) continue;
    const [m, p] = [k.slice(0, k.indexOf(' ')), k.slice(k.indexOf(' ') + 1, -1)];
    if (m === method && path.startsWith(p)) return h;
  }
  return undefined;
}

function writer(res: http.ServerResponse): ResponseWriter {
  let ended = false;
  const gone = () => ended || res.destroyed || res.writableEnded;
  const w: ResponseWriter = {
    head(status, headers = {}) {
      if (res.headersSent || gone()) return;
      res.writeHead(status, headers);
    },
    write(chunk) {
      if (gone()) return false;
      if (!res.headersSent) w.head(200);
      res.write(chunk);
      return true;
    },
    end(chunk) {
      if (gone()) return;
      if (!res.headersSent) w.head(200);
      ended = true;
      res.end(chunk);
    },
    get headersSent() {
      return res.headersSent;
    },
    get finished() {
      return gone();
    },
  };
  return w;
}

function sendResult(w: ResponseWriter, r: RouteResult): void {
  const b = r.body;
  const json = b !== undefined && typeof b !== 'string' && !(b instanceof Uint8Array);
  const bytes = b === undefined ? undefined : json ? JSON.stringify(b) : b;
  w.head(r.status ?? 200, { ...(json ? { 'content-type': 'application/json' } : {}), ...r.headers });
  w.end(bytes as string | Uint8Array | undefined);
}

export async function startServer(routes: RouteTable): Promise<StartedServer> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const ac = new AbortController();
      // The client went away before the response ended.
      res.on('close', () => {
        if (!res.writableFinished) ac.abort();
      });
      const url = new URL(req.url ?? '/', 'http://localhost');
      const query = url.searchParams;
      query.delete('token');
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (k !== 'authorization' && v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      }
      const rawPath = (req.url ?? '/').split('?')[0];
      const gw: GatewayRequest = { method: req.method ?? 'GET', path: rawPath, query, headers, body: Buffer.concat(chunks), signal: ac.signal, token: undefined };
      const w = writer(res);
      const handler = find(routes, gw.method, gw.path);
      if (!handler) return sendResult(w, { status: 404, body: { error: { message: 'no route', type: 'invalid_request_error', param: null, code: 'unknown_url' } } });
      Promise.resolve()
        .then(() => handler(gw, w))
        .then(
          (r) => {
            if (r && !w.headersSent) sendResult(w, r);
            else w.end();
          },
          () => {
            if (!w.headersSent) sendResult(w, { status: 500, body: { error: { message: 'handler failed', type: 'server_error', param: null, code: null } } });
            else w.end();
          },
        );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
