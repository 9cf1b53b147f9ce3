// docs/grafana/myelin.json: an importable Grafana dashboard (the `${DS_PROMETHEUS}` input,
// every panel on it), every query valid PromQL (promtool parses each as a recording rule,
// Grafana's variables filled in) and every series a query names present in the real
// /metrics output of a gateway with a Metrics, a Bus and an AIClient carrying traffic
// (test/metrics/live-stack.ts, shared with the Prometheus rules' test).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type LiveStack, missingNames, promqlMetricNames, stackWithTraffic } from './live-stack.js';
// @ts-expect-error a plain .mjs script without types
import { installPrometheus } from '../../scripts/install-prometheus.mjs';

interface Target { expr: string; refId: string; datasource?: { type: string; uid: string } }
interface Panel { id: number; type: string; title: string; datasource?: { type: string; uid: string }; gridPos: { x: number; y: number; w: number; h: number }; targets?: Target[] }
interface Dashboard { __inputs: Array<{ name: string; type: string; pluginId: string }>; panels: Panel[]; templating: { list: Array<{ definition?: string; datasource?: { uid: string } }> }; uid: string; title: string }

const dash = JSON.parse(readFileSync(join(__dirname, '../../docs/grafana/myelin.json'), 'utf8')) as Dashboard;
const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
/** Series Prometheus makes itself: the rules' state. */
const BUILTIN = ['ALERTS'];

const havePromtool = (installPrometheus as () => boolean)();

test('the PromQL name extractor finds names and only names', () => {
  expect(promqlMetricNames('histogram_quantile(0.99, sum by (le, stage) (rate(myelin_a_bucket{instance=~"$instance",x="sum"}[$__rate_interval])))')).toEqual(['myelin_a_bucket']);
  expect(promqlMetricNames('rate(a_total[1m]) / (rate(a_total[1m]) + rate(b_total[1m])) > 1e-3 and on (job) c{q="0.5"} offset 1m')).toEqual(['a_total', 'b_total', 'c']);
  expect(promqlMetricNames('predict_linear(rate(x[1m])[10m:15s] offset 1m, 60) >= 1 or abs(y)')).toEqual(['x', 'y']);
  expect(promqlMetricNames('sum without (cpu) (z)')).toEqual(['z']);
});

describe('docs/grafana/myelin.json', () => {
  test('is an importable dashboard on the ${DS_PROMETHEUS} input', () => {
    expect(dash.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' })]);
    expect(dash.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    const ids = dash.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dash.panels) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${DS_PROMETHEUS}' });
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      const refs = p.targets!.map((t) => t.refId);
      expect(new Set(refs).size, p.title).toBe(refs.length);
      for (const t of p.targets!) expect(t.datasource?.uid, p.title).toBe('${DS_PROMETHEUS}');
    }
    for (const v of dash.templating.list) expect(v.datasource?.uid).toBe('${DS_PROMETHEUS}');
    // The page's panels, mirrored.
    const titles = dash.panels.map((p) => p.title.toLowerCase()).join('\n');
    for (const w of ['alerts', 'throughput', 'latency', 'hot path', 'queue', 'connections', 'ai targets', 'cpu', 'memory', 'event loop']) expect(titles).toContain(w);
  });

  test.skipIf(!havePromtool)('every query is valid PromQL (promtool check rules)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'myelin-grafana-'));
    try {
      const fill = (e: string) => e.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '1h').replaceAll('$instance', '.*');
      const rules = exprs.map((x, i) => `      - record: grafana:q${i}\n        expr: ${JSON.stringify(fill(x.expr))}\n`).join('');
      const file = join(dir, 'queries.yml');
      writeFileSync(file, `groups:\n  - name: grafana\n    rules:\n${rules}`);
      const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      expect(r.stdout + r.stderr).toContain(`SUCCESS: ${exprs.length} rules found`);
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('against a gateway with traffic', () => {
    let stack: LiveStack;
    let exposed: Set<string>;
    beforeAll(async () => {
      ({ stack, exposed } = await stackWithTraffic());
    });
    afterAll(() => stack?.close());

    test('every series a query names is in real /metrics output', () => {
      const names = exprs.flatMap((x) => promqlMetricNames(x.expr));
      for (const v of dash.templating.list) {
        const m = /label_values\(([A-Za-z_:][A-Za-z0-9_:]*)/.exec(v.definition ?? '');
        if (m) names.push(m[1]);
      }
      expect(new Set(names).size).toBeGreaterThan(20);
      const { missing, notYet } = missingNames(names, exposed, BUILTIN);
      if (notYet.length > 0) console.warn(`grafana: named but not recorded yet: ${notYet.join(', ')}`);
      expect(missing).toEqual([]);
    });
  });
});
