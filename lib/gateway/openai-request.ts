// OpenAI request bodies -> AIClient requests. Every field is checked here with OpenAI's
// names, so a 400 names the field as the caller wrote it ('messages[1].content', not the
// AIClient's 'maxTokens'); the AIClient checks its own request again behind this.
//
// Fields: those the AIClient carries are mapped (model, messages, temperature, top_p,
// max_tokens / max_completion_tokens, stop, seed, tools, tool_choice, response_format,
// user, stream, stream_options.include_usage). Hints that do not change the answer are
// accepted and dropped (IGNORED). Sampling knobs the AIClient cannot pass on are accepted
// only at their neutral value (NEUTRAL), so that clients which always send the defaults
// still work while a request that needs them is refused rather than silently changed.
// Anything else is refused, as OpenAI itself refuses an unknown argument. Only the
// fields named here reach the AIClient, so no body can pick the upstream (a URL, a key).
// `null` means "not given" for every optional field, as in OpenAI's API.
import type { ChatMessage, ChatRequest, ContentPart, EmbedRequest, MessageToolCall, ResponseFormat, ToolChoice, ToolDefinition } from '../ai/client/types.js';
import { badRequest } from './openai-errors.js';

type Obj = Record<string, unknown>;

export interface ParsedChat {
  /** Without signal and headers, which come from the HTTP request. */
  request: ChatRequest;
  stream: boolean;
  includeUsage: boolean;
}

export interface ParsedEmbeddings {
  request: EmbedRequest;
  /** encoding_format 'base64': vectors as little-endian float32 bytes, base64 (the official SDKs ask for it by default). */
  base64: boolean;
}

const CHAT_MAPPED = new Set([
  'model',
  'messages',
  'temperature',
  'top_p',
  'max_tokens',
  'max_completion_tokens',
  'stop',
  'seed',
  'tools',
  'tool_choice',
  'response_format',
  'user',
  'n',
  'stream',
  'stream_options',
]);

/** Accepted and dropped: storage, billing and routing hints of OpenAI's own platform. */
const CHAT_IGNORED = new Set(['store', 'metadata', 'service_tier', 'parallel_tool_calls', 'prompt_cache_key', 'safety_identifier']);

/** Accepted only at the value that changes nothing. */
const CHAT_NEUTRAL: Record<string, (v: unknown) => boolean> = {
  frequency_penalty: (v) => v === 0,
  presence_penalty: (v) => v === 0,
  logprobs: (v) => v === false,
  top_logprobs: (v) => v === 0,
  logit_bias: (v) => isObject(v) && Object.keys(v).length === 0,
};

/** OpenAI fields that exist but that this gateway cannot honour: a clear refusal. */
const CHAT_UNSUPPORTED: Record<string, string> = {
  functions: 'the deprecated `functions` parameter is not supported; use `tools`',
  function_call: 'the deprecated `function_call` parameter is not supported; use `tool_choice`',
  reasoning_effort: '`reasoning_effort` is not supported by this gateway',
  modalities: '`modalities` is not supported by this gateway (text only)',
  audio: '`audio` output is not supported by this gateway',
  prediction: '`prediction` is not supported by this gateway',
  web_search_options: '`web_search_options` is not supported by this gateway',
  verbosity: '`verbosity` is not supported by this gateway',
};

const EMBED_MAPPED = new Set(['model', 'input', 'encoding_format', 'dimensions', 'user']);

function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The body as a JSON object, or a 400 as OpenAI words it. */
export function parseJsonObject(body: Uint8Array): Obj {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    throw badRequest('We could not parse the JSON body of your request: it is empty or not valid JSON.', null);
  }
  if (!isObject(v)) throw badRequest('The request body must be a JSON object.', null);
  return v;
}

function given(o: Obj, k: string): unknown {
  const v = o[k];
  return v === null ? undefined : v;
}

function numberIn(o: Obj, k: string, min: number, max: number): number | undefined {
  const v = given(o, k);
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw badRequest(`'${k}' must be a number between ${min} and ${max}`, k);
  return v;
}

function positiveInt(o: Obj, k: string): number | undefined {
  const v = given(o, k);
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw badRequest(`'${k}' must be a positive integer`, k);
  return v;
}

function stringField(o: Obj, k: string, where = k): string | undefined {
  const v = given(o, k);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw badRequest(`'${where}' must be a string`, where);
  return v;
}

function modelOf(b: Obj): string {
  const m = b.model;
  if (typeof m !== 'string' || m === '') throw badRequest("you must provide a model parameter: 'model' must be a non-empty string", 'model');
  return m;
}

/** Text of a string or of an array of text parts (joined with '\n'), for roles that take text only. */
function textContent(v: unknown, where: string, allowNull: boolean): string | null {
  if (typeof v === 'string') return v;
  if ((v === null || v === undefined) && allowNull) return null;
  if (!Array.isArray(v)) throw badRequest(`'${where}' must be a string or an array of text parts`, where);
  const texts: string[] = [];
  for (let k = 0; k < v.length; k++) {
    const p = v[k];
    if (isObject(p) && p.type === 'text' && typeof p.text === 'string') texts.push(p.text);
    // An assistant's earlier refusal, sent back as history: not text the model said.
    else if (!(allowNull && isObject(p) && p.type === 'refusal')) throw badRequest(`'${where}[${k}]' must be { type: 'text', text }`, `${where}[${k}]`);
  }
  return texts.join('\n');
}

function userContent(v: unknown, where: string): string | ContentPart[] {
  if (typeof v === 'string') return v;
  if (!Array.isArray(v) || v.length === 0) throw badRequest(`'${where}' must be a string or a non-empty array of content parts`, where);
  return v.map((p, k): ContentPart => {
    const w = `${where}[${k}]`;
    if (!isObject(p)) throw badRequest(`'${w}' must be a content part object`, w);
    if (p.type === 'text') {
      if (typeof p.text !== 'string') throw badRequest(`'${w}.text' must be a string`, `${w}.text`);
      return { type: 'text', text: p.text };
    }
    if (p.type === 'image_url') {
      const img = p.image_url;
      if (!isObject(img) || typeof img.url !== 'string' || img.url === '') throw badRequest(`'${w}.image_url.url' must be a non-empty string`, `${w}.image_url.url`);
      const out: { url: string; detail?: string } = { url: img.url };
      if (img.detail !== undefined && img.detail !== null) {
        if (img.detail !== 'auto' && img.detail !== 'low' && img.detail !== 'high') throw badRequest(`'${w}.image_url.detail' must be 'auto', 'low' or 'high'`, `${w}.image_url.detail`);
        out.detail = img.detail;
      }
      return { type: 'image_url', image_url: out };
    }
    throw badRequest(`'${w}.type' ${JSON.stringify(String(p.type).slice(0, 40))} is not supported by this gateway (text and image_url parts are)`, `${w}.type`);
  });
}

function toolCalls(v: unknown, where: string): MessageToolCall[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw badRequest(`'${where}' must be an array`, where);
  return v.map((c, k): MessageToolCall => {
    const w = `${where}[${k}]`;
    if (!isObject(c) || typeof c.id !== 'string' || c.id === '') throw badRequest(`'${w}.id' must be a non-empty string`, `${w}.id`);
    if (c.type !== undefined && c.type !== 'function') throw badRequest(`'${w}.type' must be 'function'`, `${w}.type`);
    const fn = c.function;
    if (!isObject(fn) || typeof fn.name !== 'string' || fn.name === '') throw badRequest(`'${w}.function.name' must be a non-empty string`, `${w}.function.name`);
    if (typeof fn.arguments !== 'string') throw badRequest(`'${w}.function.arguments' must be a string (JSON text)`, `${w}.function.arguments`);
    return { id: c.id, type: 'function', function: { name: fn.name, arguments: fn.arguments } };
  });
}

function message(m: unknown, i: number): ChatMessage {
  const w = `messages[${i}]`;
  if (!isObject(m)) throw badRequest(`'${w}' must be an object`, w);
  switch (m.role) {
    case 'system':
    case 'developer':
      return { role: m.role, content: textContent(m.content, `${w}.content`, false)! };
    case 'user':
      return { role: 'user', content: userContent(m.content, `${w}.content`) };
    case 'assistant': {
      const calls = toolCalls(m.tool_calls, `${w}.tool_calls`);
      const content = textContent(m.content, `${w}.content`, true);
      if (content === null && (!calls || calls.length === 0)) throw badRequest(`'${w}' needs content or tool_calls`, `${w}.content`);
      return calls && calls.length > 0 ? { role: 'assistant', content, tool_calls: calls } : { role: 'assistant', content };
    }
    case 'tool': {
      if (typeof m.tool_call_id !== 'string' || m.tool_call_id === '') throw badRequest(`'${w}.tool_call_id' must be a non-empty string`, `${w}.tool_call_id`);
      return { role: 'tool', tool_call_id: m.tool_call_id, content: textContent(m.content, `${w}.content`, false)! };
    }
    case 'function':
      throw badRequest(`'${w}.role' 'function' is deprecated and not supported; use 'tool' messages`, `${w}.role`);
    default:
      throw badRequest(`'${w}.role' must be one of 'system', 'developer', 'user', 'assistant', 'tool'`, `${w}.role`);
  }
}

function tools(v: unknown): ToolDefinition[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw badRequest("'tools' must be an array", 'tools');
  return v.map((t, i): ToolDefinition => {
    const w = `tools[${i}]`;
    if (!isObject(t) || t.type !== 'function') throw badRequest(`'${w}.type' must be 'function'`, `${w}.type`);
    const fn = t.function;
    if (!isObject(fn) || typeof fn.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(fn.name)) {
      throw badRequest(`'${w}.function.name' must be 1 to 64 letters, digits, '_' or '-'`, `${w}.function.name`);
    }
    const out: ToolDefinition['function'] = { name: fn.name };
    if (fn.description !== undefined && fn.description !== null) {
      if (typeof fn.description !== 'string') throw badRequest(`'${w}.function.description' must be a string`, `${w}.function.description`);
      out.description = fn.description;
    }
    if (fn.parameters !== undefined && fn.parameters !== null) {
      if (!isObject(fn.parameters)) throw badRequest(`'${w}.function.parameters' must be a JSON Schema object`, `${w}.function.parameters`);
      out.parameters = fn.parameters;
    }
    return { type: 'function', function: out };
  });
}

function toolChoice(v: unknown): ToolChoice | undefined {
  if (v === undefined) return undefined;
  if (v === 'auto' || v === 'none' || v === 'required') return v;
  if (isObject(v) && v.type === 'function' && isObject(v.function) && typeof v.function.name === 'string' && v.function.name !== '') {
    return { type: 'function', function: { name: v.function.name } };
  }
  throw badRequest("'tool_choice' must be 'auto', 'none', 'required' or { type: 'function', function: { name } }", 'tool_choice');
}

function responseFormat(v: unknown): ResponseFormat | undefined {
  if (v === undefined) return undefined;
  if (isObject(v) && (v.type === 'text' || v.type === 'json_object')) return { type: v.type };
  if (isObject(v) && v.type === 'json_schema') {
    const js = v.json_schema;
    if (!isObject(js) || typeof js.name !== 'string' || js.name === '') throw badRequest("'response_format.json_schema.name' must be a non-empty string", 'response_format.json_schema.name');
    if (!isObject(js.schema)) throw badRequest("'response_format.json_schema.schema' must be a JSON Schema object", 'response_format.json_schema.schema');
    const out: { name: string; schema: Record<string, unknown>; strict?: boolean } = { name: js.name, schema: js.schema };
    if (typeof js.strict === 'boolean') out.strict = js.strict;
    return { type: 'json_schema', json_schema: out };
  }
  throw badRequest("'response_format.type' must be 'text', 'json_object' or 'json_schema'", 'response_format.type');
}

function stop(v: unknown): string | string[] | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.length <= 4 && v.every((s) => typeof s === 'string')) return v as string[];
  throw badRequest("'stop' must be a string or an array of up to 4 strings", 'stop');
}

function refuseOthers(b: Obj, mapped: Set<string>, ignored: Set<string>, neutral: Record<string, (v: unknown) => boolean>, unsupported: Record<string, string>): void {
  for (const k of Object.keys(b)) {
    if (mapped.has(k) || ignored.has(k)) continue;
    const v = b[k];
    if (v === null || v === undefined) continue;
    if (Object.hasOwn(neutral, k)) {
      if (neutral[k](v)) continue;
      throw badRequest(`'${k}' is not supported by this gateway except at its default`, k);
    }
    if (Object.hasOwn(unsupported, k)) throw badRequest(unsupported[k], k);
    const shown = k.length > 40 ? `${k.slice(0, 40)}...` : k;
    throw badRequest(`Unrecognized request argument supplied: ${shown}`, shown);
  }
}

export function parseChat(body: Uint8Array): ParsedChat {
  const b = parseJsonObject(body);
  refuseOthers(b, CHAT_MAPPED, CHAT_IGNORED, CHAT_NEUTRAL, CHAT_UNSUPPORTED);
  const model = modelOf(b);
  const msgs = b.messages;
  if (!Array.isArray(msgs) || msgs.length === 0) throw badRequest("'messages' must be a non-empty array", 'messages');
  const n = given(b, 'n');
  if (n !== undefined && n !== 1) throw badRequest("'n' must be 1: this gateway returns one choice per request", 'n');
  const streamV = given(b, 'stream');
  if (streamV !== undefined && typeof streamV !== 'boolean') throw badRequest("'stream' must be a boolean", 'stream');
  const stream = streamV === true;
  let includeUsage = false;
  const so = given(b, 'stream_options');
  if (so !== undefined) {
    if (!stream) throw badRequest("'stream_options' is only allowed when 'stream' is true", 'stream_options');
    if (!isObject(so)) throw badRequest("'stream_options' must be an object", 'stream_options');
    const iu = so.include_usage;
    if (iu !== undefined && iu !== null && typeof iu !== 'boolean') throw badRequest("'stream_options.include_usage' must be a boolean", 'stream_options.include_usage');
    includeUsage = iu === true;
  }
  const request: ChatRequest = { model, messages: msgs.map(message) };
  const temperature = numberIn(b, 'temperature', 0, 2);
  if (temperature !== undefined) request.temperature = temperature;
  const topP = numberIn(b, 'top_p', 0, 1);
  if (topP !== undefined) request.topP = topP;
  const maxTokens = positiveInt(b, 'max_completion_tokens') ?? positiveInt(b, 'max_tokens');
  if (maxTokens !== undefined) request.maxTokens = maxTokens;
  const st = stop(given(b, 'stop'));
  if (st !== undefined) request.stop = st;
  const seed = given(b, 'seed');
  if (seed !== undefined) {
    if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) throw badRequest("'seed' must be an integer", 'seed');
    request.seed = seed;
  }
  const t = tools(given(b, 'tools'));
  if (t !== undefined && t.length > 0) request.tools = t;
  const tc = toolChoice(given(b, 'tool_choice'));
  if (tc !== undefined) request.toolChoice = tc;
  const rf = responseFormat(given(b, 'response_format'));
  if (rf !== undefined) request.responseFormat = rf;
  const user = stringField(b, 'user');
  if (user !== undefined) request.user = user;
  return { request, stream, includeUsage };
}

export function parseEmbeddings(body: Uint8Array): ParsedEmbeddings {
  const b = parseJsonObject(body);
  refuseOthers(b, EMBED_MAPPED, new Set(), {}, {});
  const model = modelOf(b);
  const input = b.input;
  let inputs: string | string[];
  if (typeof input === 'string') inputs = input;
  else if (Array.isArray(input) && input.length > 0 && input.length <= 2048 && input.every((s) => typeof s === 'string')) inputs = input as string[];
  else if (Array.isArray(input) && input.length > 0 && input.every((s) => typeof s === 'number' || Array.isArray(s))) {
    throw badRequest("'input' as token arrays is not supported by this gateway; send strings", 'input');
  } else throw badRequest("'input' must be a string or a non-empty array of up to 2048 strings", 'input');
  const format = given(b, 'encoding_format') ?? 'float';
  if (format !== 'float' && format !== 'base64') throw badRequest("'encoding_format' must be 'float' or 'base64'", 'encoding_format');
  stringField(b, 'user');
  const request: EmbedRequest = { model, input: inputs };
  const dims = positiveInt(b, 'dimensions');
  if (dims !== undefined) request.dimensions = dims;
  return { request, base64: format === 'base64' };
}
