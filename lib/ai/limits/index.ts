// The limits room's surface for the AIClient.
export { TokenBucket, type TokenBucketOptions } from './token-bucket.js';
export { RateLimiter, type RateLimiterOptions } from './rate-limiter.js';
export { RedisRateLimiter, RATE_LIMIT_LUA, RATE_LIMIT_LUA_SHA1, type RedisRateLimiterOptions } from './redis-rate-limiter.js';
export type { Limiter, LimitPriority, Reservation, ReserveOptions } from './admission-queue.js';
