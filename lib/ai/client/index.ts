// The AI client's public surface, for lib/index.ts to re-export.
export { type AICatalog, AIClient, type AIClientStats } from './ai-client.js';
export type { CacheStats } from './cache-layer.js';
export { AISession, type SendExtra, type SessionOptions } from './session.js';
export type {
  AIClientOptions,
  BreakerOptions,
  CacheOptions,
  LimitOptions,
  ModelRoute,
  Price,
  ProviderConfig,
  ProviderKind,
  RetryOptions,
  StoreOptions,
  Strategy,
  TimeoutOptions,
} from './options.js';
export type { OverheadStats } from './overhead.js';
export type { TargetStats } from './target-stats.js';
export type { PoolStats } from './transport.js';
export type {
  ChatMessage,
  ChatRequest,
  ChatResponse,
  ContentPart,
  EmbedRequest,
  EmbedResponse,
  FinishReason,
  MessageToolCall,
  ResponseFormat,
  StreamPart,
  ToolCall,
  ToolChoice,
  ToolDefinition,
  Usage,
} from './types.js';
