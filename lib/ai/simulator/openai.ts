// The OpenAI wire format (and every OpenAI-compatible server): chat completions with
// and without SSE streaming, embeddings, models. Shapes follow shared/AI-WIRE.md.
import { randomBytes } from 'node:crypto';
import { type Dialect, type ErrorKind, type Exchange, type SimHooks, type Step, paceOf, positiveInt, seedOf, tokensOf } from './exchange.js';
import { interleave, makePlan, type Plan, type ToolSpec } from './plan.js';
import { contentText, countWords, embedding } from './text.js';

const ERRORS: Record<ErrorKind, { status: number; type: string; code: string | number | null }> = {
  invalid_request: { status: 400, type: 'invalid_request_error', code: null },
  auth: { status: 401, type: 'invalid_request_error', code: 'invalid_api_key' },
  not_found: { status: 404, type: 'invalid_request_error', code: 'unknown_url' },
  method: { status: 405, type: 'invalid_request_error', code: 'method_not_allowed' },
  too_large: { status: 413, type: 'invalid_request_error', code: 'request_too_large' },
  // OpenAI's own 429 says type "requests" (or "tokens") with code rate_limit_exceeded.
  rate_limit: { status: 429, type: 'requests', code: 'rate_limit_exceeded' },
  quota: { status: 429, type: 'insufficient_quota', code: 'insufficient_quota' },
  billing: { status: 429, type: 'insufficient_quota', code: 'insufficient_quota' },
  server: { status: 500, type: 'server_error', code: null },
  bad_gateway: { status: 502, type: 'server_error', code: null },
  unavailable: { status: 503, type: 'server_error', code: null },
  overloaded: { status: 503, type: 'server_error', code: 'overloaded' },
  // llama.cpp while its model loads: a numeric code, as that server sends it.
  loading: { status: 503, type: 'unavailable_error', code: 503 },
};

export const openaiDialect: Dialect = {
  provider: 'openai',
  streamType: 'text/event-stream; charset=utf-8',
  error(kind, message, _requestId, param) {
    const e = ERRORS[kind];
    return { status: e.status, body: { error: { message, type: e.type, param: param ?? null, code: e.code } } };
  },
  midstreamError() {
    return `data: ${JSON.stringify({
      error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null },
    })}\n\n`;
  },
  keepAlive() {
    return ': keep-alive\n\n';
  },
};

function tools(body: Record<string, unknown>): ToolSpec[] | 'bad' {
  if (body.tools === undefined || body.tools === null) return [];
  if (!Array.isArray(body.tools)) return 'bad';
  const out: ToolSpec[] = [];
  for (const t of body.tools) {
    const fn = (t as { function?: { name?: unknown; parameters?: unknown } } | null)?.function;
    if (!fn || typeof fn.name !== 'string' || fn.name === '') return 'bad';
    out.push({ name: fn.name, parameters: fn.parameters });
  }
  return out;
}

function id(prefix: string): string {
  return prefix + randomBytes(12).toString('hex');
}

export async function chatCompletions(ex: Exchange, sim: SimHooks): Promise<void> {
  const b = ex.body;
  if (typeof b.model !== 'string' || b.model === '') return ex.fail('invalid_request', 'you must provide a model parameter', 'model');
  if (!Array.isArray(b.messages) || b.messages.length === 0) {
    return ex.fail('invalid_request', "'messages' must be a non-empty array", 'messages');
  }
  for (const m of b.messages) {
    if (!m || typeof m !== 'object' || typeof (m as { role?: unknown }).role !== 'string') {
      return ex.fail('invalid_request', 'each message needs a string role', 'messages');
    }
  }
  const maxTokens = positiveInt(b.max_completion_tokens ?? b.max_tokens);
  if (maxTokens === 'bad') return ex.fail('invalid_request', 'max_tokens must be a positive integer', 'max_tokens');
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') {
    return ex.fail('invalid_request', 'stream must be a boolean', 'stream');
  }
  const toolSpecs = tools(b);
  if (toolSpecs === 'bad') return ex.fail('invalid_request', 'tools must be an array of {type: "function", function: {name}}', 'tools');
  if (await sim.gate(ex)) return;

  const messages = b.messages as Array<{ role: string; content?: unknown }>;
  const inputTokens = Math.max(1, messages.reduce((n, m) => n + countWords(contentText(m.content)), 0));
  const last = messages[messages.length - 1];
  const plan = makePlan({
    key: JSON.stringify([b.model, messages]),
    seed: seedOf(ex, sim.settings),
    inputTokens,
    tokens: tokensOf(ex, sim.settings),
    maxTokens,
    tools: toolSpecs,
    callTools: toolSpecs.length > 0 && b.tool_choice !== 'none' && last.role !== 'tool',
    toolCalls: ex.controls.toolCalls ?? 1,
    idPrefix: 'call_',
  });
  sim.countTokens(ex, plan.inputTokens, plan.outputTokens);
  const model = b.model;
  const created = Math.floor(Date.now() / 1000);
  const completionId = id('chatcmpl-');
  const usage = {
    prompt_tokens: plan.inputTokens,
    completion_tokens: plan.outputTokens,
    total_tokens: plan.inputTokens + plan.outputTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };

  if (b.stream !== true) {
    const message: Record<string, unknown> = {
      role: 'assistant',
      content: plan.calls.length > 0 ? null : plan.text.join(''),
      refusal: null,
      annotations: [],
    };
    if (plan.calls.length > 0) {
      message.tool_calls = plan.calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.json } }));
    }
    return ex.sendJson(200, {
      id: completionId,
      object: 'chat.completion',
      created,
      model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: plan.finish }],
      usage,
      service_tier: 'default',
      system_fingerprint: 'fp_myelin_sim',
    });
  }

  const includeUsage = (b.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
  return ex.stream(chatSteps(plan, { id: completionId, created, model, includeUsage, usage }), paceOf(ex, sim.settings));
}

function chatSteps(
  plan: Plan,
  o: { id: string; created: number; model: string; includeUsage: boolean; usage: unknown },
): Step[] {
  const frame = (delta: unknown, finish: string | null = null): string => {
    const chunk: Record<string, unknown> = {
      id: o.id,
      object: 'chat.completion.chunk',
      created: o.created,
      model: o.model,
      service_tier: 'default',
      system_fingerprint: 'fp_myelin_sim',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    };
    if (o.includeUsage) chunk.usage = null;
    // An unknown field, as OpenAI now sends: clients must ignore it.
    chunk.obfuscation = 'sim';
    return `data: ${JSON.stringify(chunk)}\n\n`;
  };
  const steps: Step[] = [];
  if (plan.calls.length === 0) {
    steps.push({ frame: frame({ role: 'assistant', content: '', refusal: null }) });
    for (const t of plan.text) steps.push({ frame: frame({ content: t }), unit: true });
  } else {
    steps.push({ frame: frame({ role: 'assistant', content: null, refusal: null }) });
    const started = new Set<number>();
    for (const [i, f] of interleave(plan.calls)) {
      const c = plan.calls[i];
      if (!started.has(i)) {
        started.add(i);
        steps.push({ frame: frame({ tool_calls: [{ index: i, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] }) });
      }
      steps.push({ frame: frame({ tool_calls: [{ index: i, function: { arguments: c.fragments[f] } }] }), unit: true });
    }
  }
  steps.push({ frame: frame({}, plan.finish), tail: true });
  if (o.includeUsage) {
    steps.push({
      frame: `data: ${JSON.stringify({
        id: o.id,
        object: 'chat.completion.chunk',
        created: o.created,
        model: o.model,
        service_tier: 'default',
        system_fingerprint: 'fp_myelin_sim',
        choices: [],
        usage: o.usage,
      })}\n\n`,
    });
  }
  steps.push({ frame: 'data: [DONE]\n\n' });
  return steps;
}

type EmbedInput = string[] | 'bad';

function embedInputs(v: unknown): EmbedInput {
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || v.length === 0 || v.length > 2048) return 'bad';
  if (v.every((x) => typeof x === 'string')) return v as string[];
  if (v.every((x) => typeof x === 'number' && Number.isInteger(x))) return [v.join(' ')];
  if (v.every((x) => Array.isArray(x) && x.length > 0 && x.every((y) => typeof y === 'number' && Number.isInteger(y)))) {
    return (v as number[][]).map((x) => x.join(' '));
  }
  return 'bad';
}

export async function embeddings(ex: Exchange, sim: SimHooks): Promise<void> {
  const b = ex.body;
  if (typeof b.model !== 'string' || b.model === '') return ex.fail('invalid_request', 'you must provide a model parameter', 'model');
  const inputs = embedInputs(b.input);
  if (inputs === 'bad') {
    return ex.fail('invalid_request', "'input' must be a string, an array of strings or an array of token arrays", 'input');
  }
  const format = b.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64') {
    return ex.fail('invalid_request', "encoding_format must be 'float' or 'base64'", 'encoding_format');
  }
  const dims = positiveInt(b.dimensions);
  if (dims === 'bad' || (dims !== undefined && dims > 4096)) {
    return ex.fail('invalid_request', 'dimensions must be an integer in [1, 4096]', 'dimensions');
  }
  if (await sim.gate(ex)) return;
  const size = dims ?? sim.settings.embeddingDims;
  const seed = seedOf(ex, sim.settings);
  const tokens = inputs.reduce((n, s) => n + Math.max(1, countWords(s)), 0);
  sim.countTokens(ex, tokens, 0);
  const data = inputs.map((text, index) => {
    const v = embedding(text, size, seed);
    return {
      object: 'embedding',
      index,
      embedding: format === 'base64' ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v),
    };
  });
  return ex.sendJson(200, { object: 'list', data, model: b.model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
}

export async function listModels(ex: Exchange, sim: SimHooks): Promise<void> {
  if (await sim.gate(ex)) return;
  const created = 1_700_000_000;
  return ex.sendJson(200, {
    object: 'list',
    data: sim.settings.models.map((m) => ({ id: m, object: 'model', created, owned_by: 'myelin-sim' })),
  });
}

export async function getModel(ex: Exchange, sim: SimHooks, modelId: string): Promise<void> {
  if (await sim.gate(ex)) return;
  if (!sim.settings.models.includes(modelId)) return ex.fail('not_found', 'The model does not exist', 'model');
  return ex.sendJson(200, { id: modelId, object: 'model', created: 1_700_000_000, owned_by: 'myelin-sim' });
}
