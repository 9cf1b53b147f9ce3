// myelin report [--url http://127.0.0.1:8080] [--from -1h] [--to now] [--out report.html] [--token T]
//
// Reads a running gateway's metrics history (GET /api/metrics/history, mounted with
// historyRoute from lib/metrics/history.ts) and /stats, and writes one self-contained
// HTML file: inline SVG line charts drawn here (no script, no CDN, nothing fetched when
// the file is opened) of throughput, latency percentiles, errors, queue depth, and the
// alerts of the period. Series are found by suffix, so any Metrics prefix works.
import { writeFile } from 'node:fs/promises';
import { request } from 'undici';
import { MyelinError } from '../errors.js';
import { parseTime } from '../metrics/duration.js';

interface Options {
  url: string;
  from: string;
  to: string;
  out: string;
  token: string | undefined;
}

interface Series {
  labels: Record<string, string>;
  points: Array<[number, number | null]>;
}

interface AlertRow {
  name: string;
  status: string;
  severity: string;
  metric: string;
  labels: Record<string, string>;
  value: number | null;
  startsAt: number;
  endsAt?: number;
}

export interface Chart {
  title: string;
  unit: string;
  lines: Array<{ label: string; points: Array<[number, number]> }>;
}

const USAGE = 'usage: myelin report [--url http://127.0.0.1:8080] [--from -1h] [--to now] [--out report.html] [--token T]';

function parseArgs(args: string[]): Options | 'help' {
  const o: Options = { url: 'http://127.0.0.1:8080', from: '-1h', to: 'now', out: 'report.html', token: process.env.MYELIN_TOKEN };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--help' || a === '-h') return 'help';
    const eq = a.indexOf('=');
    const key = eq > 0 ? a.slice(0, eq) : a;
    const value = eq > 0 ? a.slice(eq + 1) : args[++i];
    if (value === undefined) throw new MyelinError('ERR_INVALID_ARGUMENT', `${key} needs a value\n${USAGE}`);
    switch (key) {
      case '--url':
        o.url = value.replace(/\/+$/, '');
        break;
      case '--from':
        o.from = value;
        break;
      case '--to':
        o.to = value;
        break;
      case '--out':
        o.out = value;
        break;
      case '--token':
        o.token = value;
        break;
      default:
        throw new MyelinError('ERR_INVALID_ARGUMENT', `unknown option ${JSON.stringify(key.slice(0, 40))}\n${USAGE}`);
    }
  }
  let u: URL;
  try {
    u = new URL(o.url);
  } catch {
    throw new MyelinError('ERR_INVALID_ARGUMENT', `--url must be an http(s) URL, got ${JSON.stringify(o.url.slice(0, 80))}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new MyelinError('ERR_INVALID_ARGUMENT', '--url must be an http(s) URL');
  return o;
}

async function getJson(o: Options, path: string): Promise<any> {
  let res;
  try {
    res = await request(o.url + path, { headers: o.token ? { authorization: `Bearer ${o.token}` } : {}, headersTimeout: 10_000, bodyTimeout: 30_000 });
  } catch (err) {
    throw new MyelinError('ERR_INVALID_ARGUMENT', `cannot reach the gateway at ${o.url} (${(err as Error).message}); is \`myelin serve\` running there?`, { cause: err });
  }
  const text = await res.body.text();
  if (res.statusCode === 404) throw new MyelinError('ERR_INVALID_ARGUMENT', `${o.url}${path.split('?')[0]}: not found (404); the gateway has no metrics history route`);
  if (res.statusCode === 401 || res.statusCode === 403) throw new MyelinError('ERR_INVALID_ARGUMENT', `${o.url}: the gateway wants a token (--token or MYELIN_TOKEN)`);
  if (res.statusCode !== 200) throw new MyelinError('ERR_INVALID_ARGUMENT', `${o.url}${path.split('?')[0]}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new MyelinError('ERR_INVALID_ARGUMENT', `${o.url}${path.split('?')[0]}: the answer is not JSON`, { cause: err });
  }
}

const labelText = (l: Record<string, string>): string =>
  Object.entries(l)
    .map(([k, v]) => `${k}=${v}`)
    .join(',') || 'all';

/** Per-second rates from consecutive counter points (a reset starts over). */
export function rates(points: Array<[number, number | null]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 1; i < points.length; i++) {
    const [t0, v0] = points[i - 1];
    const [t1, v1] = points[i];
    if (v0 === null || v1 === null || t1 <= t0) continue;
    out.push([t1, ((v1 >= v0 ? v1 - v0 : v1) * 1000) / (t1 - t0)]);
  }
  return out;
}

const finitePoints = (p: Array<[number, number | null]>): Array<[number, number]> => p.filter((x): x is [number, number] => x[1] !== null && Number.isFinite(x[1]));

export async function reportCommand(args: string[]): Promise<number> {
  const o = parseArgs(args);
  if (o === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const now = Date.now();
  const from = parseTime(o.from, now, '--from');
  const to = parseTime(o.to, now, '--to');
  if (from >= to) throw new MyelinError('ERR_INVALID_ARGUMENT', '--from must be before --to');
  const step = Math.max(1000, Math.ceil((to - from) / 600 / 1000) * 1000);
  const range = `from=${from}&to=${to}`;
  const index = await getJson(o, `/api/metrics/history?${range}`);
  const names: string[] = Array.isArray(index?.metrics) ? index.metrics.map((m: { name: string }) => m.name) : [];
  const find = (suffix: string) => names.find((n) => n.endsWith(suffix));
  const query = async (suffix: string): Promise<Series[]> => {
    const name = find(suffix);
    if (!name) return [];
    const r = await getJson(o, `/api/metrics/history?metric=${encodeURIComponent(name)}&${range}&step=${step}`);
    return Array.isArray(r?.series) ? r.series : [];
  };
  let stats: unknown;
  try {
    stats = await getJson(o, '/stats');
  } catch {
    stats = undefined; // the report stands without it
  }
  const charts: Chart[] = [];
  const published = await query('bus_events_published_total');
  charts.push({ title: 'Throughput (bus events published per second)', unit: '/s', lines: published.map((s) => ({ label: labelText(s.labels), points: rates(s.points) })) });
  const busLat = await query('bus_latency_seconds');
  const httpLat = await query('gateway_http_request_duration_seconds');
  charts.push({
    title: 'Latency percentiles',
    unit: 's',
    lines: [
      ...busLat.map((s) => ({ label: `bus p${Number(s.labels.quantile) * 100}`, points: finitePoints(s.points) })),
      ...httpLat.filter((s) => s.labels.quantile).map((s) => ({ label: `http p${Number(s.labels.quantile) * 100}`, points: finitePoints(s.points) })),
    ],
  });
  const failed = await query('bus_events_failed_total');
  const aiReq = await query('ai_requests_total');
  charts.push({
    title: 'Errors per second',
    unit: '/s',
    lines: [
      ...failed.map((s) => ({ label: 'bus failed', points: rates(s.points) })),
      ...aiReq.filter((s) => s.labels.outcome && s.labels.outcome !== 'ok').map((s) => ({ label: `ai ${s.labels.target} ${s.labels.outcome}`, points: rates(s.points) })),
    ],
  });
  const queued = await query('bus_events_queued');
  charts.push({ title: 'Queue depth (events waiting per lane)', unit: '', lines: queued.map((s) => ({ label: labelText(s.labels), points: finitePoints(s.points) })) });
  const alerts: AlertRow[] = Array.isArray(index?.alerts) ? index.alerts : [];
  const html = renderReport({ url: o.url, from, to, generated: now, charts, alerts, stats });
  await writeFile(o.out, html);
  process.stdout.write(`myelin report: wrote ${o.out} (${charts.reduce((n, c) => n + c.lines.filter((l) => l.points.length > 0).length, 0)} series, ${alerts.length} alerts)\n`);
  return 0;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const iso = (t: number): string => new Date(t).toISOString().replace('.000Z', 'Z');
const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

function fmt(v: number, unit: string): string {
  if (unit === 's') return v >= 1 ? `${v.toPrecision(3)} s` : v >= 1e-3 ? `${(v * 1e3).toPrecision(3)} ms` : `${(v * 1e6).toPrecision(3)} µs`;
  const a = Math.abs(v);
  const s = a >= 1e6 ? `${(v / 1e6).toPrecision(3)}M` : a >= 1e3 ? `${(v / 1e3).toPrecision(3)}k` : a === 0 ? '0' : v.toPrecision(3);
  return `${s}${unit}`;
}

/** One inline SVG line chart: axes, four y ticks, a polyline per series, a legend. */
export function svgChart(c: Chart, from: number, to: number): string {
  const W = 880;
  const H = 240;
  const L = 70;
  const R = 10;
  const T = 10;
  const B = 30;
  const lines = c.lines.filter((l) => l.points.length > 0).slice(0, COLORS.length);
  if (lines.length === 0) return `<p class="empty">No data for this period.</p>`;
  let max = 0;
  for (const l of lines) for (const [, v] of l.points) if (v > max) max = v;
  if (!(max > 0)) max = 1;
  const x = (t: number) => L + ((t - from) / Math.max(1, to - from)) * (W - L - R);
  const y = (v: number) => T + (1 - v / max) * (H - T - B);
  const parts: string[] = [`<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${esc(c.title)}" xmlns="http://www.w3.org/2000/svg">`];
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e7eb"/>`);
    parts.push(`<text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="11">${esc(fmt(v, c.unit))}</text>`);
  }
  for (const [t, anchor] of [[from, 'start'], [to, 'end']] as const) parts.push(`<text x="${x(t).toFixed(1)}" y="${H - 8}" text-anchor="${anchor}" font-size="11">${esc(iso(t))}</text>`);
  lines.forEach((l, i) => {
    const pts = l.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${COLORS[i]}" stroke-width="1.5" points="${pts}"><title>${esc(l.label)}</title></polyline>`);
  });
  parts.push('</svg>');
  const legend = lines.map((l, i) => `<span><i style="background:${COLORS[i]}"></i>${esc(l.label)}</span>`).join(' ');
  return `${parts.join('')}<div class="legend">${legend}</div>`;
}

export function renderReport(r: { url: string; from: number; to: number; generated: number; charts: Chart[]; alerts: AlertRow[]; stats: unknown }): string {
  const rows = r.alerts
    .map(
      (a) =>
        `<tr class="${esc(a.status)}"><td>${esc(iso(a.status === 'resolved' ? (a.endsAt ?? a.startsAt) : a.startsAt))}</td><td>${esc(a.name)}</td><td>${esc(a.status)}</td><td>${esc(a.severity)}</td><td>${esc(a.metric)}{${esc(labelText(a.labels ?? {}))}}</td><td>${a.value === null ? '' : esc(String(a.value))}</td></tr>`,
    )
    .join('\n');
  const bus = (r.stats as { bus?: Record<string, unknown> } | undefined)?.bus;
  const summary = bus
    ? `<p>Bus now: ${['published', 'delivered', 'failed', 'dropped', 'queued'].map((k) => `${k} ${esc(String(bus[k] ?? '?'))}`).join(' · ')}</p>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>myelin performance report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2rem auto;max-width:920px;color:#111827}
h1{font-size:1.4rem}h2{font-size:1.05rem;margin-top:2rem}
.legend span{margin-right:1rem;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
table{border-collapse:collapse;width:100%;font-size:12px}td,th{border-bottom:1px solid #e5e7eb;padding:4px;text-align:left}
tr.firing td:nth-child(3){color:#dc2626}tr.resolved td:nth-child(3){color:#16a34a}.empty{color:#6b7280}
</style></head><body>
<h1>myelin performance report</h1>
<p>Gateway ${esc(r.url)} · ${esc(iso(r.from))} to ${esc(iso(r.to))} · generated ${esc(iso(r.generated))}</p>
${summary}
${r.charts.map((c) => `<h2>${esc(c.title)}</h2>\n${svgChart(c, r.from, r.to)}`).join('\n')}
<h2>Alerts</h2>
${r.alerts.length === 0 ? '<p class="empty">No alerts in this period.</p>' : `<table><thead><tr><th>time</th><th>rule</th><th>status</th><th>severity</th><th>series</th><th>value</th></tr></thead><tbody>\n${rows}\n</tbody></table>`}
</body></html>
`;
}
