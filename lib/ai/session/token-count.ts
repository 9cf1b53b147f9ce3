// Token counts for context budgets. OpenAI-family models are counted exactly with
// gpt-tokenizer (o200k_base for gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o-series, gpt-oss;
// cl100k_base for gpt-4, gpt-3.5 and the embedding models); every other model gets an
// estimate that errs high (a budget overshoot is an upstream 400, an undershoot only
// a shorter context).
//
// Counting is the expensive part of trimming: ~9 ms for 8 300 tokens of English with
// o200k, plus ~170 ms once per process to load an encoding (2-core dev VM, Node 20).
// So counts are cached, per message object (valid while its content, tool calls and
// name are the same references) and per text in a bounded LRU (which also catches
// histories re-read from Redis as new objects): trimming that history again then takes
// ~0.05 ms with the same objects, ~0.2 ms with fresh ones.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { moduleDir } from '../../internal/here.js';

export type Encoding = 'o200k_base' | 'cl100k_base';

/** A chat message in the OpenAI or AIClient shape; Anthropic-style content blocks also count. */
export interface SessionMessage {
  role: string;
  content?: unknown;
  name?: string;
  toolCalls?: unknown[];
  tool_calls?: unknown[];
  toolCallId?: string;
  tool_call_id?: string;
  [field: string]: unknown;
}

interface Tokenizer {
  countTokens(text: string, options?: { disallowedSpecial?: Set<string> }): number;
}

// Loaded through require: the package's subpath exports are invisible to the CommonJS
// build's node10 resolution, and only the encodings actually used get loaded (~2 MB each).
const requireHere = createRequire(join(moduleDir, 'token-count.js'));
const tokenizers = new Map<Encoding, Tokenizer>();
// User text may contain '<|endoftext|>' and the like: count it as text, never throw.
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

function tokenizer(encoding: Encoding): Tokenizer {
  let t = tokenizers.get(encoding);
  if (t === undefined) {
    t = requireHere(`gpt-tokenizer/encoding/${encoding}`) as Tokenizer;
    tokenizers.set(encoding, t);
  }
  return t;
}

/** The exact encoding for an OpenAI-family model ('openai/gpt-4o' or 'gpt-4o'), else undefined. */
export function encodingFor(model: string): Encoding | undefined {
  let m = model.slice(model.lastIndexOf('/') + 1).toLowerCase();
  if (m.startsWith('ft:')) m = m.slice(3);
  if (/^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-oss|o[1-9](-|$)|omni-moderation)/.test(m)) return 'o200k_base';
  if (/^(gpt-4|gpt-3\.5|text-embedding-3|text-embedding-ada-002)/.test(m)) return 'cl100k_base';
  return undefined;
}

function isCjk(c: number): boolean {
  return (c >= 0x3040 && c <= 0x9fff) || (c >= 0xac00 && c <= 0xd7af) || (c >= 0xf900 && c <= 0xfaff) || (c >= 0xff00 && c <= 0xffef);
}

/**
 * Estimate for models without a known tokenizer: about one token per CJK character,
 * and for the rest the larger of chars / 4 and 4/3 tokens per word.
 */
export function estimateTokens(text: string): number {
  let cjk = 0;
  let other = 0;
  let words = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (isCjk(c)) {
      cjk++;
      inWord = false;
    } else if (c === 32 || c === 10 || c === 9 || c === 13) {
      other++;
      inWord = false;
    } else {
      other++;
      if (!inWord) words++;
      inWord = true;
    }
  }
  return cjk + Math.ceil(Math.max(other / 4, (words * 4) / 3));
}

const TEXT_CACHE_MIN_CHARS = 64;
const TEXT_CACHE_MAX_ENTRIES = 4096;
const TEXT_CACHE_MAX_CHARS = 8_000_000;
const textCache = new Map<string, number>();
let textCacheChars = 0;

function countText(text: string, encoding: Encoding | undefined): number {
  if (text.length === 0) return 0;
  if (text.length < TEXT_CACHE_MIN_CHARS) return encoding === undefined ? estimateTokens(text) : tokenizer(encoding).countTokens(text, PLAIN_TEXT);
  const key = `${encoding ?? 'est'}\u0000${text}`;
  const hit = textCache.get(key);
  if (hit !== undefined) {
    textCache.delete(key);
    textCache.set(key, hit);
    return hit;
  }
  const n = encoding === undefined ? estimateTokens(text) : tokenizer(encoding).countTokens(text, PLAIN_TEXT);
  textCache.set(key, n);
  textCacheChars += key.length;
  for (const k of textCache.keys()) {
    if (textCache.size <= TEXT_CACHE_MAX_ENTRIES && textCacheChars <= TEXT_CACHE_MAX_CHARS) break;
    textCache.delete(k);
    textCacheChars -= k.length;
  }
  return n;
}

/** Tokens in `text` for `model` (exact for OpenAI-family models, estimated otherwise). */
export function countTokens(text: string, model: string): number {
  return countText(text, encodingFor(model));
}

// OpenAI's accounting for chat: every message is wrapped in <|im_start|>role ... <|im_end|>
// (3 tokens), a name costs 1 more, and the reply is primed with 3.
const PER_MESSAGE = 3;
const PER_NAME = 1;
const REPLY_PRIMING = 3;
// A rough fixed cost per image part: OpenAI's low-detail image is 85 tokens.
const PER_IMAGE = 85;

function contentTokens(content: unknown, encoding: Encoding | undefined): number {
  if (typeof content === 'string') return countText(content, encoding);
  if (content === null || content === undefined) return 0;
  if (Array.isArray(content)) {
    let n = 0;
    for (const part of content) {
      if (typeof part === 'string') n += countText(part, encoding);
      else if (part !== null && typeof part === 'object') {
        const p = part as { type?: unknown; text?: unknown; content?: unknown; input?: unknown };
        if (typeof p.text === 'string') n += countText(p.text, encoding);
        else if (typeof p.type === 'string' && p.type.includes('image')) n += PER_IMAGE;
        else if (p.type === 'tool_result') n += contentTokens(p.content, encoding);
        else n += countText(JSON.stringify(part), encoding);
      }
    }
    return n;
  }
  return countText(JSON.stringify(content), encoding);
}

function toolCallTokens(calls: unknown[] | undefined, encoding: Encoding | undefined): number {
  if (calls === undefined || calls.length === 0) return 0;
  let n = 0;
  for (const call of calls) {
    const c = call as { name?: unknown; arguments?: unknown; function?: { name?: unknown; arguments?: unknown } };
    const name = c.function?.name ?? c.name;
    const args = c.function?.arguments ?? c.arguments;
    n += PER_MESSAGE;
    if (typeof name === 'string') n += countText(name, encoding);
    if (args !== undefined) n += countText(typeof args === 'string' ? args : JSON.stringify(args), encoding);
  }
  return n;
}

interface CachedCount {
  encoding: Encoding | undefined;
  content: unknown;
  calls: unknown;
  name: unknown;
  n: number;
}

const messageCache = new WeakMap<object, CachedCount>();

/** Tokens one message costs in a prompt, overhead included. */
export function countMessage(message: SessionMessage, model: string): number {
  const encoding = encodingFor(model);
  const calls = message.toolCalls ?? message.tool_calls;
  const c = messageCache.get(message);
  if (c !== undefined && c.encoding === encoding && c.content === message.content && c.calls === calls && c.name === message.name) return c.n;
  let n = PER_MESSAGE + contentTokens(message.content, encoding) + toolCallTokens(calls, encoding);
  if (typeof message.name === 'string') n += PER_NAME + countText(message.name, encoding);
  messageCache.set(message, { encoding, content: message.content, calls, name: message.name, n });
  return n;
}

/** Tokens a whole prompt of `messages` costs, reply priming included. */
export function countMessages(messages: readonly SessionMessage[], model: string): number {
  let n = REPLY_PRIMING;
  for (const m of messages) n += countMessage(m, model);
  return n;
}

/** Exposed for tests: the chat accounting constants. */
export const MESSAGE_OVERHEAD = { perMessage: PER_MESSAGE, perName: PER_NAME, replyPriming: REPLY_PRIMING } as const;
