// Validation of chat and embed requests at the API boundary. Only the fields named in
// ChatRequest are accepted: any other name is ERR_INVALID_ARGUMENT, so a base URL, host
// or key in a request can never pick the upstream (LiteLLM CVE-2024-6587: a body that
// picks the upstream is a server-side request forgery), and a typo is not ignored.
// Messages themselves are not restricted: they come back from providers with fields of
// their own and go out again as they are.
import { invalidArgument } from '../../errors.js';
import { checkHeaders, onlyKnown } from './options.js';
import type { ChatMessage, ChatRequest, EmbedRequest } from './types.js';

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function optNumber(name: string, v: unknown, o: { min?: number; max?: number; integer?: boolean }): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || (o.integer && !Number.isSafeInteger(v)) || (o.min !== undefined && v < o.min) || (o.max !== undefined && v > o.max)) {
    throw invalidArgument(`${name} must be a finite ${o.integer ? 'integer' : 'number'}${o.min !== undefined ? ` >= ${o.min}` : ''}${o.max !== undefined ? ` <= ${o.max}` : ''}`);
  }
}

function checkSignal(where: string, s: unknown): void {
  if (s !== undefined && !(s instanceof AbortSignal)) throw invalidArgument(`${where}.signal must be an AbortSignal`);
}

function checkMessage(m: unknown, i: number): void {
  const w = `chat: messages[${i}]`;
  if (!isObject(m) || typeof m.role !== 'string' || !ROLES.has(m.role)) {
    throw invalidArgument(`${w} must be { role: 'system' | 'developer' | 'user' | 'assistant' | 'tool', content }`);
  }
  const msg = m as unknown as ChatMessage;
  switch (msg.role) {
    case 'system':
    case 'developer':
      if (typeof msg.content !== 'string') throw invalidArgument(`${w}.content must be a string`);
      return;
    case 'user':
      if (typeof msg.content === 'string') return;
      if (!Array.isArray(msg.content)) throw invalidArgument(`${w}.content must be a string or an array of content parts`);
      msg.content.forEach((p, k) => {
        const ok = isObject(p) && ((p.type === 'text' && typeof p.text === 'string') || (p.type === 'image_url' && isObject(p.image_url) && typeof p.image_url.url === 'string'));
        if (!ok) throw invalidArgument(`${w}.content[${k}] must be { type: 'text', text } or { type: 'image_url', image_url: { url } }`);
      });
      return;
    case 'assistant':
      if (msg.content !== null && msg.content !== undefined && typeof msg.content !== 'string') throw invalidArgument(`${w}.content must be a string or null`);
      if (msg.tool_calls !== undefined) {
        if (!Array.isArray(msg.tool_calls)) throw invalidArgument(`${w}.tool_calls must be an array`);
        msg.tool_calls.forEach((c, k) => {
          if (!isObject(c) || typeof c.id !== 'string' || !isObject(c.function) || typeof c.function.name !== 'string' || typeof c.function.arguments !== 'string') {
            throw invalidArgument(`${w}.tool_calls[${k}] must be { id, type: 'function', function: { name, arguments: string } }`);
          }
        });
      }
      return;
    case 'tool':
      if (typeof msg.tool_call_id !== 'string' || msg.tool_call_id === '') throw invalidArgument(`${w}.tool_call_id must be a non-empty string`);
      if (typeof msg.content !== 'string') throw invalidArgument(`${w}.content must be a string`);
      return;
  }
}

/** The names a chat request may carry (types.ts ChatRequest); anything else is refused. */
export const CHAT_FIELDS = [
  'model',
  'messages',
  'temperature',
  'topP',
  'maxTokens',
  'stop',
  'seed',
  'tools',
  'toolChoice',
  'responseFormat',
  'user',
  'signal',
  'cache',
  'priority',
  'headers',
] as const;
const EMBED_FIELDS = ['model', 'input', 'dimensions', 'signal', 'cache', 'headers'] as const;

function checkCache(where: string, c: unknown): void {
  if (c === undefined || typeof c === 'boolean') return;
  if (!isObject(c)) throw invalidArgument(`${where}: cache must be a boolean or { ttlMs }`);
  onlyKnown(`${where}: cache`, c, ['ttlMs']);
  optNumber(`${where}: cache.ttlMs`, c.ttlMs, { min: 1, max: Number.MAX_SAFE_INTEGER });
}

export function checkChatRequest(req: unknown): asserts req is ChatRequest {
  if (!isObject(req)) throw invalidArgument('chat: the request must be an object');
  // A request naming a base URL, host or key is refused here too (see above), as is a
  // typo (max_tokens) that would otherwise be ignored.
  onlyKnown('chat', req, CHAT_FIELDS);
  if (typeof req.model !== 'string' || req.model === '') throw invalidArgument("chat: model must be an alias or a 'provider/model' string");
  if (!Array.isArray(req.messages) || req.messages.length === 0) throw invalidArgument('chat: messages must be a non-empty array');
  req.messages.forEach(checkMessage);
  optNumber('chat: temperature', req.temperature, { min: 0, max: 2 });
  optNumber('chat: topP', req.topP, { min: 0, max: 1 });
  optNumber('chat: maxTokens', req.maxTokens, { min: 1, integer: true });
  optNumber('chat: seed', req.seed, { integer: true });
  if (req.stop !== undefined && typeof req.stop !== 'string' && !(Array.isArray(req.stop) && req.stop.every((s) => typeof s === 'string'))) {
    throw invalidArgument('chat: stop must be a string or an array of strings');
  }
  if (req.tools !== undefined) {
    if (!Array.isArray(req.tools)) throw invalidArgument('chat: tools must be an array');
    req.tools.forEach((t, i) => {
      if (!isObject(t) || t.type !== 'function' || !isObject(t.function) || typeof t.function.name !== 'string' || t.function.name === '') {
        throw invalidArgument(`chat: tools[${i}] must be { type: 'function', function: { name, description?, parameters? } }`);
      }
      if (t.function.parameters !== undefined && !isObject(t.function.parameters)) throw invalidArgument(`chat: tools[${i}].function.parameters must be a JSON Schema object`);
    });
  }
  const tc = req.toolChoice;
  if (tc !== undefined && tc !== 'auto' && tc !== 'none' && tc !== 'required' && !(isObject(tc) && tc.type === 'function' && isObject(tc.function) && typeof tc.function.name === 'string')) {
    throw invalidArgument("chat: toolChoice must be 'auto', 'none', 'required' or { type: 'function', function: { name } }");
  }
  const rf = req.responseFormat;
  if (rf !== undefined) {
    const ok = isObject(rf) && (rf.type === 'text' || rf.type === 'json_object' || (rf.type === 'json_schema' && isObject(rf.json_schema) && isObject(rf.json_schema.schema)));
    if (!ok) throw invalidArgument("chat: responseFormat must be { type: 'text' | 'json_object' } or { type: 'json_schema', json_schema: { name, schema } }");
  }
  if (req.user !== undefined && typeof req.user !== 'string') throw invalidArgument('chat: user must be a string');
  if (req.priority !== undefined && !['critical', 'high', 'normal', 'low'].includes(req.priority as string)) {
    throw invalidArgument("chat: priority must be 'critical', 'high', 'normal' or 'low'");
  }
  checkCache('chat', req.cache);
  checkSignal('chat', req.signal);
  checkHeaders('chat: headers', req.headers);
}

export function checkEmbedRequest(req: unknown): asserts req is EmbedRequest {
  if (!isObject(req)) throw invalidArgument('embed: the request must be an object');
  onlyKnown('embed', req, EMBED_FIELDS);
  if (typeof req.model !== 'string' || req.model === '') throw invalidArgument("embed: model must be an alias or a 'provider/model' string");
  const ok = typeof req.input === 'string' || (Array.isArray(req.input) && req.input.length > 0 && req.input.every((s) => typeof s === 'string'));
  if (!ok) throw invalidArgument('embed: input must be a string or a non-empty array of strings');
  optNumber('embed: dimensions', req.dimensions, { min: 1, integer: true });
  checkCache('embed', req.cache);
  checkSignal('embed', req.signal);
  checkHeaders('embed: headers', req.headers);
}
