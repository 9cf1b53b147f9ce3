// The shapes every HTTP handler of the gateway sees: a request that arrived whole (the
// native I/O thread has read and de-chunked the body) and a response writer whose
// bytes go back to that thread through the egress ring. Handlers live in their own
// modules (openai.ts, events, user routes) and know nothing of rings or sockets.
export interface GatewayRequest {
  /** Upper-case method as sent: 'GET', 'POST', ... */
  readonly method: string;
  /** Path without the query string, as sent (not decoded). */
  readonly path: string;
  /** The query string parsed (the `token` parameter is removed before handlers see it). */
  readonly query: URLSearchParams;
  /** Header names lower-cased; repeated headers joined with ', '. `authorization` is removed. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body bytes (empty for none). */
  readonly body: Buffer;
  /** Aborted when the client goes away before the response ends (socket closed). */
  readonly signal: AbortSignal;
  /** The bearer token the request was authenticated with, or undefined (no auth set). Never log it. */
  readonly token: string | undefined;
}

export interface ResponseWriter {
  /**
   * Sends the status line and headers. Without `content-length` the body is sent
   * chunked. Called at most once; write/end call it with 200 if it has not been.
   */
  head(status: number, headers?: Record<string, string | number>): void;
  /** Sends body bytes; returns false once the client is gone (nothing was sent). */
  write(chunk: string | Uint8Array): boolean;
  /** Finishes the response (with an optional last chunk). Idempotent. */
  end(chunk?: string | Uint8Array): void;
  /** True once head() was called. */
  readonly headersSent: boolean;
  /** True once the client is gone or end() was called. */
  readonly finished: boolean;
}

/** A route handler: may write through `res`, or return a value the gateway sends. */
export type RouteHandler = (
  req: GatewayRequest,
  res: ResponseWriter,
) => void | RouteResult | Promise<void | RouteResult>;

/** What a handler may return instead of writing: a JSON-able body is sent as JSON. */
export interface RouteResult {
  status?: number;
  headers?: Record<string, string | number>;
  body?: string | Uint8Array | object;
}
