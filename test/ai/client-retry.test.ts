// The retry policy's pure parts: classification, server delays, backoff, redaction.
import { describe, expect, test } from 'vitest';
import { Redactor } from '../../lib/ai/client/redactor.js';
import { backoff, classify, parseDuration, serverDelay } from '../../lib/ai/client/retry.js';

const R = { attempts: 3, minDelayMs: 100, maxDelayMs: 1000, deadlineMs: 60_000 };

describe('classify (AI-WIRE failure case 4)', () => {
  test.each([
    [429, { message: '', type: 'requests', code: 'rate_limit_exceeded' }, 'ERR_AI_RATE_LIMITED', true],
    [429, { message: '', type: 'insufficient_quota', code: 'insufficient_quota' }, 'ERR_AI_QUOTA', false],
    [429, { message: '', code: 'monthly_spend_limit_exceeded' }, 'ERR_AI_QUOTA', false],
    [429, { message: '', type: 'rate_limit_error', detailCode: 'enforced_spend_limit_reached' }, 'ERR_AI_QUOTA', false],
    [429, { message: '', type: 'rate_limit_error' }, 'ERR_AI_RATE_LIMITED', true],
    [402, { message: '', type: 'billing_error' }, 'ERR_AI_QUOTA', false],
    [529, { message: '', type: 'overloaded_error' }, 'ERR_AI_UPSTREAM', true],
    [500, { message: '' }, 'ERR_AI_UPSTREAM', true],
    [503, { message: '', type: 'unavailable_error', code: '503' }, 'ERR_AI_UPSTREAM', true],
    [408, { message: '' }, 'ERR_AI_UPSTREAM', true],
    [400, { message: '' }, 'ERR_AI_UPSTREAM', false],
    [401, { message: '' }, 'ERR_AI_UPSTREAM', false],
    [404, { message: '' }, 'ERR_AI_UPSTREAM', false],
    [301, { message: '' }, 'ERR_AI_UPSTREAM', false],
  ] as const)('%i %o -> %s retryable=%s', (status, info, code, retryable) => {
    const c = classify(status, info, {});
    expect(c.code).toBe(code);
    expect(c.retryable).toBe(retryable);
  });

  test('x-should-retry overrides, except for quota', () => {
    expect(classify(500, { message: '' }, { 'x-should-retry': 'false' }).retryable).toBe(false);
    expect(classify(400, { message: '' }, { 'x-should-retry': 'true' }).retryable).toBe(true);
    expect(classify(429, { message: '', code: 'insufficient_quota' }, { 'x-should-retry': 'true' }).retryable).toBe(false);
  });
});

describe('server delays', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  test('retry-after-ms first, then retry-after seconds or HTTP date', () => {
    expect(serverDelay(429, { 'retry-after-ms': '250', 'retry-after': '9' }, now)).toEqual({ ms: 250, source: 'retry-after-ms' });
    expect(serverDelay(503, { 'retry-after': '2' }, now)).toEqual({ ms: 2000, source: 'retry-after-seconds' });
    expect(serverDelay(503, { 'retry-after': '1.5' }, now)).toEqual({ ms: 1500, source: 'retry-after-seconds' });
    expect(serverDelay(429, { 'retry-after': 'Wed, 01 Jan 2025 00:00:03 GMT' }, now)).toEqual({ ms: 3000, source: 'retry-after-date' });
    expect(serverDelay(429, { 'retry-after': 'Tue, 31 Dec 2024 23:00:00 GMT' }, now)).toEqual({ ms: 0, source: 'retry-after-date' });
    expect(serverDelay(429, { 'retry-after': 'soon' }, now)).toBeUndefined();
  });

  test('OpenAI reset durations, preferring the exhausted limit', () => {
    const h = { 'x-ratelimit-reset-requests': '6s', 'x-ratelimit-remaining-requests': '3', 'x-ratelimit-reset-tokens': '12ms', 'x-ratelimit-remaining-tokens': '0' };
    expect(serverDelay(429, h, now)).toEqual({ ms: 12, source: 'ratelimit-reset' });
    expect(serverDelay(429, { 'x-ratelimit-reset-requests': '1m30s' }, now)?.ms).toBe(90_000);
    // Reset headers only explain a 429.
    expect(serverDelay(500, h, now)).toBeUndefined();
  });

  test('Anthropic RFC 3339 resets', () => {
    const h = { 'anthropic-ratelimit-requests-reset': '2025-01-01T00:00:04Z', 'anthropic-ratelimit-requests-remaining': '0' };
    expect(serverDelay(429, h, now)).toEqual({ ms: 4000, source: 'ratelimit-reset' });
  });

  test('parseDuration', () => {
    expect(parseDuration('6s')).toBe(6000);
    expect(parseDuration('12ms')).toBe(12);
    expect(parseDuration('0.5s')).toBe(500);
    expect(parseDuration('2h1m')).toBe(7_260_000);
    expect(parseDuration('6 s')).toBeUndefined();
    expect(parseDuration('')).toBeUndefined();
    expect(parseDuration('abc')).toBeUndefined();
  });
});

test('backoff: jittered, exponential, within minDelayMs..maxDelayMs', () => {
  expect(backoff(1, R, () => 0)).toBe(100);
  expect(backoff(1, R, () => 1)).toBe(200);
  expect(backoff(3, R, () => 1)).toBe(800);
  expect(backoff(10, R, () => 1)).toBe(1000);
  const seen = new Set<number>();
  for (let i = 0; i < 20; i++) seen.add(Math.round(backoff(2, R)));
  expect(seen.size).toBeGreaterThan(1);
  for (const v of seen) {
    expect(v).toBeGreaterThanOrEqual(100);
    expect(v).toBeLessThanOrEqual(400);
  }
});

test('Redactor masks whole keys and any 8+ character part of them', () => {
  const r = new Redactor(['sk-test-SECRET123', undefined, 'other-key-0000000']);
  expect(r.redact('key sk-test-SECRET123 here')).toBe('key [REDACTED] here');
  expect(r.redact('Incorrect API key provided: sk-test-SEC***')).toBe('Incorrect API key provided: [REDACTED]***');
  expect(r.redact('middle -SECRET123!')).toBe('middle [REDACTED]!');
  expect(r.redact('x other-key-0000000 y sk-test-SECRET123')).toBe('x [REDACTED] y [REDACTED]');
  expect(r.redact('nothing secret: sk-test')).toBe('nothing secret: sk-test');
});
