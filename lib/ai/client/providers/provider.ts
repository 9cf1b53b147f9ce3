// What the client needs from a provider: how to build each request, how to read each
// answer into the one response shape, and a stream decoder that turns the provider's
// frames into the one stream-part shape.
import type { ResolvedProvider } from '../options.js';
import type { ChatRequest, EmbedRequest, FinishReason, StreamPart, ToolCall } from '../types.js';
import type { UpstreamErrorInfo } from '../retry.js';

export interface HttpCall {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** What a provider answered, before the client adds provider, target, cost and timing. */
export interface ChatResult {
  id: string;
  model: string;
  text: string;
  toolCalls: ToolCall[];
  finishReason: FinishReason;
  usage: { inputTokens: number; outputTokens: number } | undefined;
}

export interface StreamDecoder {
  /** Consumes bytes; throws a MyelinError on an error frame or a malformed stream. */
  feed(chunk: Uint8Array): void;
  /** The byte stream ended: throws ERR_AI_STREAM_TRUNCATED when the terminator never came. */
  end(): void;
  /** Parts completed since the last call (the array is handed over, not copied). */
  take(): StreamPart[] | undefined;
  /** Content events so far (text, tool-call fragments, thinking): what the idle watchdog
   * and the time-to-first-token count. Keep-alives and pings never add to it. */
  readonly contentEvents: number;
  /** The terminator arrived. */
  readonly done: boolean;
  result(): ChatResult;
}

export interface ProviderAdapter {
  chat(p: ResolvedProvider, model: string, req: ChatRequest, stream: boolean): HttpCall;
  parseChat(body: unknown): ChatResult;
  decoder(): StreamDecoder;
  /** Undefined when the provider has no embeddings API. */
  embed?(p: ResolvedProvider, model: string, req: EmbedRequest): HttpCall;
  parseEmbed?(body: unknown): { vectors: number[][]; inputTokens: number; model?: string };
  models(p: ResolvedProvider): HttpCall;
  parseModels(body: unknown): string[];
  /** Reads the provider's error body (JSON already parsed when it was JSON, else the text). */
  parseError(body: unknown): UpstreamErrorInfo;
  /** The upstream request id from response headers or body. */
  requestId(headers: Record<string, string | string[] | undefined>, body?: unknown): string | undefined;
}
