// OpenTelemetry GenAI spans through @opentelemetry/api: one CLIENT span per call
// (`chat {model}`, `embed {model}`; a stream is a chat), with the GenAI semantic
// conventions' attributes. Without a registered TracerProvider the API hands out
// non-recording spans and nothing below sets an attribute (isRecording() is checked),
// so the cost is one getTracer() and one startSpan() per call.
//
// What never goes in: keys, prompts, completions, tool arguments, upstream error
// messages (they may quote the prompt). A failure is `error.type` = the MyelinError
// code and status ERROR, with no message beyond the code.
import { type Attributes, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Target } from './model-router.js';
import type { ChatRequest, ChatResponse, EmbedRequest, EmbedResponse } from './types.js';

const TRACER = 'myelin';

export type Operation = 'chat' | 'embed';

/** gen_ai.operation.name: the conventions' well-known values. */
const OPERATION: Record<Operation, string> = { chat: 'chat', embed: 'embeddings' };

/** Starts the call's span; `first` is the target the router picked first. */
export function startSpan(op: Operation, req: ChatRequest | EmbedRequest, first: Target | undefined): Span {
  const span = trace.getTracer(TRACER).startSpan(`${op} ${req.model}`, { kind: SpanKind.CLIENT });
  if (!span.isRecording()) return span;
  const a: Attributes = {
    'gen_ai.operation.name': OPERATION[op],
    'gen_ai.request.model': first?.model ?? req.model,
    'myelin.ai.model': req.model,
  };
  if (first) a['gen_ai.system'] = first.provider.kind;
  if (op === 'chat') {
    const c = req as ChatRequest;
    if (c.maxTokens !== undefined) a['gen_ai.request.max_tokens'] = c.maxTokens;
    if (c.temperature !== undefined) a['gen_ai.request.temperature'] = c.temperature;
    if (c.topP !== undefined) a['gen_ai.request.top_p'] = c.topP;
    if (c.seed !== undefined) a['gen_ai.request.seed'] = c.seed;
  } else {
    const e = req as EmbedRequest;
    if (e.dimensions !== undefined) a['gen_ai.embeddings.dimension.count'] = e.dimensions;
  }
  span.setAttributes(a);
  return span;
}

export function endChat(span: Span, res: ChatResponse, kind: string | undefined): void {
  if (span.isRecording()) {
    const a: Attributes = {
      'gen_ai.response.model': res.model,
      'gen_ai.response.id': res.id,
      'gen_ai.usage.input_tokens': res.usage.inputTokens,
      'gen_ai.usage.output_tokens': res.usage.outputTokens,
      'gen_ai.response.finish_reasons': [res.finishReason],
      'myelin.ai.target': res.target,
      'myelin.ai.attempts': res.attempts,
      'myelin.ai.cached': res.cached,
    };
    if (kind) a['gen_ai.system'] = kind;
    span.setAttributes(a);
  }
  span.end();
}

export function endEmbed(span: Span, res: EmbedResponse, kind: string | undefined): void {
  if (span.isRecording()) {
    const a: Attributes = {
      'gen_ai.response.model': res.model,
      'gen_ai.usage.input_tokens': res.usage.inputTokens,
      'myelin.ai.target': res.target,
      'myelin.ai.attempts': res.attempts,
      'myelin.ai.cached': res.cached === true,
    };
    if (kind) a['gen_ai.system'] = kind;
    span.setAttributes(a);
  }
  span.end();
}

export function endError(span: Span, err: unknown): void {
  if (span.isRecording()) {
    const e = err as { code?: unknown; attempts?: unknown; target?: unknown } | null;
    const type = typeof e?.code === 'string' ? e.code : '_OTHER';
    const a: Attributes = { 'error.type': type };
    if (typeof e?.attempts === 'number') a['myelin.ai.attempts'] = e.attempts;
    if (typeof e?.target === 'string') a['myelin.ai.target'] = e.target;
    span.setAttributes(a);
    span.setStatus({ code: SpanStatusCode.ERROR, message: type });
  }
  span.end();
}

/** A stream the consumer stopped reading: not an error; marked as such. */
export function endStopped(span: Span): void {
  if (span.isRecording()) span.setAttribute('myelin.ai.stream.stopped', true);
  span.end();
}
