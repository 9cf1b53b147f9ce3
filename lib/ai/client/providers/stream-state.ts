// The part of a stream decoder that every provider shares: accumulating the answer
// (text pieces, finished tool calls, finish reason, usage), handing parts out, and the
// errors a stream can end with (the client fills their provider and target fields with
// the configured names). Text is kept as pieces and joined once at the end.
import { aiError, type AIError } from '../failure.js';
import type { FinishReason, StreamPart, ToolCall } from '../types.js';
import type { ChatResult } from './provider.js';

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Parses tool arguments once they are complete; '' means "no arguments" ({}), bad JSON undefined. */
export function parseArguments(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function malformed(provider: string, what: string): AIError {
  return aiError('ERR_AI_UPSTREAM', `${provider}: malformed response (${what})`, { failure: 'invalid-response', retryable: false });
}

/** An error frame inside a 200 stream. Overload and server errors may succeed on another
 * attempt; the rest (invalid request, auth) will not. */
export function streamError(provider: string, message: string, type: string | undefined): AIError {
  const transient = type === undefined || /overload|server|api_error|internal|timeout|unavailable/i.test(type);
  return aiError('ERR_AI_UPSTREAM', `${provider}: error frame in the stream${type ? ` (${type})` : ''}: ${message}`, {
    failure: transient ? 'server' : 'client',
    retryable: transient,
    type,
  });
}

export function truncated(provider: string, what: string): AIError {
  return aiError('ERR_AI_STREAM_TRUNCATED', `${provider}: the stream ended without ${what}`, { failure: 'truncated', retryable: true });
}

/** Keeps an error frame's message short; its text is redacted by the client before use. */
export function frameMessage(v: unknown): string {
  if (typeof v === 'string') return v.slice(0, 500);
  if (isObject(v) && typeof v.message === 'string') return v.message.slice(0, 500);
  return 'unknown error';
}

export class StreamState {
  readonly provider: string;
  id = '';
  model = '';
  finishReason: FinishReason | undefined;
  usage: { inputTokens: number; outputTokens: number } | undefined;
  contentEvents = 0;
  done = false;
  readonly #text: string[] = [];
  readonly toolCalls: ToolCall[] = [];
  #out: StreamPart[] | undefined;

  constructor(provider: string) {
    this.provider = provider;
  }

  text(t: string): void {
    if (t === '') return;
    this.contentEvents++;
    this.#text.push(t);
    (this.#out ??= []).push({ type: 'text', text: t });
  }

  toolCall(id: string, name: string, argumentsText: string): void {
    const call: ToolCall = { id, name, arguments: parseArguments(argumentsText), argumentsText };
    this.toolCalls.push(call);
    (this.#out ??= []).push({ type: 'tool-call', ...call });
  }

  take(): StreamPart[] | undefined {
    const out = this.#out;
    this.#out = undefined;
    return out;
  }

  result(): ChatResult {
    return {
      id: this.id,
      model: this.model,
      text: this.#text.join(''),
      toolCalls: this.toolCalls,
      finishReason: this.finishReason ?? (this.toolCalls.length > 0 ? 'tool_calls' : 'stop'),
      usage: this.usage,
    };
  }
}
