// Ollama's native API: /api/chat streams NDJSON by default (one JSON object a line, no
// [DONE]; the last line has done: true, durations in nanoseconds and the counts),
// tool calls arrive whole in one chunk with arguments as an object, errors are
// {"error": "..."}.
import { type Dialect, type ErrorKind, type Exchange, type SimHooks, type Step, paceOf, positiveInt, seedOf, tokensOf } from './exchange.js';
import { makePlan, type Plan, type ToolSpec } from './plan.js';
import { contentText, countWords, embedding } from './text.js';

const STATUS: Record<ErrorKind, number> = {
  invalid_request: 400,
  auth: 401,
  not_found: 404,
  method: 405,
  too_large: 413,
  rate_limit: 429,
  quota: 429,
  billing: 429,
  server: 500,
  bad_gateway: 502,
  unavailable: 503,
  overloaded: 503,
  loading: 503,
};

export const ollamaDialect: Dialect = {
  provider: 'ollama',
  streamType: 'application/x-ndjson',
  error(kind, message) {
    return { status: STATUS[kind], body: { error: message } };
  },
  midstreamError() {
    return `${JSON.stringify({ error: 'an error was encountered while running the model: unexpected EOF' })}\n`;
  },
  keepAlive() {
    return undefined;
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

function ns(from: bigint, to: bigint = process.hrtime.bigint()): number {
  const d = Number(to - from);
  return d > 0 ? d : 1;
}

export async function chat(ex: Exchange, sim: SimHooks): Promise<void> {
  const b = ex.body;
  if (typeof b.model !== 'string' || b.model === '') return ex.fail('invalid_request', 'model is required');
  if (b.messages !== undefined && b.messages !== null && !Array.isArray(b.messages)) {
    return ex.fail('invalid_request', 'messages must be an array');
  }
  const msgs = (b.messages ?? []) as Array<{ role?: unknown; content?: unknown }>;
  for (const m of msgs) {
    if (!m || typeof m !== 'object' || typeof m.role !== 'string') return ex.fail('invalid_request', 'each message needs a string role');
  }
  const options = (b.options ?? {}) as Record<string, unknown>;
  const numPredict = options.num_predict;
  // num_predict <= 0 means "no limit" in Ollama.
  const maxTokens = typeof numPredict === 'number' && numPredict > 0 ? positiveInt(numPredict) : undefined;
  if (maxTokens === 'bad') return ex.fail('invalid_request', 'options.num_predict must be an integer');
  const toolSpecs = tools(b);
  if (toolSpecs === 'bad') return ex.fail('invalid_request', 'tools must be an array of {type: "function", function: {name}}');
  if (await sim.gate(ex)) return;
  const model = b.model;
  const stream = b.stream !== false;

  if (msgs.length === 0) {
    // An empty conversation loads the model and says so.
    const load = { model, created_at: new Date().toISOString(), message: { role: 'assistant', content: '' }, done_reason: 'load', done: true };
    return stream ? ex.stream([{ frame: `${JSON.stringify(load)}\n`, tail: true }], 0) : ex.sendJson(200, load);
  }
  const last = msgs[msgs.length - 1];
  const plan = makePlan({
    key: JSON.stringify([model, msgs]),
    seed: seedOf(ex, sim.settings),
    inputTokens: Math.max(1, msgs.reduce((n, m) => n + countWords(contentText(m.content)), 0)),
    tokens: tokensOf(ex, sim.settings),
    maxTokens,
    tools: toolSpecs,
    callTools: toolSpecs.length > 0 && last.role !== 'tool',
    toolCalls: ex.controls.toolCalls ?? 1,
    idPrefix: 'call_',
  });
  sim.countTokens(ex, plan.inputTokens, plan.outputTokens);
  const doneReason = plan.finish === 'length' ? 'length' : 'stop';
  const toolCalls = plan.calls.map((c) => ({ function: { name: c.name, arguments: c.args } }));
  const final = (content: string, withCalls: boolean) => {
    const now = process.hrtime.bigint();
    const first = ex.firstContentNs || now;
    const message: Record<string, unknown> = { role: 'assistant', content };
    if (withCalls && toolCalls.length > 0) message.tool_calls = toolCalls;
    return {
      model,
      created_at: new Date().toISOString(),
      message,
      done_reason: doneReason,
      done: true,
      total_duration: ns(ex.startedNs, now),
      load_duration: 1,
      prompt_eval_count: plan.inputTokens,
      prompt_eval_duration: ns(ex.startedNs, first),
      eval_count: plan.outputTokens,
      eval_duration: ns(first, now),
    };
  };
  if (!stream) return ex.sendJson(200, final(plan.text.join(''), true));
  return ex.stream(chatSteps(plan, model, toolCalls, () => `${JSON.stringify(final('', false))}\n`), paceOf(ex, sim.settings));
}

function chatSteps(plan: Plan, model: string, toolCalls: unknown[], final: () => string): Step[] {
  const line = (message: unknown) => `${JSON.stringify({ model, created_at: new Date().toISOString(), message, done: false })}\n`;
  const steps: Step[] = [];
  for (const t of plan.text) steps.push({ frame: () => line({ role: 'assistant', content: t }), unit: true });
  if (toolCalls.length > 0) steps.push({ frame: () => line({ role: 'assistant', content: '', tool_calls: toolCalls }), unit: true });
  steps.push({ frame: final, tail: true });
  return steps;
}

export async function embed(ex: Exchange, sim: SimHooks): Promise<void> {
  const b = ex.body;
  if (typeof b.model !== 'string' || b.model === '') return ex.fail('invalid_request', 'model is required');
  let inputs: string[];
  if (typeof b.input === 'string') inputs = [b.input];
  else if (Array.isArray(b.input) && b.input.length > 0 && b.input.every((x) => typeof x === 'string')) inputs = b.input as string[];
  else return ex.fail('invalid_request', 'input must be a string or a non-empty array of strings');
  const dims = positiveInt(b.dimensions);
  if (dims === 'bad' || (dims !== undefined && dims > 4096)) return ex.fail('invalid_request', 'dimensions must be an integer in [1, 4096]');
  if (await sim.gate(ex)) return;
  const size = dims ?? sim.settings.embeddingDims;
  const seed = seedOf(ex, sim.settings);
  const tokens = inputs.reduce((n, s) => n + Math.max(1, countWords(s)), 0);
  sim.countTokens(ex, tokens, 0);
  return ex.sendJson(200, {
    model: b.model,
    embeddings: inputs.map((s) => Array.from(embedding(s, size, seed))),
    total_duration: ns(ex.startedNs),
    load_duration: 1,
    prompt_eval_count: tokens,
  });
}

export async function tags(ex: Exchange, sim: SimHooks): Promise<void> {
  if (await sim.gate(ex)) return;
  const models = sim.settings.models.map((m) => {
    const name = m.includes(':') ? m : `${m}:latest`;
    return {
      name,
      model: name,
      modified_at: '2025-01-01T00:00:00Z',
      size: 2_019_393_189,
      digest: 'a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72',
      details: { parent_model: '', format: 'gguf', family: 'llama', families: ['llama'], parameter_size: '3.2B', quantization_level: 'Q4_K_M' },
    };
  });
  return ex.sendJson(200, { models });
}
