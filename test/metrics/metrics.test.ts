// Metrics: the recording core and the exposition (shared/API.md "Metrics",
// shared/RELIABILITY.md "Metrics"). Every public method's happy path and errors, the
// exposition checklist (escaping, canonical le, +Inf = _count, cumulative buckets,
// # EOF, no duplicate series), the cardinality cap, metamorphic histogram checks,
// content negotiation, gzip, the prom-client bridge and worker threads.
import { gunzipSync } from 'node:zlib';
import { Worker } from 'node:worker_threads';
import client from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Metrics } from '../../lib/index.js';
import { createLocalHistogram, HistogramRecorder } from '../../lib/internal/histogram.js';

const open: Metrics[] = [];
function make(o: ConstructorParameters<typeof Metrics>[0] = {}): Metrics {
  const m = new Metrics({ system: false, ...o });
  open.push(m);
  return m;
}
afterEach(() => {
  for (const m of open.splice(0)) m.close();
});

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code ?? 'not a MyelinError';
  }
  return undefined;
}

const OM = 'application/openmetrics-text; version=1.0.0; charset=utf-8';
const PROM = 'text/plain; version=0.0.4; charset=utf-8';

async function text(m: Metrics, accept?: string): Promise<string> {
  const r = await m.expose({ accept });
  expect(Buffer.isBuffer(r.body)).toBe(true); // always UTF-8 bytes (lib/metrics/metrics.ts)
  return r.body.toString('utf8');
}

/** Sample lines (no comments) of an exposition. */
function samples(body: string): string[] {
  return body.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

/** Checks the exposition invariants every output must meet and returns sample name+labels -> value. */
function checkExposition(body: string, om: boolean): Map<string, string> {
  const seen = new Map<string, string>();
  for (const l of samples(body)) {
    const sp = l.lastIndexOf(' ');
    const key = l.slice(0, sp);
    expect(seen.has(key), `duplicate series ${key}`).toBe(false);
    seen.set(key, l.slice(sp + 1));
  }
  if (om) expect(body.endsWith('# EOF\n')).toBe(true);
  else expect(body).not.toContain('# EOF');
  // Histograms: cumulative buckets, +Inf equals _count.
  const buckets = new Map<string, Array<[string, number]>>();
  for (const [key, v] of seen) {
    const m = /^(\w+)_bucket\{(.*)le="([^"]+)"\}$/.exec(key);
    if (!m) continue;
    const series = `${m[1]}{${m[2].replace(/,$/, '')}}`;
    if (!buckets.has(series)) buckets.set(series, []);
    buckets.get(series)!.push([m[3], Number(v)]);
  }
  for (const [series, bs] of buckets) {
    for (let i = 1; i < bs.length; i++) expect(bs[i][1]).toBeGreaterThanOrEqual(bs[i - 1][1]);
    expect(bs[bs.length - 1][0]).toBe('+Inf');
    const [name, labels] = [series.slice(0, series.indexOf('{')), series.slice(series.indexOf('{'))];
    const count = seen.get(labels === '{}' ? `${name}_count` : `${name}_count${labels}`);
    expect(Number(count)).toBe(bs[bs.length - 1][1]);
  }
  return seen;
}

describe('instruments', () => {
  it('counter inc and bind, with and without labels', async () => {
    const m = make();
    const c = m.counter('requests', { help: 'Requests', labelNames: ['method', 'code'] });
    c.inc({ method: 'GET', code: 200 });
    c.inc({ method: 'GET', code: '200' }, 2.5);
    const b = c.bind({ method: 'POST', code: 201 });
    b.inc();
    b.inc(4);
    const plain = m.counter('ticks_total', { help: 'Ticks' });
    plain.inc();
    plain.bind().inc(2);
    expect(m.value('myelin_requests_total', { method: 'GET', code: '200' })).toBe(3.5);
    expect(m.value('myelin_requests_total', { method: 'POST', code: '201' })).toBe(5);
    expect(m.value('myelin_requests_total')).toBe(8.5); // no labels: the sum of every series
    expect(m.value('myelin_requests', { method: 'POST' })).toBe(5); // family name, partial labels
    expect(m.value('myelin_ticks_total')).toBe(3);
    const body = await text(m);
    expect(body).toContain('# TYPE myelin_requests_total counter\n');
    expect(body).toContain('myelin_requests_total{method="GET",code="200"} 3.5\n');
    expect(body).toContain('myelin_ticks_total 3\n');
  });

  it('gauge set, inc, dec and bind; NaN, ±Inf and -0 are values', async () => {
    const m = make();
    const g = m.gauge('depth', { help: 'Depth', labelNames: ['lane'] });
    g.set({ lane: 'a' }, 5);
    g.inc({ lane: 'a' });
    g.dec({ lane: 'a' }, 3);
    const b = g.bind({ lane: 'b' });
    b.set(10);
    b.inc(2);
    b.dec();
    expect(m.value('myelin_depth', { lane: 'a' })).toBe(3);
    expect(m.value('myelin_depth', { lane: 'b' })).toBe(11);
    const s = m.gauge('special', { help: 'x', labelNames: ['k'] });
    s.set({ k: 'nan' }, Number.NaN);
    s.set({ k: 'pinf' }, Number.POSITIVE_INFINITY);
    s.set({ k: 'ninf' }, Number.NEGATIVE_INFINITY);
    s.set({ k: 'nzero' }, -0);
    const body = await text(m);
    expect(body).toContain('myelin_special{k="nan"} NaN\n');
    expect(body).toContain('myelin_special{k="pinf"} +Inf\n');
    expect(body).toContain('myelin_special{k="ninf"} -Inf\n');
    expect(body).toContain('myelin_special{k="nzero"} 0\n');
  });

  it('histogram observe and bind: inclusive bounds, canonical le, NaN and ±Inf', async () => {
    const m = make();
    const h = m.histogram('lat_seconds', { help: 'Latency', labelNames: ['route'], buckets: [0, 0.5, 1, 2] });
    for (const v of [-0, 0, 0.5, 1, 2, 2.0000001, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -5]) h.observe({ route: 'a' }, v);
    h.bind({ route: 'b' }).observe(Number.NaN);
    const body = await text(m);
    checkExposition(body, false);
    expect(body).toContain('myelin_lat_seconds_bucket{route="a",le="0.0"} 4\n'); // -0, 0, -Inf, -5
    expect(body).toContain('myelin_lat_seconds_bucket{route="a",le="0.5"} 5\n');
    expect(body).toContain('myelin_lat_seconds_bucket{route="a",le="1.0"} 6\n');
    expect(body).toContain('myelin_lat_seconds_bucket{route="a",le="2.0"} 7\n');
    expect(body).toContain('myelin_lat_seconds_bucket{route="a",le="+Inf"} 9\n');
    expect(body).toContain('myelin_lat_seconds_count{route="a"} 9\n');
    expect(body).toContain('myelin_lat_seconds_sum{route="a"} NaN\n'); // +Inf + -Inf
    // NaN: in +Inf and _count, in no finite bucket; the sum becomes NaN.
    expect(body).toContain('myelin_lat_seconds_bucket{route="b",le="2.0"} 0\n');
    expect(body).toContain('myelin_lat_seconds_bucket{route="b",le="+Inf"} 1\n');
    expect(body).toContain('myelin_lat_seconds_sum{route="b"} NaN\n');
  });

  it('default buckets, many buckets (binary search) agree with a linear count', async () => {
    const m = make();
    const bounds = Array.from({ length: 40 }, (_, i) => i / 4);
    const h = m.histogram('wide', { help: 'x', buckets: bounds });
    const vals = Array.from({ length: 500 }, (_, i) => ((i * 7919) % 1100) / 100);
    for (const v of vals) h.observe(undefined, v);
    const snap = m.snapshot().find((s) => s.name === 'myelin_wide')!;
    const buckets = snap.series[0].buckets!;
    for (const [le, n] of buckets) expect(n).toBe(vals.filter((v) => v <= le).length);
    m.histogram('dflt', { help: 'x' }).observe(undefined, 0.3);
    expect(await text(m)).toContain('myelin_dflt_bucket{le="0.5"} 1\n');
  });

  it('the same name and shape returns the same instrument; another shape throws', () => {
    const m = make();
    const a = m.histogram('h', { help: 'x', labelNames: ['a'], buckets: [1, 2] });
    expect(m.histogram('h', { help: 'other help', labelNames: ['a'], buckets: [1, 2] })).toBe(a);
    expect(code(() => m.histogram('h', { help: 'x', labelNames: ['a'], buckets: [1, 3] }))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => m.histogram('h', { help: 'x', labelNames: ['b'] }))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => m.gauge('h', { help: 'x', labelNames: ['a'] }))).toBe('ERR_INVALID_ARGUMENT');
    // a gauge whose samples would repeat the histogram's
    expect(code(() => m.gauge('h_count', { help: 'x' }))).toBe('ERR_INVALID_ARGUMENT');
    // a counter and its _total spelling are one instrument
    expect(m.counter('c', { help: 'x' })).toBe(m.counter('c_total', { help: 'x' }));
    expect(code(() => m.gauge('c', { help: 'x' }))).toBe('ERR_INVALID_ARGUMENT'); // OpenMetrics family c
  });
});

describe('bad input: ERR_INVALID_ARGUMENT and nothing recorded', () => {
  it('names', () => {
    const m = make();
    for (const name of ['1bad', 'a-b', 'a.b', '', 'é', 'a b', 42, undefined]) {
      expect(code(() => m.counter(name as string, { help: 'x' })), String(name)).toBe('ERR_INVALID_ARGUMENT');
      expect(code(() => m.gauge(name as string, { help: 'x' }))).toBe('ERR_INVALID_ARGUMENT');
      expect(code(() => m.histogram(name as string, { help: 'x' }))).toBe('ERR_INVALID_ARGUMENT');
    }
    for (const l of ['__x', '__name__', 'le-x', '1a', 'a.b', '', 5]) {
      expect(code(() => m.counter('ok', { help: 'x', labelNames: [l as string] })), String(l)).toBe('ERR_INVALID_ARGUMENT');
    }
    expect(code(() => m.histogram('h', { help: 'x', labelNames: ['le'] }))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => m.gauge('g', { help: 'x', labelNames: ['a', 'a'] }))).toBe('ERR_INVALID_ARGUMENT');
    expect(m.counter('le_ok', { help: 'x', labelNames: ['le'] })).toBeTruthy(); // le is reserved for histograms only
  });

  it('options', () => {
    const m = make();
    const bad: unknown[] = [undefined, null, 5, 'x', {}, { help: 5 }, { help: 'x', labelNames: 'a' }, { help: 'x', typo: 1 }];
    for (const o of bad) expect(code(() => m.counter('c', o as never)), JSON.stringify(o)).toBe('ERR_INVALID_ARGUMENT');
    for (const b of [[2, 1], [1, 1], [Number.NaN], [Number.NEGATIVE_INFINITY], ['1'], 'x'])
      expect(code(() => m.histogram('h', { help: 'x', buckets: b as never })), JSON.stringify(b)).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => m.gauge('g', { help: 'x', buckets: [1] } as never))).toBe('ERR_INVALID_ARGUMENT');
    for (const o of [null, 5, { prefix: '1x' }, { prefix: 'a-b' }, { maxSeries: 1 }, { maxSeries: 2.5 }, { maxSeries: Number.NaN }, { evaluationIntervalMs: -1 }, { system: 'yes' }, { register: {} }, { typo: 1 }])
      expect(code(() => new Metrics(o as never)), JSON.stringify(o)).toBe('ERR_INVALID_ARGUMENT');
  });

  it('recordings whose labels are not exactly the label names, and bad numbers', async () => {
    const m = make();
    const c = m.counter('c', { help: 'x', labelNames: ['a', 'b'] });
    const g = m.gauge('g', { help: 'x', labelNames: ['a'] });
    const h = m.histogram('h', { help: 'x', labelNames: ['a'] });
    const none = m.counter('n', { help: 'x' });
    const before = await text(m);
    const rows: Array<() => unknown> = [
      () => c.inc({ a: '1' }),
      () => c.inc({ a: '1', b: '2', z: '3' }),
      () => c.inc({ a: '1', z: '2' }),
      () => c.inc(),
      () => c.inc(null as never),
      () => c.inc({ a: '1', b: undefined as never }),
      () => c.inc({ a: '1', b: true as never }),
      () => c.inc({ a: '1', b: Number.NaN }),
      () => c.inc({ a: '1', b: '2' }, -1),
      () => c.inc({ a: '1', b: '2' }, Number.NaN),
      () => c.inc({ a: '1', b: '2' }, Number.POSITIVE_INFINITY),
      () => c.inc({ a: '1', b: '2' }, '5' as never),
      () => c.bind({ a: '1' }),
      () => c.bind({ a: '1', b: '2' }).inc(-1),
      () => c.bind({ a: '1', b: '2' }).inc(Number.NaN),
      () => none.inc({ a: '1' }),
      () => none.inc('x' as never),
      () => g.set({ a: '1' }, '5' as never),
      () => g.set({}, 5),
      () => g.inc({ a: '1' }, null as never),
      () => g.bind({ a: '1' }).set(undefined as never),
      () => h.observe({ a: '1' }, '1' as never),
      () => h.observe({ b: '1' }, 1),
      () => h.bind({ a: '1' }).observe(null as never),
    ];
    for (const [i, f] of rows.entries()) expect(code(f), `row ${i}`).toBe('ERR_INVALID_ARGUMENT');
    // Bound handles made above for valid label sets exist as zero series; nothing else changed.
    const after = await text(m);
    expect(samples(after).filter((l) => !/ 0$/.test(l))).toEqual(samples(before).filter((l) => !/ 0$/.test(l)));
  });

  it('reader and expose arguments', async () => {
    const m = make();
    m.histogram('h', { help: 'x' });
    expect(code(() => m.quantile('myelin_h', 1.5))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => m.quantile('myelin_h', Number.NaN))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => m.value(5 as never))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => m.value('myelin_h', 'a' as never))).toBe('ERR_INVALID_ARGUMENT');
    await expect(m.expose(null as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(m.expose({ accept: 5 as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(m.expose({ acceptEncoding: [] as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(code(() => m.hdrHistogram('x', { help: 'x', histogram: {} as never }))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => Metrics.attach({} as never))).toBe('ERR_INVALID_ARGUMENT');
  });
});

describe('label values and help text', () => {
  it('escapes ", \\, newlines; keeps }, emoji; replaces lone surrogates without duplicating series', async () => {
    const m = make();
    const c = m.counter('esc', { help: 'Help with "quotes", \\ and\nnewline', labelNames: ['v'] });
    const values = ['a"b', 'back\\slash', 'new\nline', 'brace}{', 'emoji 🚀', 'lone \ud800 high', 'lone \udc00 low', '', 'x=",y="'];
    for (const v of values) c.inc({ v });
    c.inc({ v: 'lone \ud801 high' }); // another lone surrogate: same rendered value as \ud800
    const prom = await text(m);
    const om = await text(m, OM);
    for (const [body, isOm] of [[prom, false], [om, true]] as const) {
      checkExposition(body, isOm);
      expect(body).toContain('{v="a\\"b"} 1\n');
      expect(body).toContain('{v="back\\\\slash"} 1\n');
      expect(body).toContain('{v="new\\nline"} 1\n');
      expect(body).toContain('{v="brace}{"} 1\n');
      expect(body).toContain('{v="emoji 🚀"} 1\n');
      expect(body).toContain('{v="lone \ufffd high"} 2\n');
      expect(body).toContain('{v="x=\\",y=\\""} 1\n');
      expect(Buffer.from(body, 'utf8').toString('utf8')).toBe(body); // valid UTF-8 round trip
    }
    expect(prom).toContain('# HELP myelin_esc_total Help with "quotes", \\\\ and\\nnewline\n');
    expect(om).toContain('# HELP myelin_esc Help with \\"quotes\\", \\\\ and\\nnewline\n');
    expect(om).toContain('# TYPE myelin_esc counter\n');
    expect(om).toContain('myelin_esc_total{v="a\\"b"} 1\n');
  });
});

describe('cardinality cap', () => {
  it('1,000,000 distinct label values: maxSeries series, totals add up, folds counted, memory bounded', async () => {
    const m = make({ maxSeries: 100 });
    const c = m.counter('hits', { help: 'x', labelNames: ['user'] });
    const heap0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < 1_000_000; i++) c.inc({ user: `u${i}` });
    const heapGrowth = process.memoryUsage().heapUsed - heap0;
    const snap = m.snapshot().find((s) => s.name === 'myelin_hits_total')!;
    expect(snap.series).toHaveLength(100);
    expect(snap.series.reduce((a, s) => a + s.value, 0)).toBe(1_000_000);
    expect(m.value('myelin_hits_total', { user: '__overflow__' })).toBe(1_000_000 - 99);
    expect(m.value('myelin_metrics_series_folded_total', { metric: 'myelin_hits_total' })).toBe(1_000_000 - 99);
    expect(heapGrowth).toBeLessThan(64 * 1024 * 1024); // no per-value state kept (a map of 1 M keys would be ~100 MB)
    const body = await text(m);
    checkExposition(body, false);
    expect(samples(body).filter((l) => l.startsWith('myelin_hits_total'))).toHaveLength(100);
    // bind past the cap folds too, per recording
    const b = c.bind({ user: 'late' });
    b.inc(3);
    expect(m.value('myelin_hits_total', { user: '__overflow__' })).toBe(1_000_000 - 99 + 3);
    expect(m.value('myelin_metrics_series_folded_total')).toBe(1_000_000 - 99 + 1);
  });

  it('defaults to 2,000 series per metric, the overflow series included', () => {
    const m = make();
    const g = m.histogram('h', { help: 'x', labelNames: ['k'] });
    for (let i = 0; i < 2500; i++) g.observe({ k: i }, 1);
    const s = m.snapshot().find((x) => x.name === 'myelin_h')!;
    expect(s.series).toHaveLength(2000);
    expect(s.series.reduce((a, x) => a + (x.count ?? 0), 0)).toBe(2500);
  });
});

describe('metamorphic: the same observations give the same exposition', () => {
  it('in any order, and split across bound and unbound handles', async () => {
    const vals = Array.from({ length: 2000 }, (_, i) => (((i * 2654435761) >>> 0) % 10000) / 1000); // 0..10, multiples of 0.001
    const render = async (order: number[], split: boolean) => {
      const m = make();
      const h = m.histogram('m', { help: 'x', labelNames: ['k'], buckets: [0.1, 1, 2.5, 5] });
      const bound = [h.bind({ k: 'a' }), h.bind({ k: 'b' })];
      for (const i of order) {
        const k = i % 2 ? 'a' : 'b';
        if (split && i % 3 === 0) bound[k === 'a' ? 0 : 1].observe(vals[i]);
        else h.observe({ k }, vals[i]);
      }
      // sums of doubles depend on order: compare them rounded, the buckets exactly
      return (await text(m)).replace(/_sum\{(.*)\} (.*)/g, (_, l, v) => `_sum{${l}} ${Number(v).toFixed(6)}`);
    };
    const idx = vals.map((_, i) => i);
    const base = await render(idx, false);
    expect(await render([...idx].reverse(), false)).toBe(base);
    expect(await render(idx, true)).toBe(base);
    const shuffled = [...idx].sort((a, b) => ((a * 7919) % 2003) - ((b * 7919) % 2003));
    expect(await render(shuffled, true)).toBe(base);
  });
});

describe('expose: negotiation and compression', () => {
  it('Prometheus by default; OpenMetrics when Accept asks; never reflects parameters', async () => {
    const m = make();
    m.counter('c', { help: 'x' }).inc();
    const cases: Array<[string | undefined, string]> = [
      [undefined, PROM],
      ['', PROM],
      ['text/plain', PROM],
      ['*/*', PROM],
      ['application/openmetrics-text', OM],
      ['application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2', OM],
      ['application/openmetrics-text; version=1.0.0; escaping=allow-utf-8; q=0.6, text/plain;q=0.5', OM],
      ['application/openmetrics-text;version=9.9.9', PROM],
      ['application/openmetrics-text;q=0.1, text/plain;q=0.9', PROM],
      ['application/openmetrics-text;q=0', PROM],
      ['application/openmetrics-text;q=garbage', PROM],
      ['garbage\r\nX-Injected: 1', PROM],
      ['application/openmetrics-text; escaping=underscores"\r\n; charset=evil', OM],
      ['\u0000\uffff;;;,,,', PROM],
      ['x'.repeat(100_000), PROM],
      ['application/json', PROM],
    ];
    for (const [accept, want] of cases) {
      const r = await m.expose({ accept });
      expect(r.contentType, String(accept).slice(0, 80)).toBe(want);
      expect(r.contentType).not.toMatch(/escaping|evil|Injected/);
    }
  });

  it('gzip when Accept-Encoding allows it', async () => {
    const m = make();
    m.counter('c', { help: 'x' }).inc();
    const plain = await text(m, OM);
    for (const ae of ['gzip', 'br, gzip;q=0.5', '*', 'deflate, *;q=0.1']) {
      const r = await m.expose({ accept: OM, acceptEncoding: ae });
      expect(r.contentEncoding, ae).toBe('gzip');
      expect(gunzipSync(r.body as Buffer).toString('utf8')).toBe(plain);
    }
    for (const ae of ['', 'br', 'gzip;q=0', 'identity', '*;q=0', 'gzip;q=0, *']) {
      const r = await m.expose({ acceptEncoding: ae });
      expect(r.contentEncoding, ae).toBeUndefined();
      expect(r.body.toString('utf8')).toBe(await text(m));
    }
  });

  it('10,000 histogram series render in slices: the loop runs during the scrape', async () => {
    const m = make({ maxSeries: 20_000 });
    const h = m.histogram('big_seconds', { help: 'x', labelNames: ['route', 'code'] });
    for (let i = 0; i < 10_000; i++) h.observe({ route: `/r${i % 1000}`, code: 200 + Math.floor(i / 1000) }, i / 1000);
    let ticks = 0;
    const t = setInterval(() => ticks++, 0);
    const r = await m.expose();
    clearInterval(t);
    const body = r.body.toString('utf8');
    expect(samples(body).filter((l) => l.startsWith('myelin_big_seconds_count'))).toHaveLength(10_000);
    expect(ticks).toBeGreaterThan(0);
    checkExposition(body, false);
  });
});

describe('reader', () => {
  it('snapshot, value and quantile', () => {
    const m = make();
    const h = m.histogram('q', { help: 'x', labelNames: ['k'], buckets: [1, 2, 4] });
    for (const v of [0.5, 1.5, 1.5, 3, 10]) h.observe({ k: 'a' }, v);
    h.observe({ k: 'b' }, 0.5);
    const s = m.snapshot().find((x) => x.name === 'myelin_q')!;
    expect(s.type).toBe('histogram');
    expect(s.series[0]).toEqual({ labels: { k: 'a' }, value: 16.5, count: 5, buckets: [[1, 1], [2, 3], [4, 4], [Number.POSITIVE_INFINITY, 5]] });
    expect(m.value('myelin_q', { k: 'a' })).toBe(16.5);
    expect(m.value('myelin_q', { k: 'zz' })).toBeUndefined();
    expect(m.value('nope')).toBeUndefined();
    expect(m.quantile('myelin_q', 0.5, { k: 'a' })).toBeCloseTo(1.75); // rank 2.5 in (1,2]: 1 + 1*(1.5/2)
    expect(m.quantile('myelin_q', 1, { k: 'a' })).toBe(4); // in +Inf: the highest finite bound
    expect(m.quantile('myelin_q', 0.5)).toBeCloseTo(1.5); // both series: rank 3 of 6, in (1,2]
    expect(m.quantile('myelin_q', 0.5, { k: 'none' })).toBeUndefined();
    expect(m.quantile('nope', 0.5)).toBeUndefined();
  });

  it("alerts: a rule on one of our series fires through metrics.on('alert')", async () => {
    const m = make({ evaluationIntervalMs: 10, defaultRules: false });
    const g = m.gauge('queue_depth', { help: 'x' });
    const fired = new Promise<{ name: string; status: string; value: number }>((resolve) => m.on('alert', resolve));
    m.alerts.add({ name: 'deep', when: { metric: 'myelin_queue_depth', above: 100 } });
    expect(m.alerts.list().map((x) => x.rule.name)).toEqual(['deep']);
    g.set(undefined, 500);
    expect(await fired).toMatchObject({ name: 'deep', status: 'firing', value: 500 });
  });
});

describe('hdrHistogram: the bus latency histogram exposed as a summary', () => {
  it('reads the snapshot at scrape time', async () => {
    const m = make();
    const hist = createLocalHistogram();
    const rec = new HistogramRecorder(hist);
    for (let i = 1; i <= 1000; i++) rec.record(i * 1000); // 1..1000 us in ns
    m.hdrHistogram('bus_latency_hdr_seconds', { help: 'Bus latency', histogram: hist });
    const body = await text(m, OM);
    checkExposition(body, true);
    expect(body).toContain('# TYPE myelin_bus_latency_hdr_seconds summary\n');
    expect(body).toContain('myelin_bus_latency_hdr_seconds_count 1000\n');
    const p50 = Number(/myelin_bus_latency_hdr_seconds\{quantile="0.5"\} (\S+)/.exec(body)![1]);
    expect(p50).toBeGreaterThan(0.000495);
    expect(p50).toBeLessThan(0.000505);
    expect(code(() => m.hdrHistogram('bus_latency_hdr_seconds', { help: 'x', histogram: hist }))).toBe('ERR_INVALID_ARGUMENT');
    rec.close();
  });
});

describe('prom-client Registry', () => {
  it("myelin's series appear in the registry and the registry's in expose()", async () => {
    const register = new client.Registry();
    register.setDefaultLabels({ app: 'demo' });
    const theirs = new client.Counter({ name: 'user_jobs_total', help: 'Jobs "done"', labelNames: ['kind'], registers: [register] });
    theirs.inc({ kind: 'a"b' }, 2);
    const theirH = new client.Histogram({ name: 'user_lat', help: 'lat', buckets: [1, 5], registers: [register] });
    theirH.observe(3);
    const m = make({ register });
    m.counter('ours', { help: 'ours', labelNames: ['x'] }).inc({ x: 'y' }, 7);
    m.histogram('ours_h', { help: 'h', buckets: [1] }).observe(undefined, 0.5);
    const fromRegistry = await register.metrics();
    expect(fromRegistry).toContain('myelin_ours_total{x="y",app="demo"} 7');
    expect(fromRegistry).toContain('myelin_ours_h_bucket{le="1.0",app="demo"} 1');
    for (const [accept, om] of [[undefined, false], [OM, true]] as const) {
      const body = await text(m, accept);
      const seen = checkExposition(body, om);
      expect(seen.get('myelin_ours_total{x="y"}')).toBe('7');
      expect(seen.get('user_jobs_total{app="demo",kind="a\\"b"}')).toBe('2');
      expect(seen.get('user_lat_bucket{app="demo",le="5.0"}')).toBe('1');
      expect(body.match(/myelin_ours_total/g)).toHaveLength(om ? 1 : 3); // not repeated through the registry
      if (om) expect(body).toContain('# TYPE user_jobs counter\n');
    }
    // a name the registry already has
    new client.Gauge({ name: 'myelin_taken', help: 'x', registers: [register] });
    expect(code(() => m.gauge('taken', { help: 'x' }))).toBe('ERR_INVALID_ARGUMENT');
    m.close();
    expect(await register.metrics()).not.toContain('myelin_ours');
  });
});

describe('worker threads', () => {
  it('record into the same series through shared pages', async () => {
    const m = make({ maxSeries: 10 });
    const h = m.histogram('work_seconds', { help: 'x', labelNames: ['t'], buckets: [1, 2] });
    h.observe({ t: 'main' }, 1.5);
    const c = m.counter('work', { help: 'x', labelNames: ['t'] });
    c.inc({ t: 'shared' }, 1);
    const share = m.shareWith();
    const w = new Worker(
      `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.url).then(async ({ Metrics }) => {
        const wm = Metrics.attach(workerData.share);
        const h = wm.histogram('work_seconds', { help: 'x', labelNames: ['t'], buckets: [1, 2] }).bind({ t: 'worker' });
        for (let i = 0; i < 1000; i++) h.observe(i % 3);
        const c = wm.counter('work', { help: 'x', labelNames: ['t'] });
        c.inc({ t: 'shared' }, 41);
        for (let i = 0; i < 50; i++) c.inc({ t: 'w' + i });
        wm.counter('clash', { help: 'x' }).inc();
        await wm.flush();
        parentPort.postMessage('done');
        // keeps recording after the announcement: seen without another message
        h.observe(0.5);
        parentPort.postMessage('more');
      });`,
      { eval: true, workerData: { share, url: new URL('../../dist/esm/index.js', import.meta.url).href }, transferList: [share.port] },
    );
    m.gauge('clash_total', { help: 'x' }); // the worker's counter clash exposes clash_total too
    const msgs: string[] = [];
    await new Promise<void>((resolve, reject) => {
      w.on('message', (x: string) => {
        msgs.push(x);
        if (x === 'more') resolve();
      });
      w.on('error', reject);
    });
    await w.terminate();
    expect(m.value('myelin_work_total', { t: 'shared' })).toBe(42);
    expect(m.value('myelin_work_seconds', { t: 'main' })).toBe(1.5);
    const snap = m.snapshot().find((s) => s.name === 'myelin_work_seconds')!;
    const ws = snap.series.find((s) => s.labels.t === 'worker')!;
    expect(ws.count).toBe(1001);
    expect(ws.buckets![0][1]).toBe(334 + 333 + 1); // 0s, 1s and the 0.5 after the flush
    // cap across threads: 10 series, the rest folded, totals add up
    expect(m.value('myelin_work_total')).toBe(92);
    expect(m.snapshot().find((s) => s.name === 'myelin_work_total')!.series).toHaveLength(10);
    expect(m.errors).toBe(1); // the clashing family
    checkExposition(await text(m), false);
  });
});
