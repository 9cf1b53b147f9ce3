// How the OpenAI-compatible routes report a failure: every error becomes OpenAI's shape
// `{"error":{"message","type","param","code"}}` with the status an OpenAI client (the
// official SDKs, LangChain, curl scripts) reads correctly:
//
//   what happened                                  status  type                   code
//   bad JSON, bad field (ours or the AIClient's)   400     invalid_request_error  null, or the field's problem
//   unknown model (no alias, no such provider)     404     invalid_request_error  model_not_found
//   upstream refused the request as bad (4xx)      same    invalid_request_error  the upstream's code, if any
//   upstream 403                                   403     permission_error       permission_denied
//   upstream 401 (the gateway's key was refused)   502     upstream_error         upstream_authentication_failed
//   rate limited (upstream 429 after retries,
//     or a local limit past the deadline)          429     rate_limit_error       rate_limit_exceeded (+ retry-after)
//   quota or spend exhausted                       429     insufficient_quota     insufficient_quota
//   every breaker open                             503     server_error           circuit_open
//   an alias whose targets all failed              503     server_error           all_targets_failed
//   upstream 503 or 529 (overloaded)               503     server_error           upstream_unavailable
//   timeout (upstream, first token, idle, deadline) 504    server_error           upstream_timeout
//   any other upstream failure (5xx, connection,
//     truncated stream, malformed answer)          502     upstream_error         upstream_error
//   the AIClient is closed (shutting down)         503     server_error           service_unavailable
//   anything else (a bug)                          500     server_error           internal_error, no details
//
// An upstream 401 is not passed on as 401: the caller's own credentials (the gateway's
// bearer token) were fine, and an SDK that sees 401 tells its user to fix the wrong key.
// Failures that no retry can fix carry `x-should-retry: false`, which the official SDKs
// obey; a known wait goes out as `retry-after` (whole seconds, rounded up) and
// `retry-after-ms`.
//
// Messages: the AIClient's messages name the provider and the path only, and upstream
// text in them has been through its Redactor (lib/ai/client/redactor.ts), so no key
// reaches them. As a second guard, any URL in a message loses its credentials and query
// here, and the error's `cause` is never serialised.
import { MyelinError } from '../errors.js';
import type { AIError } from '../ai/client/failure.js';

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface OpenAIFailure {
  status: number;
  headers: Record<string, string>;
  body: OpenAIErrorBody;
}

/** Fields a route sets on the MyelinError it throws for a bad request. */
interface RouteErrorFields {
  /** The request field at fault, OpenAI-style ('messages[2].content'). */
  param?: string;
  /** When the answer is not a plain 400 (404 model_not_found). */
  httpStatus?: number;
  openaiCode?: string;
}

/** A 400 naming the request field at fault. */
export function badRequest(message: string, param: string | null, openaiCode?: string): MyelinError {
  return new MyelinError('ERR_INVALID_ARGUMENT', message, { param: param ?? undefined, openaiCode });
}

const MODEL_SHOWN = 200;

export function modelNotFound(model: string): MyelinError {
  const shown = model.length > MODEL_SHOWN ? `${model.slice(0, MODEL_SHOWN)}...` : model;
  return new MyelinError('ERR_INVALID_ARGUMENT', `The model \`${shown}\` does not exist: it is neither a configured alias nor 'provider/model' of a configured provider (GET /v1/models lists them)`, {
    param: 'model',
    httpStatus: 404,
    openaiCode: 'model_not_found',
  });
}

const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>]+/gi;

/** Drops userinfo, query and fragment from any URL in `text` (a key can sit in either). */
function scrubUrls(text: string): string {
  return text.replace(URL_IN_TEXT, (raw) => {
    try {
      const u = new URL(raw);
      return `${u.protocol}//${u.host}${u.pathname}`;
    } catch {
      return '[url]';
    }
  });
}

function failure(status: number, type: string, code: string | null, message: string, param: string | null = null, headers: Record<string, string> = {}): OpenAIFailure {
  return { status, headers, body: { error: { message: scrubUrls(message), type, param, code } } };
}

const NO_RETRY = { 'x-should-retry': 'false' };

/**
 * The OpenAI-shaped answer for `err`. `multiTarget`: the request's model is an alias
 * with more than one target, so a server-side failure means all of them failed.
 */
export function toOpenAIFailure(err: unknown, multiTarget = false): OpenAIFailure {
  if (!(err instanceof MyelinError)) return failure(500, 'server_error', 'internal_error', 'internal error');
  const e = err as AIError & RouteErrorFields;
  const param = typeof e.param === 'string' ? e.param : null;
  switch (e.code) {
    case 'ERR_INVALID_ARGUMENT':
      return failure(e.httpStatus ?? 400, 'invalid_request_error', e.openaiCode ?? null, e.message, param, NO_RETRY);
    case 'ERR_AI_RATE_LIMITED': {
      const headers: Record<string, string> = {};
      const ms = e.retryAfterMs;
      if (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0) {
        headers['retry-after'] = String(Math.ceil(ms / 1000));
        headers['retry-after-ms'] = String(Math.ceil(ms));
      }
      return failure(429, 'rate_limit_error', 'rate_limit_exceeded', e.message, null, headers);
    }
    case 'ERR_AI_QUOTA':
      return failure(429, 'insufficient_quota', 'insufficient_quota', e.message, null, NO_RETRY);
    case 'ERR_AI_CIRCUIT_OPEN':
      return failure(503, 'server_error', 'circuit_open', e.message);
    case 'ERR_AI_TIMEOUT':
      return failure(504, 'server_error', 'upstream_timeout', e.message);
    case 'ERR_AI_CLOSED':
      return failure(503, 'server_error', 'service_unavailable', 'the AI client is closed (the gateway is shutting down)');
    case 'ERR_AI_UPSTREAM':
    case 'ERR_AI_STREAM_TRUNCATED':
      return upstreamFailure(e, multiTarget);
    case 'ERR_ABORTED':
      // Reached only when something other than the client's disconnect aborted the call
      // (a disconnected client gets no answer at all).
      return failure(502, 'upstream_error', 'upstream_error', e.message);
    default:
      return failure(500, 'server_error', 'internal_error', 'internal error');
  }
}

function upstreamFailure(e: AIError & { upstreamCode?: string }, multiTarget: boolean): OpenAIFailure {
  const status = e.status;
  const code = typeof e.upstreamCode === 'string' && e.upstreamCode !== '' ? e.upstreamCode : null;
  if (e.failure === 'auth' && status === 403) return failure(403, 'permission_error', 'permission_denied', e.message, null, NO_RETRY);
  if (e.failure === 'auth') return failure(502, 'upstream_error', 'upstream_authentication_failed', e.message, null, NO_RETRY);
  // The upstream judged the request itself (context too long, bad tool schema): the
  // caller's to fix, with the upstream's status and code.
  if (e.failure === 'client' && typeof status === 'number' && status >= 400 && status < 500 && status !== 409) {
    return failure(status, 'invalid_request_error', code ?? (status === 404 ? 'model_not_found' : null), e.message, null, NO_RETRY);
  }
  if (e.failure === 'timeout') return failure(504, 'server_error', 'upstream_timeout', e.message);
  const serverSide = e.failure === 'server' || e.failure === 'connection' || e.failure === 'truncated' || e.code === 'ERR_AI_STREAM_TRUNCATED';
  if (serverSide && multiTarget) return failure(503, 'server_error', 'all_targets_failed', e.message);
  if (status === 503 || status === 529) return failure(503, 'server_error', 'upstream_unavailable', e.message);
  return failure(502, 'upstream_error', 'upstream_error', e.message);
}
