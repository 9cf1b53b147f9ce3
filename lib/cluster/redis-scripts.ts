// The Redis transport's server-side steps that must be atomic, as Lua scripts, and the
// small pure helpers both halves of the transport share (stream ids, subject matching,
// key partitioning, entry decoding).
//
// Why scripts: a dedupe check and its XADD, a pending scan and its claim, a lag audit and
// its counter fix, and a membership heartbeat and its expiry sweep are each one step on
// the server, so two processes racing can never both win (two claimers never both get an
// entry; two publishers of one id never both store it).
import type { Redis } from 'ioredis';
import { unpackMeta } from './codec.js';
import type { WireMeta } from './transport.js';

/** SET NX PX the dedupe key; XADD only when it was set. KEYS: dedupe, stream. ARGV: windowMs, maxLen (0: no trim), fields... Returns 1 for a duplicate. */
const DEDUPE_XADD = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 1 end
if tonumber(ARGV[2]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
else
  redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
end
return 0`;

/**
 * Claims every entry idle for at least minIdle, atomically with the scan, so a racing
 * claimer sees them as just claimed (idle 0) and gets none of them. KEYS: stream.
 * ARGV: group, consumer, minIdleMs, count. Returns one row per pending entry:
 * {id, previous consumer, idle ms, delivery count, fields} when claimed, and the same
 * without fields when the entry no longer exists (trimmed or deleted while pending): it
 * is acknowledged here, so it is reported once.
 */
const CLAIM = `
local pend = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', ARGV[4])
if #pend == 0 then return {} end
local ids = {}
for i = 1, #pend do ids[i] = pend[i][1] end
local got = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], unpack(ids))
local have = {}
for i = 1, #got do
  local e = got[i]
  if type(e) == 'table' and type(e[2]) == 'table' then have[e[1]] = e[2] end
end
local out = {}
for i = 1, #pend do
  local p = pend[i]
  local f = have[p[1]]
  if f then
    out[i] = {p[1], p[2], p[3], p[4], f}
  else
    redis.call('XACK', KEYS[1], ARGV[1], p[1])
    out[i] = {p[1], p[2], p[3], p[4]}
  end
end
return out`;

/**
 * Counts entries MAXLEN trimmed before the group read them, and fixes the group's read
 * counter so they are counted once (Redis 7 keeps counting a read group's entries one
 * by one across a trimmed gap, so its lag would stay inflated by the gap).
 * KEYS: stream. ARGV: group, most entries to count past the group's position.
 * Returns {lost, status}: status 0 ok, 1 cannot tell (no counters: Redis < 7 or XDEL
 * fragments), 2 no such stream, 3 no such group.
 */
const AUDIT = `
local function map(a) local m = {} for i = 1, #a, 2 do m[a[i]] = a[i + 1] end return m end
local function id(s) local d = string.find(s, '-', 1, true) return tonumber(string.sub(s, 1, d - 1)), tonumber(string.sub(s, d + 1)) end
local function gt(a, b) local am, as = id(a) local bm, bs = id(b) return am > bm or (am == bm and as > bs) end
local si = redis.pcall('XINFO', 'STREAM', KEYS[1])
if type(si) == 'table' and si.err then return {0, 2} end
si = map(si)
local g
for _, row in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local m = map(row)
  if m['name'] == ARGV[1] then g = m end
end
if not g then return {0, 3} end
local added = si['entries-added']
if not added then return {0, 1} end
local last = g['last-delivered-id']
-- Only the group's own read counter can tell trimmed-unread entries apart: Redis's
-- estimate (lag without it) counts everything before the first entry as read.
if not g['entries-read'] then return {0, 1} end
local lag = added - g['entries-read']
if lag <= 0 then return {0, 0} end
local n = si['length']
local present
if n == 0 then present = 0
elseif gt(si['first-entry'][1], last) then present = n
elseif lag > tonumber(ARGV[2]) then return {0, 0}
else present = #redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', lag) end
local lost = lag - present
if lost > 0 then redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], last, 'ENTRIESREAD', added - present) end
return {lost, 0}`;

/**
 * Creates a group with its read counter set (XGROUP CREATE ... ENTRIESREAD), so that the
 * audit can count entries trimmed before the group read them: without it Redis 7 leaves
 * the counter unset and estimates lag as if every trimmed entry had been read.
 * KEYS: stream. ARGV: group, start id ('$', '0' or an id). Returns 1 created, 0 existed.
 */
const CREATE_GROUP = `
local function map(a) local m = {} for i = 1, #a, 2 do m[a[i]] = a[i + 1] end return m end
local function id(s) local d = string.find(s, '-', 1, true) if not d then return tonumber(s), 0 end return tonumber(string.sub(s, 1, d - 1)), tonumber(string.sub(s, d + 1)) end
local function ge(a, b) local am, as = id(a) local bm, bs = id(b) return am > bm or (am == bm and as >= bs) end
local from = ARGV[2]
local read = nil
local si = redis.pcall('XINFO', 'STREAM', KEYS[1])
if type(si) == 'table' and si.err then
  read = 0
else
  si = map(si)
  local added = si['entries-added']
  if added then
    local first = si['first-entry']
    if from == '$' or ge(from, si['last-generated-id']) then read = added
    elseif not first or not ge(from, first[1]) then read = added - si['length'] end
  end
end
local r
if read then r = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], from, 'MKSTREAM', 'ENTRIESREAD', read)
else r = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], from, 'MKSTREAM') end
if type(r) == 'table' and r.err then
  if string.sub(r.err, 1, 9) == 'BUSYGROUP' then return 0 end
  return r
end
return 1`;

/**
 * Refreshes (or removes, ARGV[3] = '1') one member of a group's member hash, with an
 * expiry on the server's clock, drops expired members and returns the live ones.
 * KEYS: members hash. ARGV: member, ttlMs, leave.
 */
const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
if ARGV[3] == '1' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], now + ttl) end
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) > now then live[#live + 1] = all[i] else redis.call('HDEL', KEYS[1], all[i]) end
end
if #all > 0 then redis.call('PEXPIRE', KEYS[1], math.max(ttl * 10, 60000)) end
return live`;

/** Bumps a configuration entry's version, stores its JSON and announces the name. KEYS: entry hash. ARGV: json, channel, name. */
const PUT_CONFIG = `
local v = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 'd', ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return v`;

export type ClaimRow = [id: Buffer, consumer: Buffer, idle: number, count: number, fields?: Buffer[]];

/** A Redis connection with the scripts defined (each also as a Buffer-replying variant). */
export interface ScriptedRedis extends Redis {
  myelinDedupeXadd(dedupeKey: string, stream: string, windowMs: number, maxLen: number, ...fields: (string | Buffer)[]): Promise<number>;
  myelinClaimBuffer(stream: string, group: string, consumer: string, minIdleMs: number, count: number): Promise<ClaimRow[]>;
  myelinAudit(stream: string, group: string, maxCount: number): Promise<[lost: number, status: number]>;
  myelinCreateGroup(stream: string, group: string, from: string): Promise<number>;
  myelinHeartbeat(members: string, member: string, ttlMs: number, leave: '0' | '1'): Promise<string[]>;
  myelinPutConfig(key: string, json: string, channel: string, name: string): Promise<number>;
}

export function defineScripts(r: Redis): ScriptedRedis {
  r.defineCommand('myelinDedupeXadd', { numberOfKeys: 2, lua: DEDUPE_XADD });
  r.defineCommand('myelinClaim', { numberOfKeys: 1, lua: CLAIM });
  r.defineCommand('myelinAudit', { numberOfKeys: 1, lua: AUDIT });
  r.defineCommand('myelinCreateGroup', { numberOfKeys: 1, lua: CREATE_GROUP });
  r.defineCommand('myelinHeartbeat', { numberOfKeys: 1, lua: HEARTBEAT });
  r.defineCommand('myelinPutConfig', { numberOfKeys: 1, lua: PUT_CONFIG });
  return r as ScriptedRedis;
}

/** Atomic claim of idle pending entries (exported for the race test: the claim step itself, without a subscription). */
export function claimIdle(r: ScriptedRedis, stream: string, group: string, consumer: string, minIdleMs: number, count: number): Promise<ClaimRow[]> {
  return r.myelinClaimBuffer(stream, group, consumer, minIdleMs, count);
}

/** FNV-1a 32-bit over the key's UTF-8 bytes: the same partition from any process or client language. */
export function partitionOf(key: string, partitions: number): number {
  let h = 0x811c9dc5;
  let ascii = true;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c >= 0x80) {
      ascii = false;
      break;
    }
    h = Math.imul(h ^ c, 0x01000193);
  }
  if (!ascii) {
    h = 0x811c9dc5;
    for (const b of Buffer.from(key, 'utf8')) h = Math.imul(h ^ b, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

/** The first token of a subject (the stream family it goes to). */
export function firstToken(subject: string): string {
  const dot = subject.indexOf('.');
  return dot < 0 ? subject : subject.slice(0, dot);
}

/** A compiled NATS-style pattern: `*` matches one token, a trailing `>` one or more. */
export function subjectMatcher(pattern: string): (subject: string) => boolean {
  const p = pattern.split('.');
  const tail = p[p.length - 1] === '>';
  const fixed = tail ? p.length - 1 : p.length;
  if (!p.includes('*') && !tail) return (s) => s === pattern;
  return (subject) => {
    const s = subject.split('.');
    if (tail ? s.length <= fixed : s.length !== fixed) return false;
    for (let i = 0; i < fixed; i++) if (p[i] !== '*' && p[i] !== s[i]) return false;
    return true;
  };
}

/** Stream id comparison ("ms-seq"). */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am !== bm ? am - bm : as - bs;
}

/** A stream entry's subject, payload and metadata. */
export interface Entry {
  subject: string;
  payload: Buffer;
  meta: WireMeta;
}

const EMPTY: Buffer = Buffer.alloc(0);

/** Decodes a stream entry's flat field list (Buffers, so the payload stays binary). */
export function readEntry(fields: Buffer[]): Entry {
  let subject = '';
  let payload = EMPTY;
  let m: string | undefined;
  let k: string | undefined;
  let h: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const f = fields[i];
    // one-letter names: compare the byte, no string per field name
    const name = f.length === 1 ? f[0] : -1;
    if (name === 0x64 /* d */) payload = fields[i + 1];
    else if (name === 0x73 /* s */) subject = fields[i + 1].toString('utf8');
    else if (name === 0x6d /* m */) m = fields[i + 1].toString('latin1');
    else if (name === 0x6b /* k */) k = fields[i + 1].toString('utf8');
    else if (name === 0x68 /* h */) h = fields[i + 1].toString('utf8');
  }
  const u = unpackMeta(m, k, h);
  return { subject: u.subject ?? subject, payload, meta: u.meta };
}

/** Whether a Redis error says the stream or the group is gone. */
export function isNoGroup(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOGROUP');
}
