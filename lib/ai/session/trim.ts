// Fits a conversation into a context budget by dropping its oldest turns.
//
// The droppable unit is a turn, not a message: an assistant message that calls tools
// travels with the tool results that answer it (OpenAI role 'tool', or Anthropic
// 'tool_result' blocks in the next user message), because a provider rejects a call
// without its result and a result without its call. System messages stay (keepSystem);
// the newest turn always stays, even when it alone is over budget.
import { invalidArgument } from '../../errors.js';
import { countMessage, MESSAGE_OVERHEAD, type SessionMessage } from './token-count.js';

export interface TrimOptions {
  maxContextTokens: number;
  model: string;
  /** Keep every system message. Default true. */
  keepSystem?: boolean;
  /** Tokens to leave free for the reply (e.g. maxTokens). Default 0. */
  reserveTokens?: number;
  /**
   * After a cut, also drop turns until the first kept non-system message is a user
   * message, which Anthropic requires. Default true. An uncut history is left as it is.
   */
  startWithUser?: boolean;
}

export interface TrimResult<M extends SessionMessage = SessionMessage> {
  messages: M[];
  /** Prompt tokens of `messages` (reply priming included). */
  tokens: number;
  /** Messages dropped. */
  dropped: number;
}

function hasToolCalls(m: SessionMessage): boolean {
  const calls = m.toolCalls ?? m.tool_calls;
  if (Array.isArray(calls) && calls.length > 0) return true;
  return Array.isArray(m.content) && m.content.some((p) => (p as { type?: unknown })?.type === 'tool_use');
}

function isToolResult(m: SessionMessage): boolean {
  if (m.role === 'tool' || m.role === 'function') return true;
  return m.role === 'user' && Array.isArray(m.content) && m.content.length > 0 && m.content.every((p) => (p as { type?: unknown })?.type === 'tool_result');
}

/** Drops the oldest non-system turns until the prompt fits `maxContextTokens - reserveTokens`. */
export function trimToBudget<M extends SessionMessage>(messages: readonly M[], options: TrimOptions): TrimResult<M> {
  const { maxContextTokens, model, keepSystem = true, reserveTokens = 0, startWithUser = true } = options;
  if (typeof maxContextTokens !== 'number' || !(maxContextTokens > 0)) {
    throw invalidArgument(`maxContextTokens must be a positive number, got ${String(maxContextTokens)}`);
  }
  if (typeof reserveTokens !== 'number' || !(reserveTokens >= 0)) {
    throw invalidArgument(`reserveTokens must be a number >= 0, got ${String(reserveTokens)}`);
  }
  const budget = maxContextTokens - reserveTokens;

  // Turns of non-system messages, as [start, end) index ranges, oldest first.
  const pinned = new Array<boolean>(messages.length).fill(false);
  const turns: Array<{ start: number; end: number; tokens: number; user: boolean }> = [];
  let total = MESSAGE_OVERHEAD.replyPriming;
  for (let i = 0; i < messages.length; ) {
    const m = messages[i];
    const n = countMessage(m, model);
    total += n;
    if (keepSystem && m.role === 'system') {
      pinned[i++] = true;
      continue;
    }
    const turn = { start: i, end: i + 1, tokens: n, user: m.role === 'user' && !isToolResult(m) };
    i++;
    if (hasToolCalls(m)) {
      while (i < messages.length && isToolResult(messages[i])) {
        const r = countMessage(messages[i], model);
        total += r;
        turn.tokens += r;
        turn.end = ++i;
      }
    }
    turns.push(turn);
  }

  let first = 0; // index into turns of the oldest kept turn
  const last = turns.length - 1;
  const orphanOrAssistantFirst = (): boolean => {
    const t = turns[first];
    const m = messages[t.start];
    return isToolResult(m) || (startWithUser && !t.user);
  };
  // Once something was dropped, also drop what a cut could leave dangling at the front.
  while (first < last && (total > budget || (first > 0 && orphanOrAssistantFirst()))) total -= turns[first++].tokens;
  if (first === 0) return { messages: messages.slice(), tokens: total, dropped: 0 };

  const keepFrom = turns[first].start;
  const out: M[] = [];
  for (let i = 0; i < messages.length; i++) if (pinned[i] || i >= keepFrom) out.push(messages[i]);
  return { messages: out, tokens: total, dropped: messages.length - out.length };
}
