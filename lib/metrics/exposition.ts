// The text formats: Prometheus text 0.0.4 and OpenMetrics 1.0, chosen by content
// negotiation, rendered incrementally so that no slice of the work holds the event loop
// for more than SLICE_MS (10,000 histogram series render in many slices; a scrape never
// blocks the loop for more than ~10 ms, where prom-client's registry.metrics() takes
// one block of ~0.4 s).
//
// Where OpenMetrics and prom-client differ, this follows the spec:
// - label values escape `\`, `"` and newline; HELP escapes `\` and newline (0.0.4) and
//   `"` too (OpenMetrics);
// - `le` values are canonical floats (`1.0`, `0.005`, `+Inf`); sample values print
//   `NaN`, `+Inf`, `-Inf`;
// - a counter's samples always end in `_total`. In 0.0.4 the TYPE line names the sample
//   (`x_total`, as client_golang does); in OpenMetrics it names the family (`x`);
// - OpenMetrics ends with `# EOF`; `untyped` becomes `unknown`; no `_created` series
//   (optional in the spec);
// - buckets are cumulative and the `+Inf` bucket equals `_count` by construction
//   (lib/metrics/series.ts stores per-bucket counts and derives the count from them).
//
// The content type returned is one of two constants: nothing from the request's Accept
// header (parameters such as `escaping=`, or garbage) is ever reflected.
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Family } from './series.js';

export type Format = 'prometheus' | 'openmetrics';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

/** The longest stretch of rendering between two yields to the event loop. */
const SLICE_MS = 4;

const gzipAsync = promisify(gzip);

interface MediaRange {
  type: string;
  params: Map<string, string>;
  q: number;
}

function parseAccept(header: string): MediaRange[] {
  const out: MediaRange[] = [];
  for (const part of header.slice(0, 4096).split(',')) {
    const [t, ...ps] = part.split(';');
    const type = t.trim().toLowerCase();
    if (!/^[a-z0-9!#$%&'*+.^_`|~-]+\/[a-z0-9!#$%&'*+.^_`|~-]+$/.test(type)) continue;
    const params = new Map<string, string>();
    let q = 1;
    for (const p of ps) {
      const eq = p.indexOf('=');
      if (eq < 0) continue;
      const k = p.slice(0, eq).trim().toLowerCase();
      const v = p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
      if (k === 'q') {
        const n = Number(v);
        q = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(v) && Number.isFinite(n) ? n : 0;
      } else {
        params.set(k, v);
      }
    }
    out.push({ type, params, q });
  }
  return out;
}

/**
 * OpenMetrics 1.0 when the header's best acceptable range asks for
 * application/openmetrics-text (version absent, 1.0.0 or 0.0.1), else Prometheus text
 * 0.0.4 (also for a missing, empty, garbage or unsatisfiable header: a scraper always
 * gets the format every Prometheus reads, never a 406). Ties go to OpenMetrics.
 */
export function negotiate(accept: string | undefined): Format {
  if (typeof accept !== 'string' || accept === '') return 'prometheus';
  let om = 0;
  let prom = 0;
  for (const r of parseAccept(accept)) {
    if (r.type === 'application/openmetrics-text') {
      const v = r.params.get('version');
      if (v === undefined || v === '1.0.0' || v === '0.0.1') om = Math.max(om, r.q);
    } else if (r.type === 'text/plain') {
      const v = r.params.get('version');
      if (v === undefined || v === '0.0.4') prom = Math.max(prom, r.q);
    }
  }
  return om > 0 && om >= prom ? 'openmetrics' : 'prometheus';
}

export function contentTypeOf(f: Format): string {
  return f === 'openmetrics' ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE;
}

/** Whether Accept-Encoding allows gzip (listed, or `*`, with q > 0). */
export function acceptsGzip(acceptEncoding: string | undefined): boolean {
  if (typeof acceptEncoding !== 'string') return false;
  let gz: number | undefined;
  let star: number | undefined;
  for (const part of acceptEncoding.slice(0, 1024).split(',')) {
    const [c, ...ps] = part.split(';');
    const coding = c.trim().toLowerCase();
    let q = 1;
    for (const p of ps) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
      if (m) q = Number(m[1]);
    }
    if (!Number.isFinite(q)) q = 0;
    if (coding === 'gzip' || coding === 'x-gzip') gz = q;
    else if (coding === '*') star = q;
  }
  return (gz ?? star ?? 0) > 0;
}

/** Compresses on the libuv thread pool, off the event loop. */
export async function gzipBody(body: Buffer): Promise<Buffer> {
  return gzipAsync(body);
}

const LABEL_ESCAPES = /[\\"\n]/g;
const LABEL_MAP: Record<string, string> = { '\\': '\\\\', '"': '\\"', '\n': '\\n' };

export function escapeLabelValue(s: string): string {
  return LABEL_ESCAPES.test(s) ? s.replace(LABEL_ESCAPES, (c) => LABEL_MAP[c]) : s;
}

export function escapeHelp(s: string, f: Format): string {
  const re = f === 'openmetrics' ? /[\\"\n]/g : /[\\\n]/g;
  return s.replace(re, (c) => LABEL_MAP[c]);
}

export function formatValue(v: number): string {
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  if (v !== v) return 'NaN';
  return String(v);
}

/** A bucket bound as OpenMetrics' canonical float: integers carry `.0`. */
export function formatLe(b: number): string {
  if (b === Number.POSITIVE_INFINITY) return '+Inf';
  if (b === Number.NEGATIVE_INFINITY) return '-Inf';
  if (Number.isInteger(b) && Math.abs(b) < 1e21) return `${b === 0 ? 0 : b}.0`;
  return String(b);
}

/** `{a="x",b="y"` without the closing brace, or '' for no labels. */
export function labelText(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return '';
  let s = '{';
  for (let i = 0; i < names.length; i++) s += `${i ? ',' : ''}${names[i]}="${escapeLabelValue(values[i])}"`;
  return s;
}

/** The family name of a counter (the sample name without `_total`). */
export function counterBase(name: string): string {
  return name.endsWith('_total') ? name.slice(0, -6) : name;
}

function header(name: string, type: string, help: string, f: Format): string {
  const h = help === '' ? '' : `# HELP ${name} ${escapeHelp(help, f)}\n`;
  return `${h}# TYPE ${name} ${type}\n`;
}

/** The yield point of incremental rendering: macrotask, so I/O callbacks run in between. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The body under construction: UTF-8 bytes in 1 MiB chunks, joined at the end in
 * slices. Each series is written as soon as it is rendered, so no string outlives its
 * slice (an array of 10,000 series strings joined at the end cost a 60 ms block in the
 * join, and a buffer that doubles a 27 ms block copying 8 MB, on the 2-core dev VM).
 */
export class ByteSink {
  static readonly CHUNK = 1 << 20;
  readonly #done: Buffer[] = [];
  #buf = Buffer.allocUnsafe(64 * 1024);
  #len = 0;

  push(s: string): void {
    if (this.#len + s.length * 3 > this.#buf.length) {
      this.#done.push(this.#buf.subarray(0, this.#len));
      this.#buf = Buffer.allocUnsafe(Math.max(ByteSink.CHUNK, s.length * 3));
      this.#len = 0;
    }
    this.#len += this.#buf.write(s, this.#len, 'utf8');
  }

  /** The bytes written, as one Buffer, copied a chunk per slice. */
  async bytes(clock: { start: number }): Promise<Buffer> {
    const parts = [...this.#done, this.#buf.subarray(0, this.#len)];
    if (parts.length === 1) return parts[0];
    let total = 0;
    for (const p of parts) total += p.length;
    const out = Buffer.allocUnsafe(total);
    let at = 0;
    for (const p of parts) {
      if (performance.now() - clock.start > SLICE_MS) {
        await yieldToLoop();
        clock.start = performance.now();
      }
      p.copy(out, at);
      at += p.length;
    }
    return out;
  }
}

/** Renders one of our families into `out`, yielding whenever a slice exceeds SLICE_MS. */
export async function renderFamily(fam: Family, f: Format, out: ByteSink, clock: { start: number }): Promise<void> {
  const isCounter = fam.type === 'counter';
  const sample = fam.name;
  out.push(header(isCounter && f === 'openmetrics' ? counterBase(sample) : sample, fam.type, fam.help, f));
  const n = fam.seriesCount;
  const names = fam.labelNames;
  if (fam.type !== 'histogram') {
    for (let i = 0; i < n; i++) {
      if ((i & 63) === 63 && performance.now() - clock.start > SLICE_MS) {
        await yieldToLoop();
        clock.start = performance.now();
      }
      let lt = fam.labelText[i];
      if (lt === undefined) lt = fam.labelText[i] = labelText(names, fam.labelValues[i]);
      out.push(`${sample}${lt}${lt === '' ? '' : '}'} ${formatValue(fam.value(i))}\n`);
    }
    return;
  }
  const nb = fam.bounds.length;
  const les: string[] = [];
  for (let k = 0; k < nb; k++) les.push(`le="${formatLe(fam.bounds[k])}"} `);
  les.push('le="+Inf"} ');
  const buf = new Float64Array(nb + 2);
  const bucket = `${sample}_bucket`;
  for (let i = 0; i < n; i++) {
    if ((i & 15) === 15 && performance.now() - clock.start > SLICE_MS) {
      await yieldToLoop();
      clock.start = performance.now();
    }
    let lt = fam.labelText[i];
    if (lt === undefined) lt = fam.labelText[i] = labelText(names, fam.labelValues[i]);
    fam.readHistogram(i, buf);
    const open = lt === '' ? `${bucket}{` : `${bucket}${lt},`;
    let cum = 0;
    let s = '';
    for (let k = 0; k <= nb; k++) {
      cum += buf[k];
      s += `${open}${les[k]}${cum}\n`;
    }
    const close = lt === '' ? '' : '}';
    s += `${sample}_count${lt}${close} ${cum}\n${sample}_sum${lt}${close} ${formatValue(buf[nb + 1])}\n`;
    out.push(s);
  }
}

/** A metric as prom-client's `metric.get()` gives it. */
export interface ForeignMetric {
  name: string;
  help: string;
  type: string;
  values?: Array<{ value: number; labels?: Record<string, string | number>; metricName?: string }>;
}

/**
 * Renders a prom-client metric (a user's registry's, read through `get()`) in either
 * format with this file's escaping rules, so both halves of a scrape agree.
 * `defaultLabels` are the registry's default labels (a series' own labels win).
 */
export function renderForeign(m: ForeignMetric, f: Format, defaultLabels: Record<string, string | number>): string {
  const type = m.type === 'untyped' ? (f === 'openmetrics' ? 'unknown' : 'untyped') : m.type;
  const isCounter = type === 'counter';
  const base = isCounter ? counterBase(m.name) : m.name;
  let s = header(isCounter && f === 'openmetrics' ? base : m.name, type, typeof m.help === 'string' ? m.help : '', f);
  for (const v of m.values ?? []) {
    let name = v.metricName ?? m.name;
    if (isCounter && f === 'openmetrics') name = `${counterBase(name)}_total`;
    const labels = { ...defaultLabels, ...(v.labels ?? {}) };
    const names: string[] = [];
    const values: string[] = [];
    for (const [k, val] of Object.entries(labels)) {
      names.push(k);
      values.push(k === 'le' && typeof val === 'number' ? formatLe(val) : k === 'le' && val === '+Inf' ? '+Inf' : String(val).toWellFormed());
    }
    const lt = labelText(names, values);
    s += `${name}${lt}${lt === '' ? '' : '}'} ${formatValue(v.value)}\n`;
  }
  return s;
}

/** A summary read from an HDR histogram's snapshot (see Metrics#hdrHistogram). */
export interface SummaryFamily {
  name: string;
  help: string;
  read(): { count: number; sum: number; quantiles: ReadonlyArray<readonly [number, number]> };
}

export function renderSummary(s: SummaryFamily, f: Format): string {
  const r = s.read();
  let out = header(s.name, 'summary', s.help, f);
  for (const [q, v] of r.quantiles) out += `${s.name}{quantile="${formatValue(q)}"} ${formatValue(v)}\n`;
  out += `${s.name}_sum ${formatValue(r.sum)}\n${s.name}_count ${formatValue(r.count)}\n`;
  return out;
}
