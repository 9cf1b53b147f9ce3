// What a call cost, from its usage and a price table in USD per million tokens.
// Lookup: the exact 'provider/model'; then the model alone against every entry's model
// (provider names are the user's: 'claude/claude-sonnet-4' must still find
// 'anthropic/claude-sonnet-4'); each step also tries dated or suffixed variants by
// the longest entry that is a prefix at a '-' boundary ('gpt-4o-mini-2024-07-18' ->
// 'gpt-4o-mini', never 'gpt-4o'). Unknown -> undefined, never a guessed 0.
// Prices as published by OpenAI and Anthropic; keep the table current or pass your own.

export interface ModelPrice {
  inputPerMTok: number;
  outputPerMTok: number;
  /** Cached (prompt-cache hit) input, when the provider prices it apart. */
  cachedInputPerMTok?: number;
}

export type PriceTable = Readonly<Record<string, ModelPrice>>;

export interface CostUsage {
  inputTokens: number;
  outputTokens: number;
  /** Part of inputTokens served from the provider's prompt cache. */
  cachedInputTokens?: number;
}

export const DEFAULT_PRICES: PriceTable = {
  'openai/gpt-4o': { inputPerMTok: 2.5, outputPerMTok: 10, cachedInputPerMTok: 1.25 },
  'openai/gpt-4o-mini': { inputPerMTok: 0.15, outputPerMTok: 0.6, cachedInputPerMTok: 0.075 },
  'openai/gpt-4.1': { inputPerMTok: 2, outputPerMTok: 8, cachedInputPerMTok: 0.5 },
  'openai/gpt-4.1-mini': { inputPerMTok: 0.4, outputPerMTok: 1.6, cachedInputPerMTok: 0.1 },
  'openai/gpt-4.1-nano': { inputPerMTok: 0.1, outputPerMTok: 0.4, cachedInputPerMTok: 0.025 },
  'openai/gpt-4-turbo': { inputPerMTok: 10, outputPerMTok: 30 },
  'openai/gpt-4': { inputPerMTok: 30, outputPerMTok: 60 },
  'openai/gpt-3.5-turbo': { inputPerMTok: 0.5, outputPerMTok: 1.5 },
  'openai/o1': { inputPerMTok: 15, outputPerMTok: 60, cachedInputPerMTok: 7.5 },
  'openai/o3': { inputPerMTok: 2, outputPerMTok: 8, cachedInputPerMTok: 0.5 },
  'openai/o3-mini': { inputPerMTok: 1.1, outputPerMTok: 4.4, cachedInputPerMTok: 0.55 },
  'openai/o4-mini': { inputPerMTok: 1.1, outputPerMTok: 4.4, cachedInputPerMTok: 0.275 },
  'openai/text-embedding-3-small': { inputPerMTok: 0.02, outputPerMTok: 0 },
  'openai/text-embedding-3-large': { inputPerMTok: 0.13, outputPerMTok: 0 },
  'anthropic/claude-opus-4': { inputPerMTok: 15, outputPerMTok: 75, cachedInputPerMTok: 1.5 },
  'anthropic/claude-sonnet-4': { inputPerMTok: 3, outputPerMTok: 15, cachedInputPerMTok: 0.3 },
  'anthropic/claude-3-7-sonnet': { inputPerMTok: 3, outputPerMTok: 15, cachedInputPerMTok: 0.3 },
  'anthropic/claude-3-5-sonnet': { inputPerMTok: 3, outputPerMTok: 15, cachedInputPerMTok: 0.3 },
  'anthropic/claude-3-5-haiku': { inputPerMTok: 0.8, outputPerMTok: 4, cachedInputPerMTok: 0.08 },
  'anthropic/claude-haiku-4-5': { inputPerMTok: 1, outputPerMTok: 5, cachedInputPerMTok: 0.1 },
};

const modelOf = (target: string): string => target.slice(target.indexOf('/') + 1);

/** The longest key of `keys` equal to `name` or a prefix of it ending before a '-'. */
function longestPrefix(name: string, keys: Iterable<string>): string | undefined {
  let best: string | undefined;
  for (const k of keys) {
    if ((name === k || (name.startsWith(k) && name[k.length] === '-')) && (best === undefined || k.length > best.length)) best = k;
  }
  return best;
}

/** The price entry for a target, or undefined when the table does not know it. */
export function priceFor(target: string, prices: PriceTable = DEFAULT_PRICES): ModelPrice | undefined {
  const exact = prices[target];
  if (exact !== undefined) return exact;
  const slash = target.indexOf('/');
  if (slash > 0) {
    const provider = target.slice(0, slash + 1);
    const k = longestPrefix(target, Object.keys(prices).filter((key) => key.startsWith(provider)));
    if (k !== undefined) return prices[k];
  }
  const byModel = new Map<string, string>();
  for (const key of Object.keys(prices)) if (!byModel.has(modelOf(key))) byModel.set(modelOf(key), key);
  const m = longestPrefix(modelOf(target), byModel.keys());
  return m === undefined ? undefined : prices[byModel.get(m)!];
}

/** Cost in USD of one call on `target` ('provider/model'), or undefined for an unknown model. */
export function costUsd(usage: CostUsage, target: string, prices: PriceTable = DEFAULT_PRICES): number | undefined {
  const p = priceFor(target, prices);
  if (p === undefined) return undefined;
  const input = Math.max(0, usage.inputTokens || 0);
  const cached = Math.min(input, Math.max(0, usage.cachedInputTokens ?? 0));
  const output = Math.max(0, usage.outputTokens || 0);
  return ((input - cached) * p.inputPerMTok + cached * (p.cachedInputPerMTok ?? p.inputPerMTok) + output * p.outputPerMTok) / 1_000_000;
}
