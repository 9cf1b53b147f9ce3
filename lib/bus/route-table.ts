// Subject -> targets. Exact patterns live in a Map; wildcard patterns in the native
// trie (native/src/route), consulted only when a subject misses this table's cache.
// A cached route carries the table version it was computed at; any subscribe or
// unsubscribe bumps the version, so stale routes are recomputed on next use. The cache
// is bounded: past maxRoutes distinct subjects it starts over.
import { native, type NativeSubjectMatcher } from '../internal/native.js';
import type { Subscription } from './subscription.js';

export class QueueGroup {
  readonly name: string;
  readonly members: Subscription[];
  #rr = 0;
  constructor(name: string, members: Subscription[]) {
    this.name = name;
    this.members = members;
  }

  /** The member for an event: the same key always picks the same member (while the
   * membership is unchanged); keyless events rotate. */
  pick(key: string | undefined): Subscription | undefined {
    const m = this.members;
    let i: number;
    if (key === undefined) {
      i = this.#rr;
      this.#rr = (i + 1) % m.length;
    } else {
      i = hashKey(key) % m.length;
    }
    if (!m[i].closed) return m[i];
    // A member left after this route was resolved: the next member still here.
    for (let k = 1; k < m.length; k++) {
      const s = m[(i + k) % m.length];
      if (!s.closed) return s;
    }
    return undefined;
  }
}

export type Target = Subscription | QueueGroup;

export interface Route {
  readonly subject: string;
  version: number;
  targets: Target[];
  /** False when every target is a worker pool: the workers record publish -> handler
   * latency themselves, at their handler's start. */
  measure: boolean;
  /** The one plain subscription (not a queue group) that is the whole route, if so. */
  solo: Subscription | undefined;
  /** The bus's index for the subject's first token (its per-prefix counts); -1 until the bus sets it. */
  prefix: number;
}

/** FNV-1a over UTF-16 code units: stable within a process, for key affinity. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** True when some whole token of `pattern` is `*` or `>`: only those go to the trie.
 * As in NATS, `*` and `>` inside a longer token (`foo*`, `a.>b`) are literal, so such
 * a pattern is exact. Decides the table, not validity: both paths validate natively. */
export function isWildcardPattern(pattern: string): boolean {
  return pattern === '*' || pattern === '>' || pattern.startsWith('*.') || pattern.startsWith('>.') ||
    pattern.endsWith('.*') || pattern.endsWith('.>') || pattern.includes('.*.') || pattern.includes('.>.');
}

export class RouteTable {
  version = 1;
  readonly #exact = new Map<string, Subscription[]>();
  readonly #byId = new Map<number, Subscription>();
  #wildcards = 0;
  #matcher: NativeSubjectMatcher | undefined;
  readonly #routes = new Map<string, Route>();
  readonly #maxRoutes: number;
  readonly #ids = new Uint32Array(4096);

  constructor(maxRoutes = 65536) {
    this.#maxRoutes = maxRoutes;
  }

  get size(): number {
    return this.#byId.size;
  }

  /** Validates a pattern (throws ERR_INVALID_ARGUMENT) and adds the subscription. */
  add(sub: Subscription): void {
    const { pattern, id } = sub;
    if (isWildcardPattern(pattern)) {
      this.#matcher ??= new (native().SubjectMatcher)();
      this.#matcher.subscribe(pattern, id);
      this.#wildcards++;
    } else {
      native().validateSubject(pattern, true);
      const list = this.#exact.get(pattern);
      if (list) list.push(sub);
      else this.#exact.set(pattern, [sub]);
    }
    this.#byId.set(id, sub);
    this.version++;
  }

  remove(sub: Subscription): void {
    if (!this.#byId.delete(sub.id)) return;
    if (isWildcardPattern(sub.pattern)) {
      this.#matcher?.unsubscribe(sub.pattern, sub.id);
      this.#wildcards--;
    } else {
      const list = this.#exact.get(sub.pattern);
      if (list) {
        const i = list.indexOf(sub);
        if (i >= 0) list.splice(i, 1);
        if (list.length === 0) this.#exact.delete(sub.pattern);
      }
    }
    this.version++;
  }

  subscriptions(): IterableIterator<Subscription> {
    return this.#byId.values();
  }

  /** The route for a publish subject; validates subjects it has not seen (throws). */
  get(subject: string): Route {
    const r = this.#routes.get(subject);
    if (r !== undefined) {
      if (r.version !== this.version) this.#fill(r);
      return r;
    }
    return this.#create(subject);
  }

  #create(subject: string): Route {
    if (typeof subject !== 'string') throw new TypeError('subject must be a string'); // turned into MyelinError by caller
    native().validateSubject(subject, false);
    if (this.#routes.size >= this.#maxRoutes) this.#routes.clear();
    const route: Route = { subject, version: 0, targets: [], measure: true, solo: undefined, prefix: -1 };
    this.#fill(route);
    this.#routes.set(subject, route);
    return route;
  }

  #fill(route: Route): void {
    let subs: Subscription[] = this.#exact.get(route.subject) ?? [];
    if (this.#wildcards > 0 && this.#matcher) {
      const ids = this.#ids;
      const n = this.#matcher.matchInto(route.subject, ids);
      const all = n > ids.length ? this.#matcher.match(route.subject) : ids;
      if (n > 0) {
        subs = subs.slice();
        for (let i = 0; i < n; i++) {
          const s = this.#byId.get(all[i]);
          if (s) subs.push(s);
        }
        subs.sort((a, b) => a.id - b.id);
      }
    }
    const targets: Target[] = [];
    let groups: Map<string, Subscription[]> | undefined;
    for (const s of subs) {
      if (s.queue === undefined) targets.push(s);
      else {
        groups ??= new Map();
        const g = groups.get(s.queue);
        if (g) g.push(s);
        else {
          const members = [s];
          groups.set(s.queue, members);
          targets.push(new QueueGroup(s.queue, members));
        }
      }
    }
    route.targets = targets;
    route.measure = !targets.every((t) => !(t instanceof QueueGroup) && t.keyAffinity) || targets.length === 0;
    const only = targets.length === 1 ? targets[0] : undefined;
    route.solo = only instanceof QueueGroup ? undefined : only;
    route.version = this.version;
  }
}
