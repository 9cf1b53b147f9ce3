// The session room's surface for the AIClient.
export { countMessage, countMessages, countTokens, encodingFor, estimateTokens, MESSAGE_OVERHEAD, type Encoding, type SessionMessage } from './token-count.js';
export { trimToBudget, type TrimOptions, type TrimResult } from './trim.js';
export { MemorySessionStore, RedisSessionStore, type MemorySessionStoreOptions, type RedisSessionStoreOptions, type SessionData, type SessionStore } from './session-store.js';
