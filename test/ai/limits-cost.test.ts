// costUsd: the price table, lookups by provider name or model alone, dated variants,
// cached input, unknown models.
import { describe, expect, it } from 'vitest';
import { costUsd, DEFAULT_PRICES, priceFor } from '../../lib/ai/cost.js';

describe('costUsd', () => {
  it('prices input and output per million tokens', () => {
    expect(costUsd({ inputTokens: 1_000_000, outputTokens: 1_000_000 }, 'openai/gpt-4o')).toBeCloseTo(12.5, 10);
    expect(costUsd({ inputTokens: 1_000, outputTokens: 500 }, 'openai/gpt-4o-mini')).toBeCloseTo((1_000 * 0.15 + 500 * 0.6) / 1e6, 15);
  });

  it('prices cached input apart when the table has a cached price', () => {
    const full = costUsd({ inputTokens: 1_000, outputTokens: 0 }, 'openai/gpt-4o')!;
    const cached = costUsd({ inputTokens: 1_000, outputTokens: 0, cachedInputTokens: 1_000 }, 'openai/gpt-4o')!;
    expect(cached).toBeCloseTo(full / 2, 15);
    // cachedInputTokens above inputTokens is clamped.
    expect(costUsd({ inputTokens: 10, outputTokens: 0, cachedInputTokens: 99 }, 'openai/gpt-4o')).toBeCloseTo((10 * 1.25) / 1e6, 15);
  });

  it('finds dated variants by the longest prefix at a dash', () => {
    expect(priceFor('openai/gpt-4o-mini-2024-07-18')).toBe(DEFAULT_PRICES['openai/gpt-4o-mini']);
    expect(priceFor('openai/gpt-4o-2024-08-06')).toBe(DEFAULT_PRICES['openai/gpt-4o']);
    expect(priceFor('openai/gpt-4.1-mini')).toBe(DEFAULT_PRICES['openai/gpt-4.1-mini']);
    expect(priceFor('openai/gpt-4ox')).toBeUndefined();
  });

  it('finds a model under a provider name of the user choosing', () => {
    expect(priceFor('claude/claude-sonnet-4-20250514')).toBe(DEFAULT_PRICES['anthropic/claude-sonnet-4']);
  });

  it('unknown model -> undefined, never 0', () => {
    expect(costUsd({ inputTokens: 100, outputTokens: 100 }, 'local/llama3.2')).toBeUndefined();
    expect(costUsd({ inputTokens: 100, outputTokens: 100 }, 'nonsense')).toBeUndefined();
  });

  it('takes a custom table', () => {
    const prices = { 'local/llama3.2': { inputPerMTok: 0, outputPerMTok: 0 }, 'x/y': { inputPerMTok: 1, outputPerMTok: 2 } };
    expect(costUsd({ inputTokens: 100, outputTokens: 100 }, 'local/llama3.2', prices)).toBe(0);
    expect(costUsd({ inputTokens: 1e6, outputTokens: 1e6 }, 'x/y', prices)).toBe(3);
    expect(costUsd({ inputTokens: 1, outputTokens: 1 }, 'openai/gpt-4o', prices)).toBeUndefined();
  });
});
