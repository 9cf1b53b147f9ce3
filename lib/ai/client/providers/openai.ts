// OpenAI chat completions, and every server that copies them (vLLM, llama.cpp, Ollama's
// /v1, LM Studio, SGLang). Wire facts: shared/AI-WIRE.md.
import { SseParser } from '../../stream/sse-parser.js';
import type { ResolvedProvider } from '../options.js';
import type { UpstreamErrorInfo } from '../retry.js';
import type { ChatMessage, ChatRequest, EmbedRequest } from '../types.js';
import type { ChatResult, HttpCall, ProviderAdapter, StreamDecoder } from './provider.js';
import { frameMessage, isObject, malformed, parseArguments, StreamState, streamError, truncated } from './stream-state.js';

const NAME = 'openai';

function headers(p: ResolvedProvider, json: boolean): Record<string, string> {
  const h: Record<string, string> = { ...p.headers, accept: 'application/json' };
  if (json) h['content-type'] = 'application/json';
  if (p.apiKey !== undefined) h.authorization = `Bearer ${p.apiKey}`;
  return h;
}

/** Only the fields OpenAI defines travel; anything else a caller attached stays home. */
function message(m: ChatMessage): Record<string, unknown> {
  switch (m.role) {
    case 'assistant': {
      const out: Record<string, unknown> = { role: 'assistant', content: m.content ?? null };
      if (m.tool_calls && m.tool_calls.length > 0) {
        out.tool_calls = m.tool_calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.function.name, arguments: c.function.arguments } }));
      }
      return out;
    }
    case 'tool':
      return { role: 'tool', tool_call_id: m.tool_call_id, content: m.content };
    default:
      return { role: m.role, content: m.content };
  }
}

export function chatBody(p: ResolvedProvider, model: string, req: ChatRequest, stream: boolean): Record<string, unknown> {
  const b: Record<string, unknown> = { model, messages: req.messages.map(message) };
  if (req.temperature !== undefined) b.temperature = req.temperature;
  if (req.topP !== undefined) b.top_p = req.topP;
  // api.openai.com's reasoning models reject max_tokens; compatible servers often know only it.
  if (req.maxTokens !== undefined) b[p.origin === 'https://api.openai.com' ? 'max_completion_tokens' : 'max_tokens'] = req.maxTokens;
  if (req.stop !== undefined) b.stop = req.stop;
  if (req.seed !== undefined) b.seed = req.seed;
  if (req.tools && req.tools.length > 0) {
    b.tools = req.tools.map((t) => ({ type: 'function', function: { ...t.function } }));
    if (req.toolChoice !== undefined) b.tool_choice = req.toolChoice;
  }
  if (req.responseFormat !== undefined) b.response_format = req.responseFormat;
  if (req.user !== undefined) b.user = req.user;
  if (stream) {
    b.stream = true;
    // Without it, streams carry no usage at all (AI-WIRE failure case 9).
    b.stream_options = { include_usage: true };
  }
  return b;
}

function usageOf(u: unknown): ChatResult['usage'] {
  if (!isObject(u)) return undefined;
  const i = u.prompt_tokens;
  const o = u.completion_tokens;
  if (typeof i !== 'number' || typeof o !== 'number') return undefined;
  return { inputTokens: i, outputTokens: o };
}

interface PendingCall {
  id: string;
  name: string;
  args: string[];
}

class OpenAIDecoder extends StreamState implements StreamDecoder {
  readonly #sse = new SseParser();
  // Calls by index, in first-seen order; they complete together at finish_reason.
  readonly #pending = new Map<number, PendingCall>();

  constructor() {
    super(NAME);
  }

  feed(chunk: Uint8Array): void {
    // Bytes after [DONE] are ignored (AI-WIRE parser case 4).
    if (this.done) return;
    for (const ev of this.#sse.feed(chunk)) {
      if (this.done) return;
      this.#event(ev.event, ev.data);
    }
  }

  #event(name: string | undefined, data: string): void {
    if (data === '[DONE]') {
      this.#flushCalls();
      this.done = true;
      return;
    }
    let v: unknown;
    try {
      v = JSON.parse(data);
    } catch {
      if (name === 'error') throw streamError(NAME, data.slice(0, 200), undefined);
      throw malformed(NAME, 'a stream frame is not JSON');
    }
    if (name === 'error' || (isObject(v) && v.error !== undefined && v.error !== null)) {
      const e = isObject(v) ? (v.error ?? v) : v;
      throw streamError(NAME, frameMessage(e), isObject(e) && typeof e.type === 'string' ? e.type : undefined);
    }
    if (!isObject(v)) throw malformed(NAME, 'a stream frame is not an object');
    if (typeof v.id === 'string' && this.id === '') this.id = v.id;
    if (typeof v.model === 'string' && this.model === '') this.model = v.model;
    const usage = usageOf(v.usage);
    if (usage) this.usage = usage;
    // The usage chunk has choices [], null or no choices at all (AI-WIRE parser case 6).
    if (!Array.isArray(v.choices)) return;
    for (const c of v.choices) {
      if (!isObject(c) || (c.index !== undefined && c.index !== 0)) continue;
      const delta = c.delta;
      if (isObject(delta)) {
        if (typeof delta.content === 'string') this.text(delta.content);
        // Reasoning tokens (vLLM, DeepSeek) are progress: they feed the watchdogs, not the text.
        if (typeof delta.reasoning_content === 'string' && delta.reasoning_content !== '') this.contentEvents++;
        if (Array.isArray(delta.tool_calls)) for (const t of delta.tool_calls) this.#fragment(t);
      }
      if (typeof c.finish_reason === 'string') {
        this.finishReason = c.finish_reason;
        this.#flushCalls();
      }
    }
  }

  #fragment(t: unknown): void {
    if (!isObject(t)) return;
    const index = typeof t.index === 'number' ? t.index : 0;
    let call = this.#pending.get(index);
    if (!call) this.#pending.set(index, (call = { id: '', name: '', args: [] }));
    if (typeof t.id === 'string' && t.id !== '') call.id = t.id;
    const fn = t.function;
    if (isObject(fn)) {
      if (typeof fn.name === 'string' && fn.name !== '') call.name = fn.name;
      if (typeof fn.arguments === 'string' && fn.arguments !== '') call.args.push(fn.arguments);
    }
    this.contentEvents++;
  }

  #flushCalls(): void {
    if (this.#pending.size === 0) return;
    const indexes = [...this.#pending.keys()].sort((a, b) => a - b);
    for (const i of indexes) {
      const c = this.#pending.get(i)!;
      this.toolCall(c.id || `call_${i}`, c.name, c.args.join(''));
    }
    this.#pending.clear();
  }

  end(): void {
    this.#sse.end();
    if (!this.done) throw truncated(NAME, 'data: [DONE]');
  }
}

export const openai: ProviderAdapter = {
  chat(p, model, req, stream): HttpCall {
    return { method: 'POST', path: '/chat/completions', headers: headers(p, true), body: JSON.stringify(chatBody(p, model, req, stream)) };
  },

  parseChat(body): ChatResult {
    if (!isObject(body) || !Array.isArray(body.choices)) throw malformed(NAME, 'no choices');
    const c = body.choices[0];
    if (!isObject(c) || !isObject(c.message)) throw malformed(NAME, 'no message in choices[0]');
    const m = c.message;
    const toolCalls = Array.isArray(m.tool_calls)
      ? m.tool_calls.filter(isObject).map((t, i) => {
          const fn = isObject(t.function) ? t.function : {};
          const text = typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments ?? {});
          return { id: typeof t.id === 'string' ? t.id : `call_${i}`, name: typeof fn.name === 'string' ? fn.name : '', arguments: parseArguments(text), argumentsText: text };
        })
      : [];
    return {
      id: typeof body.id === 'string' ? body.id : '',
      model: typeof body.model === 'string' ? body.model : '',
      text: typeof m.content === 'string' ? m.content : '',
      toolCalls,
      finishReason: typeof c.finish_reason === 'string' ? c.finish_reason : toolCalls.length > 0 ? 'tool_calls' : 'stop',
      usage: usageOf(body.usage),
    };
  },

  decoder: () => new OpenAIDecoder(),

  embed(p, model, req: EmbedRequest): HttpCall {
    const b: Record<string, unknown> = { model, input: req.input, encoding_format: 'float' };
    if (req.dimensions !== undefined) b.dimensions = req.dimensions;
    return { method: 'POST', path: '/embeddings', headers: headers(p, true), body: JSON.stringify(b) };
  },

  parseEmbed(body) {
    if (!isObject(body) || !Array.isArray(body.data)) throw malformed(NAME, 'no data in the embeddings answer');
    const rows = body.data.filter(isObject).slice();
    rows.sort((a, b) => (typeof a.index === 'number' ? a.index : 0) - (typeof b.index === 'number' ? b.index : 0));
    const vectors = rows.map((r) => {
      if (!Array.isArray(r.embedding)) throw malformed(NAME, 'an embedding is not an array of numbers');
      return r.embedding as number[];
    });
    const u = isObject(body.usage) && typeof body.usage.prompt_tokens === 'number' ? body.usage.prompt_tokens : 0;
    return { vectors, inputTokens: u, model: typeof body.model === 'string' ? body.model : undefined };
  },

  models(p): HttpCall {
    return { method: 'GET', path: '/models', headers: headers(p, false) };
  },

  parseModels(body) {
    if (!isObject(body) || !Array.isArray(body.data)) throw malformed(NAME, 'no data in the models answer');
    return body.data.filter(isObject).map((m) => String(m.id));
  },

  parseError(body): UpstreamErrorInfo {
    // { error: { message, type, param, code } }, or old vLLM's flat { object: 'error', message, type, code }.
    const e = isObject(body) ? (isObject(body.error) ? body.error : body) : undefined;
    if (!e) return { message: typeof body === 'string' ? body : '' };
    return {
      message: frameMessage(e.message ?? (typeof body === 'object' && isObject(body) && typeof body.error === 'string' ? body.error : '')),
      type: typeof e.type === 'string' ? e.type : undefined,
      code: e.code === null || e.code === undefined ? undefined : String(e.code),
    };
  },

  requestId(h) {
    const v = h['x-request-id'];
    return typeof v === 'string' ? v : undefined;
  },
};
