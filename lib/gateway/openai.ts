// The gateway's OpenAI-compatible endpoints, served by an AIClient:
//   POST /v1/chat/completions   chat.completion, or SSE chat.completion.chunk with stream: true
//   GET  /v1/models             the aliases and 'provider/model' targets the AIClient routes to
//   GET  /v1/models/{id}        one of them (`model` handler; the id is the rest of the path)
//   POST /v1/embeddings         float or base64 vectors with usage
// Requests are checked and mapped in openai-request.ts, failures shaped in
// openai-errors.ts. The handlers only use GatewayRequest/ResponseWriter, so the same
// code runs behind the native gateway and behind any adapter.
//
// Streaming. The status line waits for the AIClient's first part: until then nothing is
// committed (the AIClient retries and falls back before its first content), so a failure
// there still gets its own HTTP status (429 with retry-after, 404, 503...). After it:
//   data: {chat.completion.chunk}\n\n   one per part; the first carries role 'assistant';
//                                       a tool call is one delta in OpenAI's indexed form,
//                                       id, name and whole arguments together
//   data: {... finish_reason}\n\n       delta {}, the finish reason
//   data: {... choices: [], usage}\n\n  only with stream_options.include_usage
//   data: [DONE]\n\n
// A failure after the first part is sent as one `data: {"error":{...}}` event (the
// OpenAI shape, which the official SDKs raise as an APIError) and the response ends
// without [DONE], so that no client can take the answer for complete.
// The client's disconnect (req.signal, or write() returning false) stops the loop, which
// aborts the upstream call and frees its socket.
//
// Cost per chunk: one JSON.stringify (of the text, or of the tool call) and one string
// concatenation with a prefix and suffix built once per response; no objects per chunk.
import { randomBytes } from 'node:crypto';
import { MyelinError } from '../errors.js';
import { AIClient } from '../ai/client/ai-client.js';
import { RESERVED_HEADERS, onlyKnown, splitTarget } from '../ai/client/options.js';
import type { ChatRequest, ChatResponse } from '../ai/client/types.js';
import type { GatewayRequest, ResponseWriter, RouteHandler } from './http-types.js';
import { modelNotFound, toOpenAIFailure } from './openai-errors.js';
import { parseChat, parseEmbeddings } from './openai-request.js';

export interface OpenAIRoutesOptions {
  /**
   * The AIClient answers from the built-in upstream simulator: every model in
   * /v1/models says `owned_by: 'myelin-simulator'`, and every answer carries the header
   * `x-myelin-simulated: true`, so that nobody takes simulated text for a model's.
   */
  simulated?: boolean;
  /**
   * Request headers passed on to the upstream call (tracing, provider betas, the
   * simulator's x-sim-* controls): lower-case names, or a prefix ending in '*'
   * ('x-sim-*'). Headers the AIClient owns (authorization, keys, framing) are never
   * passed, whatever matches. Default: none.
   */
  forwardHeaders?: readonly string[];
}

export interface OpenAIRoutes {
  /** POST /v1/chat/completions */
  chatCompletions: RouteHandler;
  /** GET /v1/models */
  models: RouteHandler;
  /** GET /v1/models/{id}: the model id is the path after '/v1/models/' (percent-decoded; it may hold '/'). */
  model: RouteHandler;
  /** POST /v1/embeddings */
  embeddings: RouteHandler;
}

const MODELS_PREFIX = '/v1/models/';
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
/** Never forwarded, even when a prefix matches: they identify the caller or the hop. */
const NEVER_FORWARDED = new Set([...RESERVED_HEADERS, 'cookie', 'x-forwarded-for', 'forwarded', 'te', 'trailer', 'keep-alive', 'accept-encoding', 'accept']);

interface Forwarding {
  exact: string[];
  prefixes: string[];
}

function forwarding(list: unknown): Forwarding | undefined {
  if (list === undefined) return undefined;
  if (!Array.isArray(list)) throw new MyelinError('ERR_INVALID_ARGUMENT', 'createOpenAIRoutes: forwardHeaders must be an array of lower-case header names');
  const f: Forwarding = { exact: [], prefixes: [] };
  for (const raw of list) {
    const prefix = typeof raw === 'string' && raw.endsWith('*');
    const name = typeof raw === 'string' ? (prefix ? raw.slice(0, -1) : raw) : '';
    if (name === '' || !HEADER_NAME.test(name)) {
      throw new MyelinError('ERR_INVALID_ARGUMENT', "createOpenAIRoutes: forwardHeaders entries must be lower-case header names or prefixes ending in '*'");
    }
    if (!prefix && NEVER_FORWARDED.has(name)) throw new MyelinError('ERR_INVALID_ARGUMENT', `createOpenAIRoutes: forwardHeaders cannot name ${name}, which the AIClient sets itself`);
    (prefix ? f.prefixes : f.exact).push(name);
  }
  return f.exact.length + f.prefixes.length > 0 ? f : undefined;
}

function forwarded(f: Forwarding | undefined, h: Readonly<Record<string, string>>): Record<string, string> | undefined {
  if (!f) return undefined;
  let out: Record<string, string> | undefined;
  for (const k of f.exact) {
    const v = h[k];
    if (v !== undefined) (out ??= {})[k] = v;
  }
  if (f.prefixes.length > 0) {
    for (const k of Object.keys(h)) {
      if (NEVER_FORWARDED.has(k) || !f.prefixes.some((p) => k.startsWith(p))) continue;
      (out ??= {})[k] = h[k];
    }
  }
  return out;
}

const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' };
const SSE_HEADERS_SIM = { ...SSE_HEADERS, 'x-myelin-simulated': 'true' };

function completionId(): string {
  return `chatcmpl-${randomBytes(12).toString('hex')}`;
}

function usageJson(u: ChatResponse['usage']): string {
  return `{"prompt_tokens":${u.inputTokens},"completion_tokens":${u.outputTokens},"total_tokens":${u.inputTokens + u.outputTokens}}`;
}

export function createOpenAIRoutes(ai: AIClient, options: OpenAIRoutesOptions = {}): OpenAIRoutes {
  if (!(ai instanceof AIClient)) throw new MyelinError('ERR_INVALID_ARGUMENT', 'createOpenAIRoutes: ai must be an AIClient');
  if (options === null || typeof options !== 'object') throw new MyelinError('ERR_INVALID_ARGUMENT', 'createOpenAIRoutes: options must be an object');
  onlyKnown('createOpenAIRoutes', options as Record<string, unknown>, ['simulated', 'forwardHeaders']);
  if (options.simulated !== undefined && typeof options.simulated !== 'boolean') throw new MyelinError('ERR_INVALID_ARGUMENT', 'createOpenAIRoutes: simulated must be a boolean');
  const simulated = options.simulated === true;
  const fwd = forwarding(options.forwardHeaders);

  // The AIClient's routing is fixed at its construction, so the model list is built once.
  const catalog = ai.catalog();
  const providers = new Set(catalog.providers.map((p) => p.name));
  const targetCount = new Map(catalog.aliases.map((a) => [a.name, a.targets.length]));
  const created = Math.floor(Date.now() / 1000);
  const owner = (id: string, alias: boolean) => (simulated ? 'myelin-simulator' : alias ? 'myelin' : splitTarget(id)!.provider);
  const listed = new Map<string, { id: string; object: 'model'; created: number; owned_by: string }>();
  for (const a of catalog.aliases) listed.set(a.name, { id: a.name, object: 'model', created, owned_by: owner(a.name, true) });
  for (const t of catalog.targets) if (!listed.has(t)) listed.set(t, { id: t, object: 'model', created, owned_by: owner(t, false) });
  const modelList = Buffer.from(JSON.stringify({ object: 'list', data: [...listed.values()] }));
  const jsonHeaders: Record<string, string> = simulated ? { 'content-type': 'application/json', 'x-myelin-simulated': 'true' } : { 'content-type': 'application/json' };

  /** An alias, or 'provider/model' of a configured provider (any model name: the upstream judges it). */
  const checkModel = (model: string): void => {
    if (targetCount.has(model)) return;
    const s = splitTarget(model);
    if (!s || !providers.has(s.provider)) throw modelNotFound(model);
  };
  const multiTarget = (model: string) => (targetCount.get(model) ?? 1) > 1;

  const sendJson = (res: ResponseWriter, status: number, body: Uint8Array, extra?: Record<string, string>): void => {
    res.head(status, { ...jsonHeaders, ...extra, 'content-length': body.byteLength });
    res.end(body);
  };

  const sendError = (req: GatewayRequest, res: ResponseWriter, err: unknown, model?: string): void => {
    // A client that left gets nothing; its call was aborted through req.signal.
    if (req.signal.aborted || res.finished) return res.end();
    const f = toOpenAIFailure(err, model !== undefined && multiTarget(model));
    sendJson(res, f.status, Buffer.from(JSON.stringify(f.body)), f.headers);
  };

  const chatCompletions: RouteHandler = async (req, res) => {
    let model: string | undefined;
    let request: ChatRequest;
    let stream: boolean;
    let includeUsage: boolean;
    try {
      const p = parseChat(req.body);
      model = p.request.model;
      checkModel(model);
      request = p.request;
      stream = p.stream;
      includeUsage = p.includeUsage;
    } catch (err) {
      return sendError(req, res, err, model);
    }
    request.signal = req.signal;
    const headers = forwarded(fwd, req.headers);
    if (headers) request.headers = headers;
    if (stream) return streamChat(req, res, request, includeUsage);
    let r: ChatResponse;
    try {
      r = await ai.chat(request);
    } catch (err) {
      return sendError(req, res, err, model);
    }
    const message: Record<string, unknown> = { role: 'assistant', content: r.message.content, refusal: null };
    if (r.message.tool_calls) message.tool_calls = r.message.tool_calls;
    const body = {
      id: completionId(),
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: request.model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: r.finishReason || 'stop' }],
      usage: { prompt_tokens: r.usage.inputTokens, completion_tokens: r.usage.outputTokens, total_tokens: r.usage.inputTokens + r.usage.outputTokens },
    };
    sendJson(res, 200, Buffer.from(JSON.stringify(body)), { 'x-myelin-target': r.target });
  };

  const streamChat = async (req: GatewayRequest, res: ResponseWriter, request: ChatRequest, includeUsage: boolean): Promise<void> => {
    // Built once: every chunk is head + choice + tail (see the top of the file).
    const head = `data: {"id":"${completionId()}","object":"chat.completion.chunk","created":${Math.floor(Date.now() / 1000)},"model":${JSON.stringify(request.model)},"choices":[`;
    const tail = includeUsage ? '],"usage":null}\n\n' : ']}\n\n';
    const open = '{"index":0,"delta":{';
    const close = '},"logprobs":null,"finish_reason":null}';
    let role = '"role":"assistant",';
    let calls = 0;
    let started = false;
    try {
      for await (const part of ai.stream(request)) {
        if (!started) {
          started = true;
          res.head(200, simulated ? SSE_HEADERS_SIM : SSE_HEADERS);
        }
        let chunk: string;
        if (part.type === 'text') {
          chunk = head + open + role + '"content":' + JSON.stringify(part.text) + close + tail;
        } else if (part.type === 'tool-call') {
          const call = JSON.stringify({ index: calls++, id: part.id, type: 'function', function: { name: part.name, arguments: part.argumentsText } });
          chunk = `${head}${open}${role === '' ? '' : `${role}"content":null,`}"tool_calls":[${call}]${close}${tail}`;
        } else {
          const r = part.response;
          const first = role === '' ? '' : '"role":"assistant","content":""';
          chunk = `${head}${open}${first}},"logprobs":null,"finish_reason":${JSON.stringify(r.finishReason || 'stop')}}${tail}`;
          if (includeUsage) chunk += `${head}],"usage":${usageJson(r.usage)}}\n\n`;
          chunk += 'data: [DONE]\n\n';
        }
        role = '';
        // false: the client is gone. Leaving the loop aborts the upstream stream.
        if (!res.write(chunk)) return res.end();
      }
    } catch (err) {
      if (!started) return sendError(req, res, err, request.model);
      if (!req.signal.aborted && !res.finished) {
        const f = toOpenAIFailure(err, multiTarget(request.model));
        res.write(`data: ${JSON.stringify(f.body)}\n\n`);
      }
      return res.end();
    }
    if (!started) return sendError(req, res, new MyelinError('ERR_AI_STREAM_TRUNCATED', 'the stream ended before any part'), request.model);
    res.end();
  };

  const models: RouteHandler = (_req, res) => sendJson(res, 200, modelList);

  const model: RouteHandler = (req, res) => {
    let id: string;
    try {
      id = decodeURIComponent(req.path.startsWith(MODELS_PREFIX) ? req.path.slice(MODELS_PREFIX.length) : '');
    } catch {
      id = '';
    }
    const m = listed.get(id);
    if (m) return sendJson(res, 200, Buffer.from(JSON.stringify(m)));
    sendError(req, res, modelNotFound(id));
  };

  const embeddings: RouteHandler = async (req, res) => {
    let model: string | undefined;
    try {
      const p = parseEmbeddings(req.body);
      model = p.request.model;
      checkModel(model);
      const request = p.request;
      request.signal = req.signal;
      const headers = forwarded(fwd, req.headers);
      if (headers) request.headers = headers;
      const r = await ai.embed(request);
      const data = r.vectors.map((v, index) => ({ object: 'embedding', index, embedding: p.base64 ? base64Floats(v) : v }));
      const tokens = r.usage.inputTokens;
      const body = { object: 'list', data, model: request.model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
      sendJson(res, 200, Buffer.from(JSON.stringify(body)), { 'x-myelin-target': r.target });
    } catch (err) {
      sendError(req, res, err, model);
    }
  };

  return { chatCompletions, models, model, embeddings };
}

/** OpenAI's base64 form: the vector as little-endian float32 bytes. */
function base64Floats(v: number[]): string {
  const f = Float32Array.from(v);
  const b = Buffer.from(f.buffer, f.byteOffset, f.byteLength);
  // Float32Array uses the platform's byte order; the wire form is little-endian.
  if (!LITTLE_ENDIAN) b.swap32();
  return b.toString('base64');
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
