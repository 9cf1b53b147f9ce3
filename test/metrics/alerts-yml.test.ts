// docs/prometheus/alerts.yml: the default KPI rules (lib/metrics/alerts.ts defaultRules)
// as Prometheus alerting rules. `promtool check rules` passes on it (Debian's prometheus
// package, scripts/install-prometheus.mjs; skipped with a message when it cannot be
// installed), it has one rule per default rule with the same duration and severity,
// and every series it names is in the real /metrics output of a gateway with traffic
// (the check docs/grafana/myelin.json gets too, test/metrics/live-stack.ts).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { defaultRules } from '../../lib/metrics/alerts.js';
import { type LiveStack, missingNames, promqlMetricNames, stackWithTraffic } from './live-stack.js';
// @ts-expect-error a plain .mjs script without types
import { installPrometheus } from '../../scripts/install-prometheus.mjs';

const FILE = join(__dirname, '../../docs/prometheus/alerts.yml');
const havePromtool = (installPrometheus as () => boolean)();
if (!havePromtool) console.warn('test/metrics/alerts-yml.test.ts: promtool check skipped: prometheus/promtool missing and not installable (run `node scripts/install-prometheus.mjs` as root)');

interface Rule { alert: string; expr: string; for?: string; labels: Record<string, string> }

/** The rules of this file's shape: `- alert:`, `expr:` inline or as a `|` block, `for:`, `labels: { k: v, ... }`. */
function parseRules(text: string): Rule[] {
  const rules: Rule[] = [];
  const lines = text.split('\n');
  let r: Rule | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let m: RegExpExecArray | null;
    if ((m = /^\s*- alert: (\S+)\s*$/.exec(line))) rules.push((r = { alert: m[1], expr: '', labels: {} }));
    else if (r && (m = /^(\s*)expr: (.*)$/.exec(line))) {
      if (m[2].trim() !== '|') r.expr = m[2].trim();
      else {
        const indent = m[1].length;
        const body: string[] = [];
        while (i + 1 < lines.length && (lines[i + 1].trim() === '' || lines[i + 1].search(/\S/) > indent)) body.push(lines[++i].trim());
        r.expr = body.join(' ').trim();
      }
    } else if (r && (m = /^\s*for: (\S+)\s*$/.exec(line))) r.for = m[1];
    else if (r && (m = /^\s*labels: \{(.*)\}\s*$/.exec(line))) {
      for (const kv of m[1].split(',')) {
        const [k, v] = kv.split(':').map((s) => s.trim());
        r.labels[k] = v;
      }
    }
  }
  return rules;
}

const rules = parseRules(readFileSync(FILE, 'utf8'));

test.skipIf(!havePromtool)('promtool check rules passes', () => {
  const r = spawnSync('promtool', ['check', 'rules', FILE], { encoding: 'utf8' });
  expect(r.stdout + r.stderr).toContain(`SUCCESS: ${rules.length} rules found`);
  expect(r.status).toBe(0);
});

test('one rule per default KPI rule, with its duration and severity, on the same series', () => {
  const defaults = defaultRules();
  expect(rules.map((r) => r.labels.rule).sort()).toEqual(defaults.map((d) => d.name).sort());
  const ms = (d: string | number | undefined) => (typeof d === 'number' ? d : d === undefined ? 0 : Number(/^(\d+)([sm])$/.exec(d)![1]) * (d.endsWith('m') ? 60_000 : 1000));
  for (const d of defaults) {
    const r = rules.find((x) => x.labels.rule === d.name)!;
    expect(r.labels.severity, d.name).toBe(d.severity);
    expect(ms(r.for), d.name).toBe(ms(d.for as string));
    const names = promqlMetricNames(r.expr).map((n) => n.replace(/_bucket$/, ''));
    expect(names, d.name).toContain(d.when.metric);
    for (const p of [d.when.per ?? []].flat()) expect(names, d.name).toContain(p);
    // Thresholds: the in-process number appears in the expression.
    const limit = d.when.above ?? d.when.below;
    if (limit !== undefined) expect(r.expr, d.name).toMatch(new RegExp(`[<>] ${String(limit).replace('.', '\\.')}(\\s|$)`));
  }
});

describe('against a gateway with traffic', () => {
  let stack: LiveStack;
  let exposed: Set<string>;
  beforeAll(async () => {
    ({ stack, exposed } = await stackWithTraffic());
  });
  afterAll(() => stack?.close());

  test('every series the rules name is in real /metrics output', () => {
    const names = rules.flatMap((r) => promqlMetricNames(r.expr));
    expect(new Set(names).size).toBeGreaterThanOrEqual(9);
    const { missing, notYet } = missingNames(names, exposed);
    if (notYet.length > 0) console.warn(`alerts.yml: named but not recorded yet: ${notYet.join(', ')}`);
    expect(missing).toEqual([]);
  });
});
