// `myelin serve` configuration: the JSON file's schema (zod), the environment variables
// that override it and the flags that override both. Precedence, highest first:
//   --port/--host flags > MYELIN_* and provider env vars > the config file > defaults.
//
// Every problem is reported at once, one `path: message` line each, in one
// ERR_INVALID_ARGUMENT (also carried as `issues` on the error). Secrets (API keys, auth
// tokens, header values) are never quoted: their schemas say what was expected and not
// what was given, and the JSON parse error never quotes the file's text.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { MyelinError } from '../errors.js';
import type { ModelRoute, ProviderConfig } from '../ai/client/options.js';

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_OLLAMA_URL = 'http://127.0.0.1:11434';
/** Looked for in the working directory when --config is not given. */
export const DEFAULT_CONFIG_FILE = 'myelin.config.json';

/** The longest delay setTimeout honours; the AIClient refuses more for timer-armed durations. */
const TIMER_MAX_MS = 2_147_483_647;

// ---- value formatting for messages ----------------------------------------------------

/** How a given (non-secret) value is shown after "got". */
function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v === 'object' ? 'JSON object' : typeof v}`;
}

type IssueLike = { input?: unknown; code?: string };

/** An error callback: "expected <what>, got <value>", or "required (<what>)" when missing. */
function expected(what: string) {
  return (iss: IssueLike) => (iss.input === undefined && iss.code === 'invalid_type' ? `required (${what})` : `expected ${what}, got ${show(iss.input)}`);
}

/** The same for a secret: the value given is never shown. */
function expectedSecret(what: string) {
  return (iss: IssueLike) => (iss.input === undefined && iss.code === 'invalid_type' ? `required (${what})` : `expected ${what}`);
}

// ---- field schemas ---------------------------------------------------------------------

function intIn(min: number, max: number) {
  const what = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
  const e = { error: expected(what) };
  return z.int(e).min(min, e).max(max, e);
}

/** A finite number >= min (or > min when `exclusive`) and <= max. */
function numIn(min: number, max: number, exclusive = false) {
  const top = max === Number.MAX_SAFE_INTEGER ? '' : max;
  const what = exclusive ? `a number above ${min}${top === '' ? '' : ` and at most ${top}`}` : top === '' ? `a number >= ${min}` : `a number from ${min} to ${top}`;
  const e = { error: expected(what) };
  const base = z.number(e).max(max, e);
  return exclusive ? base.gt(min, e) : base.min(min, e);
}

const durationMs = numIn(0, TIMER_MAX_MS, true);
const delayMs = numIn(0, TIMER_MAX_MS);
const windowMs = numIn(0, Number.MAX_SAFE_INTEGER, true);

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: expected(`one of ${values.map((v) => `'${v}'`).join(', ')}`) });
}

/** A credential: non-empty, no whitespace or control characters (they break headers). Never quoted. */
function secret(what: string) {
  const e = { error: expectedSecret(what) };
  return z.string(e).regex(/^[^\s\x00-\x1f\x7f]+$/, e);
}

const hostName = z.string({ error: expected('a host name or IP address') }).regex(/^[A-Za-z0-9.:_%-]+$/, { error: expected('a host name or IP address') });

/** An absolute http(s) URL without credentials or fragment; not quoted (a URL may carry a key). */
const httpURL = z.string({ error: expectedSecret('an absolute http(s) URL') }).refine(
  (s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.password === '' && u.hash === '';
    } catch {
      return false;
    }
  },
  { error: 'expected an absolute http(s) URL without credentials or fragment' },
);

/** The name of an environment variable (the value is looked up at load time). */
const envName = z.string({ error: expected('an environment variable name') }).regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: expected('an environment variable name') });

const NAME_RE = /^[A-Za-z0-9_.-]+$/;
const providerName = z.string({ error: expected("a name of letters, digits, '_', '.' or '-'") }).regex(NAME_RE, {
  error: expected("a name of letters, digits, '_', '.' or '-'"),
});
const target = z.string({ error: expected("a 'provider/model' string") }).regex(/^[^/]+\/.+$/, { error: expected("a 'provider/model' string") });

const providerSchema = z.strictObject({
  name: providerName,
  kind: oneOf(['openai', 'anthropic', 'ollama']),
  baseURL: httpURL.optional(),
  apiKey: secret('a non-empty key without spaces or control characters').optional(),
  /** The name of an environment variable holding the key: keeps the key out of the file. */
  apiKeyEnv: envName.optional(),
  headers: z
    .record(
      z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'expected an HTTP header name' }),
      z.string({ error: expectedSecret('a header value string') }).regex(/^[^\r\n\0]*$/, { error: expectedSecret('a header value without CR, LF or NUL') }),
      { error: expected('an object of header names to values') },
    )
    .optional(),
  connections: intIn(1, 4096).optional(),
  anthropicVersion: z.string({ error: expected('a version string') }).regex(/^[\w.-]+$/, { error: expected('a version string') }).optional(),
  defaultMaxTokens: intIn(1, Number.MAX_SAFE_INTEGER).optional(),
});

/**
 * A value of one of several shapes, told apart by its JSON type before any check runs,
 * so that the message is about the shape the user wrote: zod's own union reports the
 * failures of only some branches (an enum mismatch inside the object form came out as
 * "expected a string or an object").
 */
function either<T>(what: string, branches: Array<[(v: unknown) => boolean, z.ZodType]>): z.ZodType<T> {
  return z.custom<T>().superRefine((v, ctx) => {
    const branch = branches.find(([is]) => is(v));
    if (!branch) {
      ctx.addIssue({ code: 'custom', message: expected(what)({ input: v }) });
      return;
    }
    const r = branch[1].safeParse(v);
    if (!r.success) for (const i of issueLines(branch[1], r.error.issues)) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
  });
}

const isString = (v: unknown) => typeof v === 'string';
const isObject = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);

const routeSchema = either<ModelRoute | string>("a 'provider/model' string or { strategy, targets, hedgeAfterMs }", [
  [isString, target],
  [
    isObject,
    z.strictObject({
      strategy: oneOf(['fallback', 'weighted', 'least-latency']).optional(),
      targets: z
        .array(
          either<string | { target: string; weight?: number }>("a 'provider/model' string or { target, weight }", [
            [isString, target],
            [isObject, z.strictObject({ target, weight: numIn(0, Number.MAX_SAFE_INTEGER, true).optional() })],
          ]),
          { error: expected('a non-empty array of targets') },
        )
        .min(1, { error: expected('a non-empty array of targets') }),
      hedgeAfterMs: delayMs.optional(),
    }),
  ],
]);

const aiSchema = z.strictObject({
  providers: z
    .array(providerSchema, { error: expected('an array of providers') })
    .superRefine((list, ctx) => {
      const seen = new Set<string>();
      list.forEach((p, i) => {
        if (seen.has(p.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `'${p.name}' is used by an earlier provider` });
        seen.add(p.name);
      });
    })
    .optional(),
  models: z
    .record(z.string().regex(/^[^/]+$/, { error: "an alias cannot contain '/' (it would shadow a 'provider/model' target)" }), routeSchema, {
      error: expected('an object of alias to route'),
    })
    .optional(),
  retry: z
    .strictObject({
      attempts: intIn(1, 100).optional(),
      minDelayMs: delayMs.optional(),
      maxDelayMs: delayMs.optional(),
      deadlineMs: durationMs.optional(),
    })
    .optional(),
  breaker: z
    .strictObject({
      failureRate: numIn(0, 1, true).optional(),
      minRequests: intIn(1, Number.MAX_SAFE_INTEGER).optional(),
      windowMs: windowMs.optional(),
      openMs: windowMs.optional(),
    })
    .optional(),
  limits: z
    .record(
      z.string(),
      z.strictObject({
        rpm: numIn(0, Number.MAX_SAFE_INTEGER, true).optional(),
        tpm: numIn(0, Number.MAX_SAFE_INTEGER, true).optional(),
        onStoreError: oneOf(['open', 'closed']).optional(),
      }),
      { error: expected('an object of provider (or provider/model) to { rpm, tpm }') },
    )
    .optional(),
  cache: z
    .unknown()
    .pipe(
      either<false | { ttlMs?: number; maxEntries?: number }>('false or { ttlMs, maxEntries }', [
        [(v) => v === false, z.literal(false)],
        [isObject, z.strictObject({ ttlMs: windowMs.optional(), maxEntries: intIn(1, Number.MAX_SAFE_INTEGER).optional() })],
      ]),
    )
    .optional(),
  timeouts: z
    .strictObject({
      requestMs: durationMs.optional(),
      firstTokenMs: durationMs.optional(),
      idleMs: durationMs.optional(),
      connectMs: durationMs.optional(),
    })
    .optional(),
});

// ---- cluster ---------------------------------------------------------------------------

/** A configuration entry's name in the cluster store (bus.cluster.getConfig's rule). */
export const CONFIG_NAME_RE = /^[A-Za-z0-9_-]{1,128}$/;
const configName = z.string({ error: expected("a name of 1 to 128 letters, digits, '_' or '-'") }).regex(CONFIG_NAME_RE, {
  error: expected("a name of 1 to 128 letters, digits, '_' or '-'"),
});

/** A URL of one of `schemes`; never quoted (a URL may carry a password). */
function schemeURL(schemes: readonly string[]) {
  const what = `a ${schemes.map((s) => `${s}://`).join(' or ')} URL`;
  return z.string({ error: expectedSecret(what) }).refine(
    (s) => {
      try {
        return schemes.includes(new URL(s).protocol.slice(0, -1));
      } catch {
        return false;
      }
    },
    { error: `expected ${what}` },
  );
}

const NATS_SCHEMES = ['nats', 'tls', 'ws', 'wss'] as const;
const REDIS_SCHEMES = ['redis', 'rediss'] as const;

/**
 * `bus.transport`: what `new Bus({ transport })` takes. The kind and the fields that
 * locate the engine are checked here; the rest passes through to the bus, which checks
 * every field (its ERR_INVALID_ARGUMENT is shown as a config error by serve).
 */
const transportSchema = either<{ kind: 'nats' | 'redis'; [k: string]: unknown }>("{ kind: 'nats', servers } or { kind: 'redis', url }", [
  [
    (v) => isObject(v) && (v as { kind?: unknown }).kind === 'nats',
    z.looseObject({
      kind: z.literal('nats'),
      servers: either<string | string[]>('a nats:// URL or a non-empty array of them', [
        [isString, schemeURL(NATS_SCHEMES)],
        [Array.isArray, z.array(schemeURL(NATS_SCHEMES)).min(1, { error: 'expected a non-empty array of nats:// URLs' })],
      ]),
      stream: z
        .unknown()
        .pipe(
          either<string | false>("a JetStream stream name (letters, digits, '_', '-') or false", [
            [(v) => v === false, z.literal(false)],
            [isString, z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { error: expected("a JetStream stream name (letters, digits, '_', '-')") })],
          ]),
        )
        .optional(),
    }),
  ],
  [
    (v) => isObject(v) && (v as { kind?: unknown }).kind === 'redis',
    z.looseObject({
      kind: z.literal('redis'),
      url: schemeURL(REDIS_SCHEMES),
      prefix: z.string({ error: expected('a non-empty key prefix') }).min(1, { error: expected('a non-empty key prefix') }).optional(),
    }),
  ],
  [isObject, z.object({ kind: oneOf(['nats', 'redis']) })],
]);

/** The transport `MYELIN_BUS_TRANSPORT` names: the scheme picks the kind; NATS takes a comma-separated list. */
export function transportFromURL(raw: string): { kind: 'nats'; servers: string | string[] } | { kind: 'redis'; url: string } | undefined {
  const list = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const scheme = /^([a-z]+):\/\//i.exec(list[0] ?? '')?.[1]?.toLowerCase();
  if (scheme === 'redis' || scheme === 'rediss') return list.length === 1 ? { kind: 'redis', url: list[0] } : undefined;
  if (scheme !== undefined && (NATS_SCHEMES as readonly string[]).includes(scheme)) return { kind: 'nats', servers: list.length === 1 ? list[0] : list };
  return undefined;
}

const clusterSchema = z.strictObject({
  /** The configuration entry (bus.cluster store) this node takes its `ai` section from, and follows. */
  config: configName.optional(),
  /** How often the entry is read for a new version, ms (default 1000). */
  pollMs: intIn(100, 3_600_000).optional(),
});

const fields = {
  port: intIn(0, 65535),
  host: hostName,
  ioThreads: intIn(1, 1024),
  io: oneOf(['auto', 'epoll', 'io_uring']),
  token: secret('a non-empty token without spaces, commas or control characters').regex(/^[^,]+$/, {
    error: expectedSecret('a non-empty token without spaces, commas or control characters'),
  }),
  secretKey: secret('a non-empty key without spaces or control characters'),
  url: httpURL,
};

export const serveConfigSchema = z.strictObject({
  /** Lets editors find a JSON Schema; ignored. */
  $schema: z.string().optional(),
  port: fields.port.optional(),
  host: fields.host.optional(),
  ioThreads: fields.ioThreads.optional(),
  io: fields.io.optional(),
  maxPayloadBytes: intIn(1, 2 ** 31 - 1).optional(),
  maxConnections: intIn(1, 10_000_000).optional(),
  auth: z.strictObject({ tokens: z.array(fields.token, { error: expected('an array of tokens') }) }).optional(),
  bus: z
    .strictObject({
      capacity: intIn(1, 2 ** 30).optional(),
      overflow: oneOf(['wait', 'reject', 'drop-oldest', 'drop-newest']).optional(),
      transport: transportSchema.optional(),
    })
    .optional(),
  ai: aiSchema.optional(),
  cluster: clusterSchema.optional(),
  simulator: z
    .strictObject({
      latencyMs: numIn(0, TIMER_MAX_MS).optional(),
      tokensPerS: numIn(0, Number.MAX_SAFE_INTEGER).optional(),
    })
    .optional(),
});

/** The config file as written (every key optional). */
export type ServeConfigFile = z.infer<typeof serveConfigSchema>;

/** The `ai` section, as written (file or cluster entry). */
export type AISection = z.infer<typeof aiSchema>;

/**
 * A configuration entry in the cluster store (`myelin config put`, `cluster.config`):
 * an `ai` section, with the same schema as the config file's.
 */
export const clusterEntrySchema = z.strictObject({
  $schema: z.string().optional(),
  ai: aiSchema,
});

export type ClusterEntry = z.infer<typeof clusterEntrySchema>;

export type TransportOption = { kind: 'nats' | 'redis'; [k: string]: unknown };

/** The configuration `serve` runs with: the file, env and flags merged over the defaults. */
export interface ServeConfig {
  port: number;
  host: string;
  ioThreads?: number;
  io?: 'auto' | 'epoll' | 'io_uring';
  maxPayloadBytes?: number;
  maxConnections?: number;
  /** Empty means no auth. */
  tokens: string[];
  bus: { capacity?: number; overflow?: 'wait' | 'reject' | 'drop-oldest' | 'drop-newest'; transport?: TransportOption };
  /** Configuration sync: the entry `ai` comes from, and how often it is read. */
  cluster: { config?: string; pollMs?: number };
  ai: ResolvedAI;
  simulator: { latencyMs?: number; tokensPerS?: number };
  /** Where discovery looks for an OpenAI-compatible local server (OLLAMA_HOST, else 127.0.0.1:11434). */
  ollamaURL: string;
  /** The config file read, if any (absolute path). */
  configFile?: string;
  /** Names (never values) of the environment variables that took effect, for the log. */
  envUsed: string[];
}

/** An `ai` section with keys from the environment resolved: what the AIClient is built from. */
export interface ResolvedAI {
  /** Configured providers (file and env); empty means "discover" (serve-providers.ts). */
  providers: ProviderConfig[];
  models: Record<string, ModelRoute | string>;
  retry?: AISection['retry'];
  breaker?: AISection['breaker'];
  limits?: AISection['limits'];
  cache?: AISection['cache'];
  timeouts?: AISection['timeouts'];
}

// ---- issue formatting ------------------------------------------------------------------

export interface ConfigIssue {
  /** Where: a config path (`ai.providers[0].kind`), an env variable or a flag. */
  path: string;
  message: string;
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else {
      const s = String(p);
      out += /^[A-Za-z_$][\w$-]*$/.test(s) ? (out === '' ? s : `.${s}`) : `[${JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}...` : s)}]`;
    }
  }
  return out;
}

/** The keys a strict object at `path` knows, for "unknown key" messages (undefined when not found). */
function knownKeys(schema: z.ZodType, path: ReadonlyArray<PropertyKey>): string[] | undefined {
  let s: z.ZodType | undefined = schema;
  const unwrap = (t: z.ZodType): z.ZodType => {
    let cur = t;
    for (;;) {
      if (cur instanceof z.ZodOptional) cur = cur.unwrap() as z.ZodType;
      else if (cur instanceof z.ZodPipe) cur = cur.in as z.ZodType;
      else return cur;
    }
  };
  const objectIn = (t: z.ZodType): z.ZodObject | undefined => {
    const u = unwrap(t);
    if (u instanceof z.ZodObject) return u;
    if (u instanceof z.ZodUnion) for (const o of u.options as z.ZodType[]) if (unwrap(o) instanceof z.ZodObject) return unwrap(o) as z.ZodObject;
    return undefined;
  };
  for (const p of path) {
    if (!s) return undefined;
    const u = unwrap(s);
    if (u instanceof z.ZodArray) s = u.element as z.ZodType;
    else if (u instanceof z.ZodRecord) s = u.valueType as z.ZodType;
    else {
      const o = objectIn(u);
      s = o ? (o.shape as Record<string, z.ZodType>)[String(p)] : undefined;
    }
    // A union of an object and other forms (a route, a target): descend into the object.
    if (s && typeof p !== 'number' && unwrap(s) instanceof z.ZodUnion) s = objectIn(s) ?? s;
  }
  if (!s) return undefined;
  const o = objectIn(s);
  return o ? Object.keys(o.shape).filter((k) => k !== '$schema') : undefined;
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = t;
    }
  }
  return d[b.length];
}

/** The known key a typo most likely meant: a small edit away, or sharing its first four letters. */
function nearest(key: string, known: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  let best: string | undefined;
  let bestScore = Infinity;
  for (const cand of known) {
    const c = cand.toLowerCase();
    const d = editDistance(c, k);
    const close = d <= (k.length >= 4 ? 2 : 1) || (k.length >= 4 && c.slice(0, 4) === k.slice(0, 4));
    if (close && d < bestScore) {
      best = cand;
      bestScore = d;
    }
  }
  return best;
}

/** zod issues as path + message, an unknown key with the known ones and a near match. */
function issueLines(schema: z.ZodType, issues: readonly z.core.$ZodIssue[]): Array<{ path: PropertyKey[]; message: string }> {
  const out: Array<{ path: PropertyKey[]; message: string }> = [];
  for (const iss of issues) {
    if (iss.code === 'unrecognized_keys') {
      const known = knownKeys(schema, iss.path) ?? [];
      for (const key of iss.keys) {
        const near = nearest(key, known);
        out.push({
          path: [...iss.path, key],
          message: `unknown key${near ? `; did you mean '${near}'?` : ''}${known.length ? ` (known: ${known.join(', ')})` : ''}`,
        });
      }
    } else if (iss.code === 'invalid_key') {
      out.push({ path: [...iss.path], message: `invalid key: ${iss.issues.map((i) => i.message).join('; ')}` });
    } else {
      out.push({ path: [...iss.path], message: iss.message });
    }
  }
  return out;
}

/** zod issues as `path: message` lines (see issueLines), each once. */
export function describeIssues(schema: z.ZodType, issues: readonly z.core.$ZodIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  const out: ConfigIssue[] = [];
  for (const i of issueLines(schema, issues)) {
    const line = { path: formatPath(i.path) || '(root)', message: i.message };
    // A value past two checks (an integer past max) yields the same line twice.
    const k = `${line.path}\0${line.message}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(line);
  }
  return out;
}

function configError(title: string, issues: ConfigIssue[]): MyelinError {
  const lines = issues.map((i) => `${i.path}: ${i.message}`).join('\n');
  return new MyelinError('ERR_INVALID_ARGUMENT', `${title}\n${lines}`, { issues });
}

/** Validates a parsed config file; throws ERR_INVALID_ARGUMENT listing every problem. */
export function parseServeConfig(value: unknown, source = 'config'): ServeConfigFile {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw configError(`${source} is not a valid myelin serve config:`, [{ path: '(root)', message: `expected a JSON object, got ${show(value)}` }]);
  }
  const r = serveConfigSchema.safeParse(value);
  if (!r.success) throw configError(`${source} is not a valid myelin serve config:`, describeIssues(serveConfigSchema, r.error.issues));
  return r.data;
}

/** Validates a cluster configuration entry ({ ai }); throws ERR_INVALID_ARGUMENT listing every problem. */
export function parseClusterEntry(value: unknown, source = 'configuration entry'): ClusterEntry {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw configError(`${source} is not a valid myelin configuration entry:`, [{ path: '(root)', message: `expected a JSON object such as { "ai": { ... } }, got ${show(value)}` }]);
  }
  const r = clusterEntrySchema.safeParse(value);
  if (!r.success) throw configError(`${source} is not a valid myelin configuration entry:`, describeIssues(clusterEntrySchema, r.error.issues));
  return r.data;
}

/** Reads and validates a config file. The JSON error says where, never what the text was. */
export function readServeConfigFile(file: string): ServeConfigFile {
  return parseServeConfig(readJSONFile(file, 'config file'), `config file ${file}`);
}

/** Reads a JSON file; ERR_INVALID_ARGUMENT says what is wrong and where, never the text. */
export function readJSONFile(file: string, what = 'file'): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'not found' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (code ?? 'cannot be read');
    throw new MyelinError('ERR_INVALID_ARGUMENT', `${what} ${file}: ${why}`, { cause: err });
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // V8's message may quote the text around the error, which may be a key: give the place only.
    const m = /position (\d+)/.exec((err as Error).message);
    let where = '';
    if (m) {
      const pos = Number(m[1]);
      const before = text.slice(0, pos).split('\n');
      where = ` at line ${before.length}, column ${before[before.length - 1].length + 1}`;
    } else if (/end of (JSON )?input/i.test((err as Error).message)) where = ' (it ends too early)';
    throw new MyelinError('ERR_INVALID_ARGUMENT', `${what} ${file}: not valid JSON${where}`);
  }
  return value;
}

// ---- environment and flags ---------------------------------------------------------------

export type Env = Readonly<Record<string, string | undefined>>;

export interface ServeFlags {
  config?: string;
  port?: string;
  host?: string;
}

/** Numbers come in as numbers when they look like integers, else as the string (quoted in the message). */
function intish(raw: string): unknown {
  return /^\d+$/.test(raw) ? Number(raw) : raw;
}

/** Accepts Ollama's own OLLAMA_HOST forms: `host`, `host:port`, `http(s)://host[:port]`; 0.0.0.0 means this machine. */
export function ollamaURLFrom(raw: string): string {
  let s = raw.trim();
  if (!/^[a-z]+:\/\//i.test(s)) s = `http://${s}`;
  try {
    const u = new URL(s);
    // Left whole for the URL check to refuse (never quoted): dropping them silently would hide a mistake.
    if (u.username !== '' || u.password !== '') return s;
    if (u.port === '' && u.protocol === 'http:' && !/:\d+$/.test(raw.trim())) u.port = '11434';
    if (u.hostname === '0.0.0.0') u.hostname = '127.0.0.1';
    if (u.hostname === '[::]') u.hostname = '[::1]';
    return u.origin;
  } catch {
    return s;
  }
}

class Collector {
  readonly issues: ConfigIssue[] = [];
  check<T>(schema: z.ZodType<T>, value: unknown, name: string): T | undefined {
    const r = schema.safeParse(value);
    if (r.success) return r.data;
    for (const i of describeIssues(schema, r.error.issues)) this.issues.push({ path: i.path === '(root)' ? name : `${name}${i.path.startsWith('[') ? '' : '.'}${i.path}`, message: i.message });
    return undefined;
  }
}

function setEnv(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/** Adds a provider named `name` from env, or fills in the one the file has under that name. */
function applyProviderEnv(providers: ProviderConfig[], name: 'openai' | 'anthropic', apiKey: string | undefined, baseURL: string | undefined): void {
  if (apiKey === undefined && baseURL === undefined) return;
  const i = providers.findIndex((p) => p.name === name);
  const patch: Partial<ProviderConfig> = {};
  if (apiKey !== undefined) patch.apiKey = apiKey;
  if (baseURL !== undefined) patch.baseURL = baseURL;
  if (i === -1) providers.push({ name, kind: name, ...patch });
  else providers[i] = { ...providers[i], ...patch };
}

export interface LoadOptions {
  flags?: ServeFlags;
  env?: Env;
  /** Where a relative --config and the default config file are looked up. Default process.cwd(). */
  cwd?: string;
}

/**
 * The configuration `serve` runs with: the config file (--config, else
 * ./myelin.config.json when it exists), then the environment, then the flags.
 */
export function loadServeConfig(opts: LoadOptions = {}): ServeConfig {
  const env = opts.env ?? process.env;
  const flags = opts.flags ?? {};
  const cwd = opts.cwd ?? process.cwd();
  let file: ServeConfigFile = {};
  let configFile: string | undefined;
  if (flags.config !== undefined) {
    configFile = resolve(cwd, flags.config);
    file = readServeConfigFile(configFile);
  } else {
    const candidate = resolve(cwd, DEFAULT_CONFIG_FILE);
    if (existsSync(candidate)) {
      configFile = candidate;
      file = readServeConfigFile(candidate);
    }
  }

  const c = new Collector();
  const envUsed: string[] = [];
  const fromEnv = <T>(name: string, schema: z.ZodType<T>, parse: (raw: string) => unknown = (s) => s): T | undefined => {
    const raw = setEnv(env, name);
    if (raw === undefined) return undefined;
    envUsed.push(name);
    return c.check(schema, parse(raw), name);
  };
  const envPort = fromEnv('MYELIN_PORT', fields.port, intish);
  const envHost = fromEnv('MYELIN_HOST', fields.host);
  const envIo = fromEnv('MYELIN_IO', fields.io);
  const envIoThreads = fromEnv('MYELIN_IO_THREADS', fields.ioThreads, intish);
  let envTokens: string[] | undefined;
  const rawTokens = setEnv(env, 'MYELIN_TOKENS');
  if (rawTokens !== undefined) {
    envUsed.push('MYELIN_TOKENS');
    const list = rawTokens.split(',').map((t) => t.trim()).filter((t) => t !== '');
    if (list.length === 0) c.issues.push({ path: 'MYELIN_TOKENS', message: 'expected a comma-separated list of tokens' });
    else {
      const ok = list.map((t, i) => c.check(fields.token, t, `MYELIN_TOKENS (token ${i + 1} of ${list.length})`));
      if (ok.every((t) => t !== undefined)) envTokens = ok as string[];
    }
  }
  const ollamaURL = fromEnv('OLLAMA_HOST', fields.url, ollamaURLFrom) ?? DEFAULT_OLLAMA_URL;

  const flagPort = flags.port === undefined ? undefined : c.check(fields.port, intish(flags.port), '--port');
  const flagHost = flags.host === undefined ? undefined : c.check(fields.host, flags.host, '--host');

  let transport: TransportOption | undefined = file.bus?.transport;
  const rawTransport = setEnv(env, 'MYELIN_BUS_TRANSPORT');
  if (rawTransport !== undefined) {
    envUsed.push('MYELIN_BUS_TRANSPORT');
    const t = transportFromURL(rawTransport);
    // The URL may carry a password: never quoted.
    if (t === undefined) c.issues.push({ path: 'MYELIN_BUS_TRANSPORT', message: 'expected a nats:// URL (or a comma-separated list of them) or a redis:// URL' });
    // The same engine as the file's: only where it is changes; the file's other settings stay.
    else transport = transport?.kind === t.kind ? { ...transport, ...t } : t;
  }
  const envClusterConfig = fromEnv('MYELIN_CLUSTER_CONFIG', configName);

  const ai = resolveAI(file.ai, env, c, envUsed, 'ai');

  if (c.issues.length > 0) throw configError('myelin serve: invalid settings from the environment or flags:', c.issues);

  const tokens = envTokens ?? file.auth?.tokens ?? [];
  const clusterConfig = envClusterConfig ?? file.cluster?.config;
  return {
    port: flagPort ?? envPort ?? file.port ?? DEFAULT_PORT,
    host: flagHost ?? envHost ?? file.host ?? DEFAULT_HOST,
    ioThreads: envIoThreads ?? file.ioThreads,
    io: envIo ?? file.io,
    maxPayloadBytes: file.maxPayloadBytes,
    maxConnections: file.maxConnections,
    tokens,
    bus: { capacity: file.bus?.capacity, overflow: file.bus?.overflow, ...(transport ? { transport } : {}) },
    cluster: { ...(clusterConfig !== undefined ? { config: clusterConfig } : {}), ...(file.cluster?.pollMs !== undefined ? { pollMs: file.cluster.pollMs } : {}) },
    ai,
    simulator: { ...file.simulator },
    ollamaURL,
    configFile,
    envUsed: [...new Set(envUsed)],
  };
}

/**
 * An `ai` section (the config file's or a cluster entry's) with the environment applied:
 * each provider's apiKeyEnv read from this process's environment (so that keys stay
 * out of files and out of the cluster store), OLLAMA_HOST for an Ollama provider with no
 * URL, and OPENAI_API_KEY / ANTHROPIC_API_KEY (and their base URLs) adding or filling in
 * the providers of those names. Problems go to `c`, under `where`.
 */
function resolveAI(section: AISection | undefined, env: Env, c: Collector, envUsed: string[], where: string): ResolvedAI {
  const ollamaRaw = setEnv(env, 'OLLAMA_HOST');
  const ollamaURL = ollamaRaw === undefined ? DEFAULT_OLLAMA_URL : ollamaURLFrom(ollamaRaw);
  const envValue = <T>(name: string, schema: z.ZodType<T>): T | undefined => {
    const raw = setEnv(env, name);
    if (raw === undefined) return undefined;
    envUsed.push(name);
    return c.check(schema, raw, name);
  };
  const openaiKey = envValue('OPENAI_API_KEY', fields.secretKey);
  const openaiURL = envValue('OPENAI_BASE_URL', fields.url);
  const anthropicKey = envValue('ANTHROPIC_API_KEY', fields.secretKey);
  const anthropicURL = envValue('ANTHROPIC_BASE_URL', fields.url);

  // Providers, each with its apiKeyEnv resolved (the variable is named, never its value).
  const providers: ProviderConfig[] = [];
  for (const [i, p] of (section?.providers ?? []).entries()) {
    const { apiKeyEnv, ...rest } = p;
    const provider: ProviderConfig = { ...rest };
    if (apiKeyEnv !== undefined) {
      const key = setEnv(env, apiKeyEnv);
      if (key === undefined) c.issues.push({ path: `${where}.providers[${i}].apiKeyEnv`, message: `environment variable ${apiKeyEnv} is empty or unset` });
      else if (c.check(fields.secretKey, key, apiKeyEnv) !== undefined) {
        provider.apiKey = key;
        envUsed.push(apiKeyEnv);
      }
    }
    // OLLAMA_HOST also points a configured Ollama provider that names no URL.
    if (provider.kind === 'ollama' && provider.baseURL === undefined && ollamaRaw !== undefined) provider.baseURL = ollamaURL;
    providers.push(provider);
  }
  // A key the section already hands to a provider (apiKeyEnv) does not add a second one.
  const consumed = new Set((section?.providers ?? []).map((p) => p.apiKeyEnv));
  applyProviderEnv(providers, 'openai', consumed.has('OPENAI_API_KEY') ? undefined : openaiKey, openaiURL);
  applyProviderEnv(providers, 'anthropic', consumed.has('ANTHROPIC_API_KEY') ? undefined : anthropicKey, anthropicURL);
  return {
    providers,
    models: { ...(section?.models as Record<string, ModelRoute | string> | undefined) },
    retry: section?.retry,
    breaker: section?.breaker,
    limits: section?.limits,
    cache: section?.cache,
    timeouts: section?.timeouts,
  };
}

/**
 * A cluster entry's `ai` section resolved against this process's environment, as the
 * file's is (see resolveAI); throws ERR_INVALID_ARGUMENT when a named key variable is unset.
 */
export function resolveAISection(section: AISection, env: Env = process.env, source = 'configuration entry'): { ai: ResolvedAI; envUsed: string[] } {
  const c = new Collector();
  const envUsed: string[] = [];
  const ai = resolveAI(section, env, c, envUsed, 'ai');
  if (c.issues.length > 0) throw configError(`${source} cannot be used on this node:`, c.issues);
  return { ai, envUsed: [...new Set(envUsed)] };
}

