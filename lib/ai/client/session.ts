// A conversation kept between calls (shared/API.md `ai.session(id, ...)`). Each send()
// reads the history from the store (so any replica sharing a Redis store can serve the
// next turn), trims it to maxContextTokens keeping the system prompt (trimToBudget drops
// whole turns, oldest first, leaving room for maxTokens), calls chat() with the session's
// affinity, and writes back the trimmed history with the new user turn and the reply.
// Sends on one session object run one after another; two replicas driving one session
// at once follow the store's last-writer-wins.
import { invalidArgument } from '../../errors.js';
import type { SessionData, SessionStore } from '../session/session-store.js';
import { trimToBudget } from '../session/trim.js';
import { onlyKnown } from './options.js';
import { checkChatRequest } from './request-check.js';
import type { ChatMessage, ChatRequest, ChatResponse } from './types.js';

export interface SessionOptions {
  /** An alias or 'provider/model'. */
  model: string;
  /** The system prompt, sent first on every turn and never trimmed. */
  system?: string;
  /** Prompt budget in tokens; omitted: no trimming. */
  maxContextTokens?: number;
}

/** Request fields a send() may add; model and messages belong to the session. */
export type SendExtra = Omit<ChatRequest, 'model' | 'messages'>;

export type SessionChat = (req: ChatRequest, sessionId: string) => Promise<ChatResponse>;

export interface SessionHost {
  chat: SessionChat;
  /** Throws ERR_AI_CLOSED once the client is closed (before the store is touched). */
  checkOpen: () => void;
}

export class AISession {
  readonly id: string;
  readonly #o: SessionOptions;
  readonly #store: SessionStore;
  readonly #host: SessionHost;
  #messages: ChatMessage[] = [];
  #tail: Promise<unknown> = Promise.resolve();

  constructor(id: string, o: SessionOptions, store: SessionStore, host: SessionHost) {
    if (typeof id !== 'string' || id === '') throw invalidArgument('session: id must be a non-empty string');
    if (o === null || typeof o !== 'object' || Array.isArray(o)) throw invalidArgument('session: options must be { model, system?, maxContextTokens? }');
    onlyKnown('session', o as unknown as Record<string, unknown>, ['model', 'system', 'maxContextTokens']);
    if (typeof o.model !== 'string' || o.model === '') throw invalidArgument('session: model must be an alias or a provider/model string');
    if (o.system !== undefined && typeof o.system !== 'string') throw invalidArgument('session: system must be a string');
    const max = o.maxContextTokens;
    if (max !== undefined && (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 1)) {
      throw invalidArgument(`session: maxContextTokens must be a positive integer, got ${String(max)}`);
    }
    this.id = id;
    this.#o = { model: o.model, system: o.system, maxContextTokens: max };
    this.#store = store;
    this.#host = host;
  }

  /** The conversation as last read or written by this object: system prompt first. */
  get history(): ChatMessage[] {
    return this.#o.system !== undefined ? [{ role: 'system', content: this.#o.system }, ...this.#messages] : this.#messages.slice();
  }

  /** Reads the stored conversation (another replica may have added turns). */
  async load(): Promise<ChatMessage[]> {
    this.#host.checkOpen();
    const data = await this.#store.get(this.id);
    this.#messages = data ? (data.messages as ChatMessage[]).slice() : [];
    return this.history;
  }

  /** Forgets the conversation here and in the store. */
  async clear(): Promise<void> {
    this.#host.checkOpen();
    await this.#store.delete(this.id);
    this.#messages = [];
  }

  send(input: string | ChatMessage, extra: SendExtra = {}): Promise<ChatResponse> {
    const user: ChatMessage = typeof input === 'string' ? { role: 'user', content: input } : input;
    if (user === null || typeof user !== 'object' || typeof user.role !== 'string') {
      return Promise.reject(invalidArgument('session.send: input must be a string or a chat message'));
    }
    if (extra === null || typeof extra !== 'object' || 'model' in extra || 'messages' in extra) {
      return Promise.reject(invalidArgument('session.send: extra must be an object without model or messages'));
    }
    try {
      // Before the turn is queued: extra.maxTokens also sizes the trim.
      checkChatRequest({ ...extra, model: this.#o.model, messages: [user] });
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.#tail.then(() => this.#send(user, extra));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #send(user: ChatMessage, extra: SendExtra): Promise<ChatResponse> {
    await this.load();
    let messages: ChatMessage[] = [...this.history, user];
    if (this.#o.maxContextTokens !== undefined) {
      messages = trimToBudget(messages, { maxContextTokens: this.#o.maxContextTokens, model: this.#o.model, reserveTokens: extra.maxTokens ?? 0 }).messages;
    }
    const res = await this.#host.chat({ ...extra, model: this.#o.model, messages }, this.id);
    const kept = messages.filter((m, i) => !(i === 0 && this.#o.system !== undefined && m.role === 'system'));
    const next = [...kept, res.message as ChatMessage];
    const data: SessionData = { messages: next, model: this.#o.model };
    if (this.#o.system !== undefined) data.system = this.#o.system;
    await this.#store.set(this.id, data);
    this.#messages = next;
    return res;
  }
}
