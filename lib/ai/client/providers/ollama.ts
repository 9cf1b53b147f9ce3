// Ollama's native API: /api/chat streams NDJSON (no [DONE]; the last line has
// done: true), tool calls arrive whole with arguments as an object and no id (the client
// makes one up), `{"error": ...}` lines can follow content on a 200.
import { randomBytes } from 'node:crypto';
import { NdjsonParser } from '../../stream/ndjson-parser.js';
import type { ResolvedProvider } from '../options.js';
import type { UpstreamErrorInfo } from '../retry.js';
import type { ChatMessage, ChatRequest, EmbedRequest, FinishReason } from '../types.js';
import type { ChatResult, HttpCall, ProviderAdapter, StreamDecoder } from './provider.js';
import { frameMessage, isObject, malformed, parseArguments, StreamState, streamError, truncated } from './stream-state.js';

const NAME = 'ollama';

function headers(p: ResolvedProvider, json: boolean): Record<string, string> {
  const h: Record<string, string> = { ...p.headers, accept: 'application/json' };
  if (json) h['content-type'] = 'application/json';
  // Ollama itself takes no key; one behind an authenticating proxy does.
  if (p.apiKey !== undefined) h.authorization = `Bearer ${p.apiKey}`;
  return h;
}

function newId(prefix: string): string {
  return prefix + randomBytes(12).toString('hex');
}

export function toOllama(messages: ChatMessage[]): Record<string, unknown>[] {
  // Ollama's tool messages name the tool, not the call: remember which call was which.
  const names = new Map<string, string>();
  return messages.map((m) => {
    switch (m.role) {
      case 'system':
      case 'developer':
        return { role: 'system', content: m.content };
      case 'user': {
        if (typeof m.content === 'string') return { role: 'user', content: m.content };
        const text: string[] = [];
        const images: string[] = [];
        for (const part of m.content) {
          if (part.type === 'text') text.push(part.text);
          else {
            const b64 = /^data:[^;,]+;base64,(.*)$/s.exec(part.image_url.url);
            if (b64) images.push(b64[1]);
          }
        }
        return images.length > 0 ? { role: 'user', content: text.join('\n'), images } : { role: 'user', content: text.join('\n') };
      }
      case 'assistant': {
        const out: Record<string, unknown> = { role: 'assistant', content: m.content ?? '' };
        if (m.tool_calls && m.tool_calls.length > 0) {
          out.tool_calls = m.tool_calls.map((c) => {
            names.set(c.id, c.function.name);
            const args = parseArguments(c.function.arguments);
            return { function: { name: c.function.name, arguments: isObject(args) ? args : {} } };
          });
        }
        return out;
      }
      case 'tool': {
        const name = m.name ?? names.get(m.tool_call_id);
        return name !== undefined ? { role: 'tool', content: m.content, tool_name: name } : { role: 'tool', content: m.content };
      }
    }
  });
}

export function chatBody(model: string, req: ChatRequest, stream: boolean): Record<string, unknown> {
  const b: Record<string, unknown> = { model, messages: toOllama(req.messages), stream };
  const options: Record<string, unknown> = {};
  if (req.temperature !== undefined) options.temperature = req.temperature;
  if (req.topP !== undefined) options.top_p = req.topP;
  if (req.maxTokens !== undefined) options.num_predict = req.maxTokens;
  if (req.stop !== undefined) options.stop = Array.isArray(req.stop) ? req.stop : [req.stop];
  if (req.seed !== undefined) options.seed = req.seed;
  if (Object.keys(options).length > 0) b.options = options;
  if (req.tools && req.tools.length > 0 && req.toolChoice !== 'none') {
    b.tools = req.tools.map((t) => ({ type: 'function', function: { ...t.function } }));
  }
  if (req.responseFormat?.type === 'json_object') b.format = 'json';
  else if (req.responseFormat?.type === 'json_schema') b.format = req.responseFormat.json_schema.schema;
  return b;
}

function finish(v: Record<string, unknown>, calls: number): FinishReason {
  if (calls > 0) return 'tool_calls';
  return v.done_reason === 'length' ? 'length' : 'stop';
}

function usageOf(v: Record<string, unknown>): ChatResult['usage'] {
  const i = v.prompt_eval_count;
  const o = v.eval_count;
  if (typeof i !== 'number' && typeof o !== 'number') return undefined;
  return { inputTokens: typeof i === 'number' ? i : 0, outputTokens: typeof o === 'number' ? o : 0 };
}

function argumentsText(a: unknown): string {
  return typeof a === 'string' ? a : JSON.stringify(a ?? {});
}

class OllamaDecoder extends StreamState implements StreamDecoder {
  readonly #nd = new NdjsonParser();

  constructor() {
    super(NAME);
    this.id = newId('ollama-');
  }

  feed(chunk: Uint8Array): void {
    if (this.done) return;
    for (const v of this.#nd.feed(chunk)) {
      if (this.done) return;
      this.#line(v);
    }
  }

  #line(v: unknown): void {
    if (!isObject(v)) throw malformed(NAME, 'a stream line is not an object');
    // An error line can follow content on a 200: check it before anything else.
    if (v.error !== undefined && v.error !== null) throw streamError(NAME, frameMessage(v.error), undefined);
    if (typeof v.model === 'string' && this.model === '') this.model = v.model;
    const m = isObject(v.message) ? v.message : undefined;
    if (m) {
      if (typeof m.content === 'string') this.text(m.content);
      if (typeof m.thinking === 'string' && m.thinking !== '') this.contentEvents++;
      if (Array.isArray(m.tool_calls)) {
        for (const c of m.tool_calls) {
          const fn = isObject(c) && isObject(c.function) ? c.function : undefined;
          if (!fn) continue;
          this.contentEvents++;
          this.toolCall(newId('call_'), typeof fn.name === 'string' ? fn.name : '', argumentsText(fn.arguments));
        }
      }
    }
    if (v.done === true) {
      this.finishReason = finish(v, this.toolCalls.length);
      this.usage = usageOf(v);
      this.done = true;
    }
  }

  end(): void {
    for (const v of this.#nd.end()) if (!this.done) this.#line(v);
    if (!this.done) throw truncated(NAME, 'its done:true line');
  }
}

export const ollama: ProviderAdapter = {
  chat(p, model, req, stream): HttpCall {
    return { method: 'POST', path: '/api/chat', headers: headers(p, true), body: JSON.stringify(chatBody(model, req, stream)) };
  },

  parseChat(body): ChatResult {
    if (!isObject(body)) throw malformed(NAME, 'not an object');
    const m = isObject(body.message) ? body.message : {};
    const toolCalls = Array.isArray(m.tool_calls)
      ? m.tool_calls.filter((c) => isObject(c) && isObject(c.function)).map((c) => {
          const fn = (c as { function: Record<string, unknown> }).function;
          const text = argumentsText(fn.arguments);
          return { id: newId('call_'), name: typeof fn.name === 'string' ? fn.name : '', arguments: parseArguments(text), argumentsText: text };
        })
      : [];
    return {
      id: newId('ollama-'),
      model: typeof body.model === 'string' ? body.model : '',
      text: typeof m.content === 'string' ? m.content : '',
      toolCalls,
      finishReason: finish(body, toolCalls.length),
      usage: usageOf(body),
    };
  },

  decoder: () => new OllamaDecoder(),

  embed(p, model, req: EmbedRequest): HttpCall {
    const b: Record<string, unknown> = { model, input: req.input };
    if (req.dimensions !== undefined) b.dimensions = req.dimensions;
    return { method: 'POST', path: '/api/embed', headers: headers(p, true), body: JSON.stringify(b) };
  },

  parseEmbed(body) {
    if (!isObject(body) || !Array.isArray(body.embeddings)) throw malformed(NAME, 'no embeddings');
    return {
      vectors: body.embeddings as number[][],
      inputTokens: typeof body.prompt_eval_count === 'number' ? body.prompt_eval_count : 0,
      model: typeof body.model === 'string' ? body.model : undefined,
    };
  },

  models(p): HttpCall {
    return { method: 'GET', path: '/api/tags', headers: headers(p, false) };
  },

  parseModels(body) {
    if (!isObject(body) || !Array.isArray(body.models)) throw malformed(NAME, 'no models in the tags answer');
    return body.models.filter(isObject).map((m) => String(m.name));
  },

  parseError(body): UpstreamErrorInfo {
    if (isObject(body)) return { message: frameMessage(body.error ?? body) };
    return { message: typeof body === 'string' ? body : '' };
  },

  requestId: () => undefined,
};
