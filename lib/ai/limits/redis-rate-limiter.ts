// RPM + TPM for one key, shared by every process that uses the same Redis and prefix
// (shared/AI-WIRE.md failure case 5). All bucket arithmetic happens in ONE Lua script,
// so refill-check-take is atomic across replicas; the clock is the Redis server's
// (TIME), so replicas with skewed clocks still agree. A process whose request does not
// fit waits the milliseconds the script names (plus a little jitter, so replicas do
// not poll in lockstep) and asks again; its local waiters keep the priority/FIFO order
// of AdmissionQueue. When Redis fails, onStoreError decides (admit or refuse) and
// onError hears every failure, onStoreOk every success (the AIClient's
// client/limit-store.ts counts outages with them).
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { MyelinError, invalidArgument } from '../../errors.js';
import { AdmissionQueue, type Limiter, type Reservation, type ReserveOptions } from './admission-queue.js';

/**
 * KEYS[1]: the bucket hash {r: requests, t: tokens, at: ms}. A missing key is a full
 * bucket. ARGV: rpm, tpm (0 = not limited), mode ('take' | 'adjust'), requests,
 * tokens. 'take' returns 0 after taking, else the ms until the take could succeed;
 * 'adjust' adds (or, negative, removes) and returns 0.
 */
export const RATE_LIMIT_LUA = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local mode = ARGV[3]
local nreq = tonumber(ARGV[4])
local ntok = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'r', 't', 'at')
local r = tonumber(h[1]) or rpm
local k = tonumber(h[2]) or tpm
local at = tonumber(h[3]) or now
local dt = now - at
if dt < 0 then dt = 0 end
if rpm > 0 then r = math.min(rpm, r + dt * rpm / 60000) end
if tpm > 0 then k = math.min(tpm, k + dt * tpm / 60000) end
local wait = 0
if mode == 'take' then
  if rpm > 0 and nreq > 0 then
    local need = math.min(nreq, rpm)
    if r < need - 1e-9 then wait = math.max(wait, math.ceil((need - r) * 60000 / rpm)) end
  end
  if tpm > 0 and ntok > 0 then
    local need = math.min(ntok, tpm)
    if k < need - 1e-9 then wait = math.max(wait, math.ceil((need - k) * 60000 / tpm)) end
  end
  if wait == 0 then
    r = r - nreq
    k = k - ntok
  end
else
  if rpm > 0 then r = math.min(rpm, r + nreq) end
  if tpm > 0 then k = math.min(tpm, k + ntok) end
end
local ttl = 1000
if rpm > 0 then ttl = math.max(ttl, math.ceil((rpm - r) * 60000 / rpm) + 1000) end
if tpm > 0 then ttl = math.max(ttl, math.ceil((tpm - k) * 60000 / tpm) + 1000) end
redis.call('HSET', KEYS[1], 'r', tostring(r), 't', tostring(k), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], ttl)
return wait
`;

export const RATE_LIMIT_LUA_SHA1 = createHash('sha1').update(RATE_LIMIT_LUA).digest('hex');

export type StoreErrorOutcome = 'admitted' | 'refused' | 'refund-lost';

export interface RedisRateLimiterOptions {
  /** A connected ioredis client; the limiter never closes it. */
  redis: Redis;
  /** The limit's name (provider or target); every process using it shares the bucket. */
  key: string;
  /** Default 'myelin:rl:'. */
  prefix?: string;
  rpm?: number;
  tpm?: number;
  /**
   * When Redis fails: 'open' (default) admits the request, so an outage of the limit
   * store does not become an outage of the AI client; 'closed' rejects with
   * ERR_AI_RATE_LIMITED (cause attached).
   */
  onStoreError?: 'open' | 'closed';
  /**
   * Called with every Redis error, whatever onStoreError says, and what became of the
   * call: a request admitted without the store ('admitted'), refused ('refused'), or a
   * refund that was lost ('refund-lost').
   */
  onError?: (err: unknown, outcome: StoreErrorOutcome) => void;
  /** Called after every store call that succeeded (ends an outage for whoever counts them). */
  onStoreOk?: () => void;
  /** Upper bound of the random delay added to each poll. Default 20 ms. */
  pollJitterMs?: number;
  now?: () => number;
  rng?: () => number;
}

function limit(name: string, v: number | undefined): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) {
    throw invalidArgument(`${name} must be a positive finite number, got ${String(v)}`);
  }
  return v;
}

export class RedisRateLimiter implements Limiter {
  readonly key: string;
  readonly redisKey: string;
  readonly #redis: Redis;
  readonly #rpm: number;
  readonly #tpm: number;
  readonly #queue: AdmissionQueue;
  readonly #failOpen: boolean;
  readonly #onError: ((err: unknown, outcome: StoreErrorOutcome) => void) | undefined;
  readonly #onOk: (() => void) | undefined;
  readonly #jitter: number;
  readonly #rng: () => number;

  constructor(options: RedisRateLimiterOptions) {
    if (options.redis === undefined || typeof options.redis.evalsha !== 'function') throw invalidArgument('redis must be an ioredis client');
    if (typeof options.key !== 'string' || options.key === '') throw invalidArgument('key must be a non-empty string');
    this.#rpm = limit('rpm', options.rpm);
    this.#tpm = limit('tpm', options.tpm);
    if (this.#rpm === 0 && this.#tpm === 0) throw invalidArgument('RedisRateLimiter needs rpm, tpm or both');
    this.key = options.key;
    this.redisKey = `${options.prefix ?? 'myelin:rl:'}${options.key}`;
    this.#redis = options.redis;
    this.#failOpen = (options.onStoreError ?? 'open') === 'open';
    if (options.onStoreError !== undefined && options.onStoreError !== 'open' && options.onStoreError !== 'closed') {
      throw invalidArgument(`onStoreError must be 'open' or 'closed', got ${String(options.onStoreError)}`);
    }
    this.#onError = options.onError;
    this.#onOk = options.onStoreOk;
    this.#jitter = options.pollJitterMs ?? 20;
    this.#rng = options.rng ?? Math.random;
    this.#queue = new AdmissionQueue(
      {
        take: (tokens) => this.#take(tokens),
        adjust: (requests, tokens) => this.#adjust(requests, tokens),
      },
      options.now ?? Date.now,
      this.key,
    );
  }

  reserve(options?: ReserveOptions): Promise<Reservation> {
    return this.#queue.reserve(options);
  }

  get pending(): number {
    return this.#queue.pending;
  }

  close(): void {
    this.#queue.close();
  }

  /** Runs the script: EVALSHA, and EVAL once when the server does not have it cached. */
  async #eval(mode: 'take' | 'adjust', requests: number, tokens: number): Promise<number> {
    const args = [this.#rpm, this.#tpm, mode, requests, tokens];
    let out: number;
    try {
      out = Number(await this.#redis.evalsha(RATE_LIMIT_LUA_SHA1, 1, this.redisKey, ...args));
    } catch (err) {
      if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err;
      out = Number(await this.#redis.eval(RATE_LIMIT_LUA, 1, this.redisKey, ...args));
    }
    this.#onOk?.();
    return out;
  }

  async #take(tokens: number): Promise<number> {
    try {
      const wait = await this.#eval('take', 1, tokens);
      return wait === 0 ? 0 : wait + Math.floor(this.#rng() * Math.min(this.#jitter, wait));
    } catch (err) {
      this.#onError?.(err, this.#failOpen ? 'admitted' : 'refused');
      if (this.#failOpen) return 0;
      throw new MyelinError('ERR_AI_RATE_LIMITED', `shared rate limit ${this.key}: the limit store failed`, { cause: err, limit: this.key });
    }
  }

  async #adjust(requests: number, tokens: number): Promise<void> {
    try {
      await this.#eval('adjust', requests, tokens);
    } catch (err) {
      // A lost refund only makes the limit a little stricter until the bucket refills.
      this.#onError?.(err, 'refund-lost');
    }
  }
}
