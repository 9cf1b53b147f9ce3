// What the in-memory bus (lib/bus/bus.ts) and the cluster bus (lib/cluster/cluster-bus.ts)
// both need to know of a handler's outcome: whether its result is a promise to wait
// for, and the form a failure takes in a dead letter.

export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
}

/**
 * A handler's error as a dead letter carries it. `stack` only where asked: an
 * in-memory letter stays in the process; a letter that crosses the wire leaves it out.
 */
export function describeError(err: unknown, withStack: boolean): { name: string; message: string; code?: string; stack?: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}), ...(withStack ? { stack: err.stack } : {}) };
  }
  return { name: 'Error', message: String(err) };
}
