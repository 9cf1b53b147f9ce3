// Anthropic Messages. The caller's OpenAI-style conversation is mapped both ways:
// system/developer messages -> top-level `system`; assistant tool_calls -> tool_use
// blocks; tool messages -> tool_result blocks in a user turn (consecutive turns of one
// role merge, as the API requires alternation); tools -> { name, description, input_schema }.
import { SseParser } from '../../stream/sse-parser.js';
import type { ResolvedProvider } from '../options.js';
import type { UpstreamErrorInfo } from '../retry.js';
import type { ChatMessage, ChatRequest, ContentPart, FinishReason, ToolChoice } from '../types.js';
import type { ChatResult, HttpCall, ProviderAdapter, StreamDecoder } from './provider.js';
import { frameMessage, isObject, malformed, parseArguments, StreamState, streamError, truncated } from './stream-state.js';

const NAME = 'anthropic';

type Block = Record<string, unknown>;
interface Turn {
  role: 'user' | 'assistant';
  content: Block[];
}

function headers(p: ResolvedProvider, json: boolean): Record<string, string> {
  const h: Record<string, string> = { ...p.headers, accept: 'application/json', 'anthropic-version': p.anthropicVersion };
  if (json) h['content-type'] = 'application/json';
  if (p.apiKey !== undefined) h['x-api-key'] = p.apiKey;
  return h;
}

function imageBlock(url: string): Block {
  const m = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  if (m) return { type: 'image', source: { type: 'base64', media_type: m[1], data: m[2] } };
  return { type: 'image', source: { type: 'url', url } };
}

function userBlocks(content: string | ContentPart[]): Block[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  return content.map((part) => (part.type === 'text' ? { type: 'text', text: part.text } : imageBlock(part.image_url.url)));
}

export function toAnthropic(messages: ChatMessage[]): { system: string | undefined; turns: Turn[] } {
  const system: string[] = [];
  const turns: Turn[] = [];
  const push = (role: Turn['role'], blocks: Block[]) => {
    if (blocks.length === 0) return;
    const last = turns[turns.length - 1];
    if (last && last.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  };
  for (const m of messages) {
    switch (m.role) {
      case 'system':
      case 'developer':
        system.push(m.content);
        break;
      case 'user':
        push('user', userBlocks(m.content));
        break;
      case 'assistant': {
        const blocks: Block[] = [];
        if (typeof m.content === 'string' && m.content !== '') blocks.push({ type: 'text', text: m.content });
        for (const c of m.tool_calls ?? []) {
          const input = parseArguments(c.function.arguments);
          blocks.push({ type: 'tool_use', id: c.id, name: c.function.name, input: isObject(input) ? input : {} });
        }
        push('assistant', blocks);
        break;
      }
      case 'tool':
        push('user', [{ type: 'tool_result', tool_use_id: m.tool_call_id, content: m.content }]);
        break;
    }
  }
  return { system: system.length > 0 ? system.join('\n\n') : undefined, turns };
}

function toolChoice(c: ToolChoice): Record<string, unknown> {
  if (c === 'auto') return { type: 'auto' };
  if (c === 'none') return { type: 'none' };
  if (c === 'required') return { type: 'any' };
  return { type: 'tool', name: c.function.name };
}

export function chatBody(p: ResolvedProvider, model: string, req: ChatRequest, stream: boolean): Record<string, unknown> {
  const { system, turns } = toAnthropic(req.messages);
  // A lone text block is sent as a string: the shortest form, and the one every proxy knows.
  const messages = turns.map((t) => ({
    role: t.role,
    content: t.content.length === 1 && t.content[0].type === 'text' ? t.content[0].text : t.content,
  }));
  const b: Record<string, unknown> = { model, max_tokens: req.maxTokens ?? p.defaultMaxTokens, messages };
  if (system !== undefined) b.system = system;
  if (req.temperature !== undefined) b.temperature = req.temperature;
  if (req.topP !== undefined) b.top_p = req.topP;
  if (req.stop !== undefined) b.stop_sequences = Array.isArray(req.stop) ? req.stop : [req.stop];
  if (req.tools && req.tools.length > 0) {
    b.tools = req.tools.map((t) => ({
      name: t.function.name,
      ...(t.function.description !== undefined ? { description: t.function.description } : {}),
      input_schema: t.function.parameters ?? { type: 'object', properties: {} },
    }));
    if (req.toolChoice !== undefined) b.tool_choice = toolChoice(req.toolChoice);
  }
  if (req.user !== undefined) b.metadata = { user_id: req.user };
  if (stream) b.stream = true;
  return b;
}

export function finishReason(stop: unknown): FinishReason {
  switch (stop) {
    case 'end_turn':
    case 'stop_sequence':
    case 'pause_turn':
      return 'stop';
    case 'max_tokens':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return typeof stop === 'string' ? stop : 'stop';
  }
}

function inputTokens(u: Record<string, unknown>): number {
  const n = (k: string) => (typeof u[k] === 'number' ? (u[k] as number) : 0);
  return n('input_tokens') + n('cache_creation_input_tokens') + n('cache_read_input_tokens');
}

interface OpenBlock {
  type: string;
  id: string;
  name: string;
  json: string[];
}

class AnthropicDecoder extends StreamState implements StreamDecoder {
  readonly #sse = new SseParser();
  readonly #blocks = new Map<number, OpenBlock>();
  #input = 0;
  #output = 0;

  constructor() {
    super(NAME);
  }

  feed(chunk: Uint8Array): void {
    if (this.done) return;
    for (const ev of this.#sse.feed(chunk)) {
      if (this.done) return;
      this.#event(ev.event, ev.data);
    }
  }

  #event(name: string | undefined, data: string): void {
    if (name === 'ping') return;
    let v: unknown;
    try {
      v = JSON.parse(data);
    } catch {
      if (name === 'error') throw streamError(NAME, data.slice(0, 200), undefined);
      throw malformed(NAME, 'a stream frame is not JSON');
    }
    if (!isObject(v)) throw malformed(NAME, 'a stream frame is not an object');
    // The data's own type is authoritative; the event name is the same by the protocol.
    const type = typeof v.type === 'string' ? v.type : name;
    switch (type) {
      case 'message_start': {
        const m = isObject(v.message) ? v.message : {};
        if (typeof m.id === 'string') this.id = m.id;
        if (typeof m.model === 'string') this.model = m.model;
        if (isObject(m.usage)) this.#input = inputTokens(m.usage);
        this.usage = { inputTokens: this.#input, outputTokens: this.#output };
        return;
      }
      case 'content_block_start': {
        const index = typeof v.index === 'number' ? v.index : 0;
        const cb = isObject(v.content_block) ? v.content_block : {};
        const block: OpenBlock = { type: String(cb.type), id: typeof cb.id === 'string' ? cb.id : '', name: typeof cb.name === 'string' ? cb.name : '', json: [] };
        this.#blocks.set(index, block);
        if (block.type === 'text' && typeof cb.text === 'string') this.text(cb.text);
        return;
      }
      case 'content_block_delta': {
        const index = typeof v.index === 'number' ? v.index : 0;
        const d = isObject(v.delta) ? v.delta : {};
        if (d.type === 'text_delta' && typeof d.text === 'string') this.text(d.text);
        else if (d.type === 'input_json_delta') {
          // The first fragment is often "": nothing to keep, but it is progress.
          const block = this.#blocks.get(index);
          if (block && typeof d.partial_json === 'string' && d.partial_json !== '') block.json.push(d.partial_json);
          this.contentEvents++;
        } else if (d.type === 'thinking_delta' || d.type === 'signature_delta') this.contentEvents++;
        return;
      }
      case 'content_block_stop': {
        const index = typeof v.index === 'number' ? v.index : 0;
        const block = this.#blocks.get(index);
        this.#blocks.delete(index);
        if (block?.type === 'tool_use') this.toolCall(block.id, block.name, block.json.join(''));
        return;
      }
      case 'message_delta': {
        const d = isObject(v.delta) ? v.delta : {};
        if (d.stop_reason !== undefined && d.stop_reason !== null) this.finishReason = finishReason(d.stop_reason);
        if (isObject(v.usage)) {
          // output_tokens is cumulative; input_tokens appears here on some versions.
          if (typeof v.usage.output_tokens === 'number') this.#output = v.usage.output_tokens;
          if (typeof v.usage.input_tokens === 'number') this.#input = inputTokens(v.usage);
          this.usage = { inputTokens: this.#input, outputTokens: this.#output };
        }
        return;
      }
      case 'message_stop':
        this.done = true;
        return;
      case 'error': {
        const e = isObject(v.error) ? v.error : v;
        throw streamError(NAME, frameMessage(e), typeof e.type === 'string' ? e.type : undefined);
      }
      default:
        return; // unknown events are ignored, as the API's versioning policy asks
    }
  }

  end(): void {
    this.#sse.end();
    if (!this.done) throw truncated(NAME, 'message_stop');
  }
}

export const anthropic: ProviderAdapter = {
  chat(p, model, req, stream): HttpCall {
    return { method: 'POST', path: '/v1/messages', headers: headers(p, true), body: JSON.stringify(chatBody(p, model, req, stream)) };
  },

  parseChat(body): ChatResult {
    if (!isObject(body) || !Array.isArray(body.content)) throw malformed(NAME, 'no content');
    const text: string[] = [];
    const toolCalls: ChatResult['toolCalls'] = [];
    for (const b of body.content) {
      if (!isObject(b)) continue;
      if (b.type === 'text' && typeof b.text === 'string') text.push(b.text);
      else if (b.type === 'tool_use') {
        const argumentsText = JSON.stringify(b.input ?? {});
        toolCalls.push({ id: String(b.id ?? ''), name: String(b.name ?? ''), arguments: b.input ?? {}, argumentsText });
      }
    }
    const u = isObject(body.usage) ? body.usage : {};
    return {
      id: typeof body.id === 'string' ? body.id : '',
      model: typeof body.model === 'string' ? body.model : '',
      text: text.join(''),
      toolCalls,
      finishReason: finishReason(body.stop_reason),
      usage: typeof u.output_tokens === 'number' ? { inputTokens: inputTokens(u), outputTokens: u.output_tokens } : undefined,
    };
  },

  decoder: () => new AnthropicDecoder(),

  models(p): HttpCall {
    return { method: 'GET', path: '/v1/models', headers: headers(p, false) };
  },

  parseModels(body) {
    if (!isObject(body) || !Array.isArray(body.data)) throw malformed(NAME, 'no data in the models answer');
    return body.data.filter(isObject).map((m) => String(m.id));
  },

  parseError(body): UpstreamErrorInfo {
    // { type: 'error', error: { type, message, details?: { error_code } }, request_id }
    if (!isObject(body)) return { message: typeof body === 'string' ? body : '' };
    const e = isObject(body.error) ? body.error : body;
    const details = isObject(e.details) ? e.details : {};
    return {
      message: frameMessage(e),
      type: typeof e.type === 'string' ? e.type : undefined,
      detailCode: typeof details.error_code === 'string' ? details.error_code : undefined,
    };
  },

  requestId(h, body) {
    const v = h['request-id'];
    if (typeof v === 'string') return v;
    return isObject(body) && typeof body.request_id === 'string' ? body.request_id : undefined;
  },
};
