// Token counts for answers whose upstream reported none (Ollama's /v1, SGLang, a stream
// cut before its usage chunk): without them cost and token limits would count zero
// (AI-WIRE failure case 9). gpt-tokenizer (o200k) is loaded on first need only: its
// tables cost a few MB and most upstreams do report usage. Other models' tokenizers
// differ by some percent; the result is marked `estimated`.
import type { ChatMessage, ToolCall, Usage } from './types.js';

type Counter = (text: string) => number;
let counter: Promise<Counter> | undefined;

function load(): Promise<Counter> {
  counter ??= import('gpt-tokenizer')
    .then((m) => (text: string) => m.countTokens(text))
    // Without the tokenizer, ~4 characters a token is the usual rule of thumb.
    .catch(() => (text: string) => Math.ceil(text.length / 4));
  return counter;
}

function messageText(m: ChatMessage): string {
  if (m.role === 'user' && Array.isArray(m.content)) return m.content.map((p) => (p.type === 'text' ? p.text : '')).join('\n');
  let s = typeof m.content === 'string' ? m.content : '';
  if (m.role === 'assistant' && m.tool_calls) for (const c of m.tool_calls) s += c.function.name + c.function.arguments;
  return s;
}

export async function estimateUsage(messages: ChatMessage[], text: string, toolCalls: ToolCall[]): Promise<Usage> {
  const count = await load();
  // ~4 tokens of framing per message, as OpenAI's cookbook counts chat input.
  let input = 0;
  for (const m of messages) input += 4 + count(messageText(m));
  let output = count(text);
  for (const c of toolCalls) output += count(c.name) + count(c.argumentsText);
  return { inputTokens: input, outputTokens: output, estimated: true };
}
