// The request, response and stream-part shapes of the AIClient (shared/API.md). Callers
// speak OpenAI's conventions (messages, `tools`, `tool_calls`, `tool` messages) whatever
// the provider; each provider adapter translates both ways, so that a conversation can
// move between providers (fallback) without the caller noticing.

/** A function tool, OpenAI-style. `parameters` is a JSON Schema object. */
export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

/** A tool call as it appears in an assistant message (OpenAI wire shape, arguments as JSON text). */
export interface MessageToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface TextContentPart {
  type: 'text';
  text: string;
}

export interface ImageContentPart {
  type: 'image_url';
  image_url: { url: string };
}

export type ContentPart = TextContentPart | ImageContentPart;

export type ChatMessage =
  | { role: 'system' | 'developer'; content: string }
  | { role: 'user'; content: string | ContentPart[] }
  | { role: 'assistant'; content: string | null; tool_calls?: MessageToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string; name?: string };

export type ToolChoice = 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { name: string; schema: Record<string, unknown>; strict?: boolean } };

export interface ChatRequest {
  /** An alias from `models`, or 'provider/model'. */
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  topP?: number;
  maxTokens?: number;
  stop?: string | string[];
  seed?: number;
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  responseFormat?: ResponseFormat;
  /** End-user id, forwarded where the provider has a field for it. */
  user?: string;
  signal?: AbortSignal;
  /** Per-request cache control, with a client `cache`: false never caches, true (or
   * { ttlMs }) caches even a sampled (temperature > 0) request. Without a client cache: ignored. */
  cache?: boolean | { ttlMs?: number };
  /** Order among requests waiting for a local rate limit. Default 'normal'. */
  priority?: 'critical' | 'high' | 'normal' | 'low';
  /** Extra upstream request headers (tracing, provider betas). Authentication and
   * framing headers cannot be set here. */
  headers?: Record<string, string>;
}

/** A complete tool call in a response: arguments parsed from their JSON text. */
export interface ToolCall {
  id: string;
  name: string;
  /** The parsed arguments; undefined when the model produced text that is not JSON. */
  arguments: unknown;
  /** The arguments exactly as the model produced them. */
  argumentsText: string;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | (string & {});

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  /** True when the upstream reported no usage and the counts were estimated locally. */
  estimated?: boolean;
}

export interface ChatResponse {
  id: string;
  /** The model the upstream says answered. */
  model: string;
  /** The configured provider name. */
  provider: string;
  /** 'provider/model' as configured (the key of stats and prices). */
  target: string;
  text: string;
  /** The assistant message, ready to append to `messages` for the next turn. */
  message: { role: 'assistant'; content: string | null; tool_calls?: MessageToolCall[] };
  toolCalls?: ToolCall[];
  finishReason: FinishReason;
  usage: Usage;
  costUsd?: number;
  latencyMs: number;
  /** Upstream attempts this call took, across retries and fallback targets. */
  attempts: number;
  cached: boolean;
}

export type StreamPart =
  | { type: 'text'; text: string }
  | ({ type: 'tool-call' } & ToolCall)
  | { type: 'done'; response: ChatResponse };

export interface EmbedRequest {
  model: string;
  input: string | string[];
  dimensions?: number;
  signal?: AbortSignal;
  /** With a client `cache`: false skips it; { ttlMs } sets this entry's TTL. Embeddings
   * are deterministic, so they are cached by default. Without a client cache: ignored. */
  cache?: boolean | { ttlMs?: number };
  headers?: Record<string, string>;
}

export interface EmbedResponse {
  vectors: number[][];
  usage: { inputTokens: number };
  model: string;
  provider: string;
  target: string;
  latencyMs: number;
  attempts: number;
  /** True when the vectors came from the cache (attempts is then 0). */
  cached: boolean;
}
