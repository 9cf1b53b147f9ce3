// The Anthropic Messages wire format: `event: <name>\ndata: <json>\n\n` frames in the
// order message_start, content_block_start, ping, content_block_delta...,
// content_block_stop, message_delta (cumulative output_tokens), message_stop.
import { randomBytes } from 'node:crypto';
import { type Dialect, type ErrorKind, type Exchange, type SimHooks, type Step, paceOf, positiveInt, seedOf, tokensOf } from './exchange.js';
import { makePlan, type Plan, type ToolSpec } from './plan.js';
import { contentText, countWords } from './text.js';

const ERRORS: Record<ErrorKind, { status: number; type: string }> = {
  invalid_request: { status: 400, type: 'invalid_request_error' },
  auth: { status: 401, type: 'authentication_error' },
  not_found: { status: 404, type: 'not_found_error' },
  method: { status: 405, type: 'invalid_request_error' },
  too_large: { status: 413, type: 'request_too_large' },
  rate_limit: { status: 429, type: 'rate_limit_error' },
  quota: { status: 429, type: 'rate_limit_error' },
  billing: { status: 402, type: 'billing_error' },
  server: { status: 500, type: 'api_error' },
  bad_gateway: { status: 502, type: 'api_error' },
  unavailable: { status: 503, type: 'api_error' },
  overloaded: { status: 529, type: 'overloaded_error' },
  loading: { status: 503, type: 'api_error' },
};

export const anthropicDialect: Dialect = {
  provider: 'anthropic',
  streamType: 'text/event-stream; charset=utf-8',
  error(kind, message, requestId) {
    const e = ERRORS[kind];
    const error: Record<string, unknown> = { type: e.type, message };
    // A spend limit is a 429 that must never be retried; the code tells it apart.
    if (kind === 'quota') error.details = { error_code: 'enforced_spend_limit_reached' };
    return { status: e.status, body: { type: 'error', error, request_id: requestId } };
  },
  midstreamError() {
    return sse('error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
  },
  keepAlive() {
    return sse('ping', { type: 'ping' });
  },
};

function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export function anthropicRequestId(): string {
  return `req_${randomBytes(12).toString('hex')}`;
}

function tools(body: Record<string, unknown>): ToolSpec[] | 'bad' {
  if (body.tools === undefined || body.tools === null) return [];
  if (!Array.isArray(body.tools)) return 'bad';
  const out: ToolSpec[] = [];
  for (const t of body.tools) {
    const o = t as { name?: unknown; input_schema?: unknown } | null;
    if (!o || typeof o.name !== 'string' || o.name === '') return 'bad';
    out.push({ name: o.name, parameters: o.input_schema });
  }
  return out;
}

function endsWithToolResult(messages: Array<{ role: string; content?: unknown }>): boolean {
  const last = messages[messages.length - 1];
  return (
    last.role === 'user' &&
    Array.isArray(last.content) &&
    last.content.some((p) => p && typeof p === 'object' && (p as { type?: unknown }).type === 'tool_result')
  );
}

function validate(ex: Exchange, countOnly: boolean): string | undefined {
  const b = ex.body;
  if (typeof b.model !== 'string' || b.model === '') return 'model: Field required';
  if (!countOnly) {
    const max = positiveInt(b.max_tokens);
    if (max === undefined) return 'max_tokens: Field required';
    if (max === 'bad') return 'max_tokens: must be a positive integer';
  }
  if (!Array.isArray(b.messages) || b.messages.length === 0) return 'messages: must be a non-empty array';
  for (const m of b.messages) {
    const role = (m as { role?: unknown } | null)?.role;
    if (role !== 'user' && role !== 'assistant') return "messages: each role must be 'user' or 'assistant'";
  }
  if (b.system !== undefined && typeof b.system !== 'string' && !Array.isArray(b.system)) {
    return 'system: must be a string or an array of text blocks';
  }
  if (b.stream !== undefined && typeof b.stream !== 'boolean') return 'stream: must be a boolean';
  if (tools(b) === 'bad') return 'tools: each tool needs a name';
  return undefined;
}

function inputTokens(b: Record<string, unknown>): number {
  const messages = b.messages as Array<{ content?: unknown }>;
  const n = messages.reduce((acc, m) => acc + countWords(contentText(m.content)), 0) + countWords(contentText(b.system));
  return Math.max(1, n);
}

export async function messages(ex: Exchange, sim: SimHooks): Promise<void> {
  const problem = validate(ex, false);
  if (problem) return ex.fail('invalid_request', problem);
  if (await sim.gate(ex)) return;
  const b = ex.body;
  const msgs = b.messages as Array<{ role: string; content?: unknown }>;
  const toolSpecs = tools(b) as ToolSpec[];
  const choice = (b.tool_choice as { type?: unknown } | undefined)?.type;
  const plan = makePlan({
    key: JSON.stringify([b.model, b.system ?? null, msgs]),
    seed: seedOf(ex, sim.settings),
    inputTokens: inputTokens(b),
    tokens: tokensOf(ex, sim.settings),
    maxTokens: b.max_tokens as number,
    tools: toolSpecs,
    callTools: toolSpecs.length > 0 && choice !== 'none' && !endsWithToolResult(msgs),
    toolCalls: ex.controls.toolCalls ?? 1,
    idPrefix: 'toolu_',
  });
  sim.countTokens(ex, plan.inputTokens, plan.outputTokens);
  const id = `msg_${randomBytes(12).toString('hex')}`;
  const model = b.model as string;
  const stop = plan.finish === 'tool_calls' ? 'tool_use' : plan.finish === 'length' ? 'max_tokens' : 'end_turn';

  if (b.stream !== true) {
    const content: unknown[] = [];
    if (plan.text.length > 0) content.push({ type: 'text', text: plan.text.join('') });
    for (const c of plan.calls) content.push({ type: 'tool_use', id: c.id, name: c.name, input: c.args });
    return ex.sendJson(200, {
      id,
      type: 'message',
      role: 'assistant',
      model,
      content,
      stop_reason: stop,
      stop_sequence: null,
      usage: {
        input_tokens: plan.inputTokens,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        output_tokens: plan.outputTokens,
        service_tier: 'standard',
      },
    });
  }
  return ex.stream(messageSteps(plan, id, model, stop), paceOf(ex, sim.settings));
}

function messageSteps(plan: Plan, id: string, model: string, stop: string): Step[] {
  const steps: Step[] = [];
  steps.push({
    frame: sse('message_start', {
      type: 'message_start',
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        // Anthropic reports a small placeholder here; message_delta carries the real,
        // cumulative count.
        usage: { input_tokens: plan.inputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1, service_tier: 'standard' },
      },
    }),
  });
  let index = 0;
  const ping = { frame: sse('ping', { type: 'ping' }) };
  if (plan.text.length > 0) {
    steps.push({ frame: sse('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } }) });
    steps.push(ping);
    for (const t of plan.text) {
      steps.push({ frame: sse('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: t } }), unit: true });
    }
    steps.push({ frame: sse('content_block_stop', { type: 'content_block_stop', index }) });
    index++;
  }
  for (const c of plan.calls) {
    steps.push({
      frame: sse('content_block_start', {
        type: 'content_block_start',
        index,
        content_block: { type: 'tool_use', id: c.id, name: c.name, input: {} },
      }),
    });
    if (index === 0) steps.push(ping);
    // The first input_json_delta is an empty string, as Anthropic sends it.
    steps.push({ frame: sse('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: '' } }) });
    for (const f of c.fragments) {
      steps.push({
        frame: sse('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: f } }),
        unit: true,
      });
    }
    steps.push({ frame: sse('content_block_stop', { type: 'content_block_stop', index }) });
    index++;
  }
  if (index === 0) steps.push(ping);
  steps.push({
    frame: sse('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: stop, stop_sequence: null },
      usage: { output_tokens: plan.outputTokens },
    }),
    tail: true,
  });
  steps.push({ frame: sse('message_stop', { type: 'message_stop' }) });
  return steps;
}

export async function countTokens(ex: Exchange, sim: SimHooks): Promise<void> {
  const problem = validate(ex, true);
  if (problem) return ex.fail('invalid_request', problem);
  if (await sim.gate(ex)) return;
  return ex.sendJson(200, { input_tokens: inputTokens(ex.body) });
}

export async function listModels(ex: Exchange, sim: SimHooks): Promise<void> {
  if (await sim.gate(ex)) return;
  const data = sim.settings.models.map((m) => ({ type: 'model', id: m, display_name: m, created_at: '2025-01-01T00:00:00Z' }));
  return ex.sendJson(200, { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null });
}
