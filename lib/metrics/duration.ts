// Durations and times as rules, queries and the report CLI take them: '30s', '5m',
// '1h', '250ms', '2d' or a number of ms; times as epoch ms, an ISO 8601 date, 'now',
// or relative to now ('-1h', '-90s'). Error messages never repeat a string they were
// given (it may come from a request's query string).
import { invalidArgument } from '../errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** The longest duration accepted: 30 days (a longer `for` or window is a typo). */
export const MAX_DURATION_MS = 30 * 86_400_000;

/** Parses one number with one unit ('30s', '1.5m'), or a finite number of ms >= 0. */
export function parseDuration(v: unknown, where: string): number {
  let ms: number;
  if (typeof v === 'number') ms = v;
  else if (typeof v === 'string') {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(v.trim());
    if (!m) throw invalidArgument(`${where} must be a duration like '30s', '5m', '1h' or a number of ms`);
    ms = Number(m[1]) * UNIT_MS[m[2]];
  } else throw invalidArgument(`${where} must be a duration like '30s' or a number of ms, got ${typeof v}`);
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_DURATION_MS) throw invalidArgument(`${where} must be between 0 and 30 days${typeof v === 'number' ? `, got ${v}` : ''}`);
  return Math.round(ms);
}

/** Parses a time: epoch ms, an ISO date, 'now', or '-<duration>' before `now`. */
export function parseTime(v: unknown, now: number, where: string): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) throw invalidArgument(`${where} must be a time, got ${v}`);
    return v;
  }
  if (typeof v !== 'string' || v.length === 0 || v.length > 64) throw invalidArgument(`${where} must be a time (epoch ms, ISO date, 'now' or '-1h')`);
  const s = v.trim();
  if (s === 'now') return now;
  if (s.startsWith('-')) return now - parseDuration(s.slice(1), where);
  if (/^\d+$/.test(s)) return Number(s);
  const t = Date.parse(s);
  if (!Number.isFinite(t)) throw invalidArgument(`${where} must be a time (epoch ms, ISO date, 'now' or '-1h')`);
  return t;
}
