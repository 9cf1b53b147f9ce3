// What the simulator answers to one chat request, before any provider shapes it: the
// text pieces or the tool calls, the finish reason and the token counts. The content
// depends only on the seed and the request's `key` (model and conversation), never on
// streaming options, so a streamed and a non-streamed answer to the same request and
// seed carry the same text.
import { fnv1a, fragments, mulberry32, textTokens, toolArguments } from './text.js';

export interface ToolSpec {
  name: string;
  parameters: unknown;
}

export interface ToolCallPlan {
  id: string;
  name: string;
  args: Record<string, unknown>;
  json: string;
  /** The arguments' JSON in streaming fragments; each counts as one output token. */
  fragments: string[];
}

export interface Plan {
  text: string[];
  calls: ToolCallPlan[];
  finish: 'stop' | 'length' | 'tool_calls';
  inputTokens: number;
  /** Equals text.length plus every call's fragments.length. */
  outputTokens: number;
}

export interface PlanInput {
  key: string;
  seed: number;
  inputTokens: number;
  /** Completion length asked for (x-sim-tokens or the simulator's default). */
  tokens: number;
  /** The request's own cap, when it set one. */
  maxTokens?: number;
  tools: ToolSpec[];
  callTools: boolean;
  toolCalls: number;
  idPrefix: string;
}

const ID_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export function makePlan(p: PlanInput): Plan {
  const rand = mulberry32(fnv1a(p.key, (p.seed ^ 0x9e3779b9) >>> 0));
  if (p.callTools && p.tools.length > 0) {
    const calls: ToolCallPlan[] = [];
    let out = 0;
    for (let i = 0; i < p.toolCalls; i++) {
      const tool = p.tools[i % p.tools.length];
      let id = p.idPrefix;
      for (let k = 0; k < 24; k++) id += ID_CHARS[Math.floor(rand() * ID_CHARS.length)];
      const args = toolArguments(rand, tool.parameters);
      const json = JSON.stringify(args);
      const frags = fragments(rand, json);
      out += frags.length;
      calls.push({ id, name: tool.name, args, json, fragments: frags });
    }
    return { text: [], calls, finish: 'tool_calls', inputTokens: p.inputTokens, outputTokens: out };
  }
  let n = p.tokens;
  let finish: Plan['finish'] = 'stop';
  if (p.maxTokens !== undefined && p.maxTokens < n) {
    n = p.maxTokens;
    finish = 'length';
  }
  const text = textTokens(rand, n);
  return { text, calls: [], finish, inputTokens: p.inputTokens, outputTokens: n };
}

/** Tool calls interleaved across indexes, round-robin: [callIndex, fragmentIndex] pairs. */
export function interleave(calls: ToolCallPlan[]): Array<[number, number]> {
  const order: Array<[number, number]> = [];
  const longest = calls.reduce((m, c) => Math.max(m, c.fragments.length), 0);
  for (let f = 0; f < longest; f++) {
    for (let i = 0; i < calls.length; i++) if (f < calls[i].fragments.length) order.push([i, f]);
  }
  return order;
}
