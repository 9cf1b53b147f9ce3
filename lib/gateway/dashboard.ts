// The /dashboard page: a live view of the gateway, the bus, the AI client and the host,
// served by the gateway itself (no build step, no CDN). Once a second it reads
//
//   /api/metrics/history?metric=<name>&from=<ms>   each series it charts, incrementally
//                                                  (only the seconds since the last poll)
//   /stats                                          the gateway's and the bus's figures
//   /api/alerts                                     rules and their state, firing first
//
// and draws with uPlot, which the gateway serves at /dashboard/uplot.{js,css}
// (lib/gateway/dashboard-assets.ts). Without uPlot, or before a series has points, each
// panel shows its latest figures as numbers, or "no data yet". Without a Metrics
// instance the history route answers 404 and the page keeps the stats table and the
// event feed. With auth the page is opened as /dashboard?token=..., and every fetch
// carries the token as a bearer header (a <script src> could not, so uPlot is fetched
// and injected too).
//
// Counters are charted as per-second rates computed in the page from the 1 s history;
// histogram quantiles come from the history's per-second quantile series (NaN, sent as
// null, for a second without observations: a gap in the line).
//
// For tests, window.myelinDashboard holds what was drawn: polls, errors, whether uPlot
// loaded, per chart its series labels and non-empty point counts, and the alert list.
import { dashboardHasCharts } from './dashboard-assets.js';

export function dashboardPage(): string {
  return dashboardHasCharts() ? PAGE_CHARTS : PAGE_NUMBERS;
}

const SCRIPT = String.raw`
'use strict';
const token = new URLSearchParams(location.search).get('token');
const auth = token ? { headers: { authorization: 'Bearer ' + token } } : {};
const WINDOW_MS = 5 * 60 * 1000;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const state = { polls: 0, errors: 0, uplot: false, history: true, charts: {}, alerts: [], stages: [], targets: [] };
window.myelinDashboard = state;

// ---------------------------------------------------------------- chart specs
// A series: { metric, labels?, split?, rate?, scale, name }. 'split' makes one line
// per value of that label; lines of the same group are summed (a counter by priority
// becomes one total unless split by it).
const STAGE_METRICS = [['gateway', 'myelin_gateway_stage_seconds'], ['bus', 'myelin_bus_stage_seconds'], ['ai', 'myelin_ai_stage_seconds']];
const CHARTS = [
  { id: 'throughput', unit: 'events/s', series: [
    { name: 'gateway in', metric: 'myelin_gateway_events_in_total', rate: true },
    { name: 'gateway out', metric: 'myelin_gateway_events_out_total', rate: true },
    { name: 'bus published', metric: 'myelin_bus_events_published_total', rate: true },
    { name: 'bus delivered', metric: 'myelin_bus_events_delivered_total', rate: true },
    { name: 'HTTP requests', metric: 'myelin_gateway_http_requests_total', rate: true },
  ] },
  { id: 'latency', unit: 'ms', series: [
    { name: 'bus p50', metric: 'myelin_bus_latency_seconds', labels: { quantile: '0.5' }, scale: 1000 },
    { name: 'bus p99', metric: 'myelin_bus_latency_seconds', labels: { quantile: '0.99' }, scale: 1000 },
    { name: 'HTTP p50', metric: 'myelin_gateway_http_request_duration_seconds', labels: { quantile: '0.5' }, scale: 1000 },
    { name: 'HTTP p99', metric: 'myelin_gateway_http_request_duration_seconds', labels: { quantile: '0.99' }, scale: 1000 },
  ] },
  { id: 'hotpath', unit: 'ms', series: STAGE_METRICS.map(([area, metric]) =>
    ({ name: area, metric, labels: { quantile: '0.99' }, split: 'stage', scale: 1000 })) },
  { id: 'queues', unit: 'events', series: [
    { name: 'queued', metric: 'myelin_bus_events_queued', split: 'priority' },
    { name: 'in flight', metric: 'myelin_bus_events_in_flight' },
  ] },
  { id: 'connections', unit: '', series: [
    { name: 'connections', metric: 'myelin_gateway_connections' },
    { name: 'websockets', metric: 'myelin_gateway_websockets' },
  ] },
  { id: 'ai', unit: 'requests/s', series: [
    { name: 'requests', metric: 'myelin_ai_requests_total', split: 'target', rate: true },
  ] },
  { id: 'cpu', unit: '%', series: [
    { name: 'cpu', metric: 'myelin_system_cpu_utilization_ratio', split: 'cpu', scale: 100 },
  ] },
  { id: 'loop', unit: '', series: [
    { name: 'event-loop lag p99 (ms)', metric: 'myelin_nodejs_eventloop_lag_seconds', labels: { quantile: '0.99' }, scale: 1000 },
    { name: 'event-loop busy (%)', metric: 'myelin_nodejs_eventloop_utilization_ratio', scale: 100 },
    { name: 'memory used (%)', metric: 'myelin_system_memory_utilization_ratio', scale: 100 },
  ] },
];
// Read for tables and figures, not charted.
const EXTRA = ['myelin_ai_breaker_state', 'myelin_ai_cost_usd_total', 'myelin_ai_tokens_total',
  'myelin_process_resident_memory_bytes', 'myelin_process_heap_used_bytes', 'myelin_bus_events_failed_total',
  'myelin_bus_events_dropped_total'];
const METRICS = [...new Set(CHARTS.flatMap((c) => c.series.map((s) => s.metric)).concat(EXTRA))];
if (!METRICS.includes('myelin_ai_requests_total')) METRICS.push('myelin_ai_requests_total');

// ---------------------------------------------------------------- the store
// store[metric]: Map labelKey -> { labels, pts: Map<t ms, v|null> }; next[metric]: from= of the next poll.
const store = {};
const next = {};
const keyOf = (labels) => Object.keys(labels).sort().map((k) => k + '=' + labels[k]).join(',');

async function get(path) {
  const r = await fetch(path, auth);
  if (!r.ok) { const e = new Error(path + ': ' + r.status); e.status = r.status; throw e; }
  return r.json();
}

async function pollMetric(name) {
  const from = next[name] ?? Math.floor((Date.now() - WINDOW_MS) / 1000) * 1000;
  const r = await get('/api/metrics/history?metric=' + encodeURIComponent(name) + '&from=' + from);
  const m = (store[name] ??= new Map());
  let newest = from;
  for (const s of r.series) {
    const k = keyOf(s.labels);
    let e = m.get(k);
    if (!e) m.set(k, (e = { labels: s.labels, pts: new Map() }));
    for (const [t, v] of s.points) { e.pts.set(t, v); if (t > newest) newest = t; }
  }
  // The newest second may still change: ask for it again.
  next[name] = newest;
  const cut = newest - WINDOW_MS;
  for (const e of m.values()) for (const t of e.pts.keys()) { if (t < cut) e.pts.delete(t); else break; }
}

function matches(labels, want) {
  if (!want) return true;
  for (const k in want) if (labels[k] !== want[k]) return false;
  return true;
}

// One spec -> [{ name, pts: Map<t, v|null> }], grouped by its split label and summed.
function resolve(spec) {
  const groups = new Map();
  for (const e of (store[spec.metric] ?? new Map()).values()) {
    if (!matches(e.labels, spec.labels)) continue;
    const g = spec.split ? (e.labels[spec.split] ?? '') : '';
    let sum = groups.get(g);
    if (!sum) groups.set(g, (sum = new Map()));
    for (const [t, v] of e.pts) {
      const prev = sum.get(t);
      sum.set(t, v === null ? (prev ?? null) : (prev ?? 0) + v);
    }
  }
  const out = [];
  for (const [g, pts] of [...groups].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const ts = [...pts.keys()].sort((a, b) => a - b);
    const vals = new Map();
    const scale = spec.scale ?? 1;
    if (spec.rate) {
      for (let i = 1; i < ts.length; i++) {
        const a = pts.get(ts[i - 1]); const b = pts.get(ts[i]);
        const d = a === null || b === null ? null : (b - a) / ((ts[i] - ts[i - 1]) / 1000);
        vals.set(ts[i], d === null || d < 0 ? null : d * scale);
      }
    } else {
      for (const t of ts) { const v = pts.get(t); vals.set(t, v === null ? null : v * scale); }
    }
    out.push({ name: g === '' ? spec.name : spec.name + ' ' + g, pts: vals });
  }
  return out;
}

function latest(pts) {
  let best = null, bt = -1;
  for (const [t, v] of pts) if (v !== null && v !== undefined && t > bt) { bt = t; best = v; }
  return best;
}

function fmt(v, unit) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  const s = a >= 1000 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 0.1 ? v.toFixed(2) : a === 0 ? '0' : v.toPrecision(2);
  return s + (unit ? ' ' + unit : '');
}

// ---------------------------------------------------------------- drawing
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
const plots = {};

function draw(chart) {
  const lines = chart.series.flatMap(resolve);
  const panel = $('chart-' + chart.id);
  const withData = lines.filter((l) => latest(l.pts) !== null);
  state.charts[chart.id] = {
    series: lines.map((l) => l.name),
    points: lines.map((l) => [...l.pts.values()].filter((v) => v !== null).length),
    drawn: false,
  };
  panel.querySelector('.now').innerHTML = withData.length === 0
    ? '<span class="empty">no data yet</span>'
    : lines.map((l, i) => '<span><i style="background:' + PALETTE[i % PALETTE.length] + '"></i>' + esc(l.name) + ' <b>' + esc(fmt(latest(l.pts), chart.unit)) + '</b></span>').join('');
  if (!state.uplot) return;
  const plotEl = panel.querySelector('.plot');
  const key = lines.map((l) => l.name).join('\u0000');
  let p = plots[chart.id];
  if (withData.length === 0) {
    if (p) { p.u.destroy(); delete plots[chart.id]; }
    plotEl.classList.add('none');
    return;
  }
  plotEl.classList.remove('none');
  const ts = [...new Set(lines.flatMap((l) => [...l.pts.keys()]))].sort((a, b) => a - b);
  const data = [ts.map((t) => t / 1000)].concat(lines.map((l) => ts.map((t) => l.pts.get(t) ?? null)));
  if (!p || p.key !== key) {
    if (p) p.u.destroy();
    const opts = {
      width: plotEl.clientWidth || 480, height: 180,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [Math.min(0, min ?? 0), max > 0 ? max * 1.1 : 1] } },
      axes: [{}, { size: 60, values: (u, vals) => vals.map((v) => fmt(v, '')) }],
      series: [{}].concat(lines.map((l, i) => ({ label: l.name, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false }))),
    };
    p = plots[chart.id] = { key, u: new uPlot(opts, data, plotEl) };
  } else {
    p.u.setData(data);
  }
  state.charts[chart.id].drawn = true;
}

function stagesTable() {
  const rows = [];
  for (const [area, metric] of STAGE_METRICS) {
    const by = new Map();
    for (const e of (store[metric] ?? new Map()).values()) {
      const q = e.labels.quantile; const st = e.labels.stage ?? '';
      if (q !== '0.5' && q !== '0.99') continue;
      const r = by.get(st) ?? { area, stage: st, p50: null, p99: null };
      r[q === '0.5' ? 'p50' : 'p99'] = latest(e.pts);
      by.set(st, r);
    }
    rows.push(...by.values());
  }
  state.stages = rows;
  const el = $('stages');
  const live = rows.filter((r) => r.p50 !== null || r.p99 !== null);
  if (live.length === 0) { el.innerHTML = '<tr><td class="empty">no data yet: the stage histograms have no observations</td></tr>'; return; }
  const max = Math.max(...live.map((r) => r.p99 ?? r.p50 ?? 0), 1e-9);
  const worst = live.reduce((a, b) => ((b.p99 ?? 0) > (a.p99 ?? 0) ? b : a));
  el.innerHTML = '<tr><th>stage</th><th>p50</th><th>p99</th><th></th></tr>' + live.map((r) =>
    '<tr' + (r === worst ? ' class="worst" title="the slowest stage"' : '') + '><td>' + esc(r.area + ' / ' + r.stage) + '</td><td class="v">' + fmt(r.p50 === null ? null : r.p50 * 1000, 'ms') +
    '</td><td class="v">' + fmt(r.p99 === null ? null : r.p99 * 1000, 'ms') + '</td><td class="bar"><span class="p99" style="width:' + (100 * (r.p99 ?? 0) / max).toFixed(1) +
    '%"></span><span class="p50" style="width:' + (100 * (r.p50 ?? 0) / max).toFixed(1) + '%"></span></td></tr>').join('');
}

const BREAKER = ['closed', 'half-open', 'open'];
function targetsTable() {
  const t = new Map();
  const row = (name) => { let r = t.get(name); if (!r) t.set(name, (r = { target: name, requests: 0, errors: 0, breaker: 0, cost: null, tokens: 0 })); return r; };
  for (const e of (store.myelin_ai_requests_total ?? new Map()).values()) {
    const v = latest(e.pts) ?? 0; const r = row(e.labels.target);
    r.requests += v; if (e.labels.outcome !== 'ok') r.errors += v;
  }
  // The gauge is set on a change only: a target without one has a breaker that never left 'closed'.
  for (const e of (store.myelin_ai_breaker_state ?? new Map()).values()) row(e.labels.target).breaker = latest(e.pts) ?? 0;
  for (const e of (store.myelin_ai_cost_usd_total ?? new Map()).values()) row(e.labels.target).cost = latest(e.pts);
  for (const e of (store.myelin_ai_tokens_total ?? new Map()).values()) row(e.labels.target).tokens += latest(e.pts) ?? 0;
  state.targets = [...t.values()];
  const el = $('targets');
  if (t.size === 0) { el.innerHTML = '<tr><td class="empty">no data yet: no AI requests</td></tr>'; return; }
  el.innerHTML = '<tr><th>target</th><th>requests</th><th>errors</th><th>tokens</th><th>cost</th><th>breaker</th></tr>' + state.targets.map((r) =>
    '<tr><td>' + esc(r.target) + '</td><td class="v">' + r.requests + '</td><td class="v' + (r.errors ? ' bad' : '') + '">' + r.errors + '</td><td class="v">' + r.tokens +
    '</td><td class="v">' + (r.cost === null ? '–' : '$' + r.cost.toFixed(6)) + '</td><td class="breaker-' + esc(BREAKER[r.breaker] ?? 'unknown') + '">' + esc(BREAKER[r.breaker] ?? '–') + '</td></tr>').join('');
}

function healthFigures() {
  const one = (m) => { const e = [...(store[m] ?? new Map()).values()]; return e.length ? e.reduce((a, x) => a + (latest(x.pts) ?? 0), 0) : null; };
  const mb = (v) => (v === null ? '–' : (v / 1048576).toFixed(1) + ' MiB');
  $('figures').innerHTML = [
    ['resident memory', mb(one('myelin_process_resident_memory_bytes'))],
    ['V8 heap', mb(one('myelin_process_heap_used_bytes'))],
    ['bus failed', fmt(one('myelin_bus_events_failed_total'), '')],
    ['bus dropped', fmt(one('myelin_bus_events_dropped_total'), '')],
  ].map(([k, v]) => '<span>' + k + ' <b>' + v + '</b></span>').join('');
}

const ORDER = { firing: 0, pending: 1, inactive: 2 };
function alertsList(list) {
  list.sort((a, b) => (ORDER[a.state] ?? 3) - (ORDER[b.state] ?? 3) || (a.name < b.name ? -1 : 1));
  state.alerts = list;
  const active = list.filter((a) => a.state !== 'inactive');
  const quiet = list.filter((a) => a.state === 'inactive');
  $('alert-count').textContent = active.filter((a) => a.state === 'firing').length + ' firing, ' + active.filter((a) => a.state === 'pending').length + ' pending, ' + quiet.length + ' quiet';
  $('alerts').innerHTML = list.map((a) => {
    const last = a.last && a.state === 'firing' ? ' · value ' + fmt(a.last.value, '') + ' since ' + new Date(a.last.startsAt).toLocaleTimeString() : '';
    const sil = a.silencedUntil && a.silencedUntil > Date.now() ? ' · silenced' : '';
    return '<li class="' + esc(a.state) + '" data-name="' + esc(a.name) + '" data-state="' + esc(a.state) + '"><b>' + esc(a.name) + '</b> <span class="sev ' + esc(a.severity ?? '') + '">' +
      esc(a.severity ?? '') + '</span> ' + esc(a.state) + ' <small>' + esc(a.metric ?? '') + esc(last) + esc(sil) + '</small></li>';
  }).join('');
}

function statsTable(s) {
  const rows = Object.entries(s.gateway).filter(([, v]) => typeof v === 'number')
    .concat(Object.entries(s.bus).filter(([, v]) => typeof v === 'number').map(([k, v]) => ['bus.' + k, v]));
  $('stats').innerHTML = rows.map(([k, v]) => '<tr><td>' + esc(k) + '</td><td class="v">' + esc(v) + '</td></tr>').join('');
}

// ---------------------------------------------------------------- the loop
let busy = false;
async function tick() {
  if (busy) return; // a slow poll is not stacked under the next
  busy = true;
  try {
    const jobs = [get('/stats').then(statsTable), get('/api/alerts').then((r) => alertsList(r.alerts))];
    if (state.history) jobs.push(...METRICS.map((m) => pollMetric(m)));
    const results = await Promise.allSettled(jobs);
    for (const r of results) {
      if (r.status !== 'rejected') continue;
      if (r.reason && r.reason.status === 404 && String(r.reason.message).startsWith('/api/metrics/history')) {
        state.history = false;
        $('nohistory').hidden = false;
      } else state.errors++;
    }
    for (const c of CHARTS) draw(c);
    stagesTable(); targetsTable(); healthFigures();
    state.polls++;
    $('updated').textContent = new Date().toLocaleTimeString();
  } catch (e) {
    state.errors++;
  } finally {
    busy = false;
  }
}

async function loadCharts() {
  if (!window.MYELIN_CHARTS) return;
  try {
    const [js, css] = await Promise.all(['/dashboard/uplot.js', '/dashboard/uplot.css'].map((p) => fetch(p, auth).then((r) => (r.ok ? r.text() : Promise.reject(r.status)))));
    const st = document.createElement('style'); st.textContent = css; document.head.appendChild(st);
    const sc = document.createElement('script'); sc.textContent = js; document.head.appendChild(sc);
    state.uplot = typeof window.uPlot === 'function';
  } catch (e) {
    state.uplot = false;
  }
}

loadCharts().then(() => { tick(); setInterval(tick, 1000); });
addEventListener('resize', () => { for (const p of Object.values(plots)) { const el = p.u.root.parentElement; p.u.setSize({ width: el.clientWidth || 480, height: 180 }); } });

// ---------------------------------------------------------------- the event feed
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws' + (token ? '?token=' + encodeURIComponent(token) : ''));
ws.onopen = () => { $('ws-state').textContent = 'open'; ws.send(JSON.stringify({ op: 'sub', id: 'dash', subject: '>' })); };
ws.onclose = () => { $('ws-state').textContent = 'closed'; };
ws.onmessage = (m) => {
  const el = $('events');
  el.textContent = (m.data + '\n' + el.textContent).slice(0, 20000);
};
window.myelinSocket = ws;
`;

const PANEL = (id: string, title: string, extra = ''): string =>
  `<section class="panel" id="chart-${id}"><h2>${title}</h2><div class="plot"></div><div class="now"></div>${extra}</section>`;

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>myelin dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:13px system-ui,sans-serif;margin:1rem 1.5rem;color:#222;background:#fafafa}
h1{font-size:1.3rem;margin:0 0 .3rem}h2{font-size:.95rem;margin:0 0 .4rem}
header{display:flex;gap:1.5rem;align-items:baseline;margin-bottom:.8rem}header span{color:#666}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:12px}
.panel{background:#fff;border:1px solid #ddd;border-radius:4px;padding:8px 10px;min-width:0}
.plot.none{display:none}.now{display:flex;flex-wrap:wrap;gap:4px 14px;margin-top:4px}
.now i{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}
.empty{color:#999;font-style:italic}
table{border-collapse:collapse}td,th{padding:2px 10px 2px 0;text-align:left}th{font-weight:600;color:#555}
td.v{text-align:right;font-variant-numeric:tabular-nums}td.bad{color:#c00}
td.bar{width:40%;position:relative}td.bar span{position:absolute;left:0;height:6px}td.bar .p99{background:#f4b6b6;top:3px}td.bar .p50{background:#d62728;top:10px}
tr.worst td:first-child{font-weight:700}tr.worst td:first-child::after{content:" ← slowest"}
.breaker-open{color:#c00;font-weight:700}.breaker-half-open{color:#c60}
#alerts{list-style:none;padding:0;margin:0;max-height:260px;overflow:auto}#alerts li{padding:2px 6px;border-left:4px solid #ccc;margin:2px 0}
#alerts li.firing{border-color:#d62728;background:#fdecec}#alerts li.pending{border-color:#ff7f0e;background:#fff5e6}#alerts li.inactive{color:#888}
.sev{font-size:11px;padding:0 4px;border-radius:3px;background:#eee}.sev.critical{background:#d62728;color:#fff}.sev.warning{background:#ff7f0e;color:#fff}
#figures{display:flex;flex-wrap:wrap;gap:4px 14px;margin-top:6px}
#events{font:12px monospace;white-space:pre;max-height:30vh;overflow:auto;background:#f3f3f3;padding:8px}
#nohistory{color:#a60}
</style></head><body>
<header><h1>myelin</h1><span>WebSocket: <span id="ws-state">connecting</span></span><span>updated <span id="updated">–</span></span></header>
<p id="nohistory" hidden>No metrics history: start the gateway with a Metrics instance (<code>new Gateway({ metrics })</code>) for the charts.</p>
<div class="grid">
<section class="panel" id="alerts-panel"><h2>Alerts <small id="alert-count"></small></h2><ul id="alerts"></ul></section>
${PANEL('throughput', 'Throughput (per second)')}
${PANEL('latency', 'Latency percentiles (ms)')}
${PANEL('hotpath', 'Hot path: p99 by stage (ms)', '<table id="stages"></table>')}
${PANEL('queues', 'Bus queue depth by priority')}
${PANEL('connections', 'Connections')}
${PANEL('ai', 'AI targets: requests per second', '<table id="targets"></table>')}
${PANEL('cpu', 'CPU per core (%)')}
${PANEL('loop', 'Event loop and memory', '<div id="figures"></div>')}
</div>
<details open><summary><h2 style="display:inline">Gateway and bus stats</h2></summary><table id="stats"></table></details>
<h2>Events</h2><div id="events"></div>
<script>window.MYELIN_CHARTS = CHARTS_FLAG;</script>
<script>${SCRIPT}</script></body></html>`;

const PAGE_CHARTS = PAGE.replace('CHARTS_FLAG', 'true');
const PAGE_NUMBERS = PAGE.replace('CHARTS_FLAG', 'false');
