// Automated responses attached to alert rules (shared/API.md "Metrics", `action`):
//
//   { kind: 'open-breaker', target, forMs? }  ai.openBreaker(target, { forMs }) when the alert
//                                             fires and on each re-notification while it fires
//   { kind: 'shed-load', priority? }          bus.shed(priority, true) while it fires, false
//                                             when it resolves (or the rule goes); 'low' default
//   { kind: 'autoscale', replicas }           the gauge autoscale_desired_replicas set to
//                                             `replicas` and a `$SYS.autoscale` bus event
//   (alert) => void | Promise<void>           called with every notification, firing and resolved
//
// Metrics reaches the bus and the AI client only through these duck-typed shapes
// (STYLE.md: metrics import no area). An action that throws or rejects is counted by
// the caller and never stops evaluation.
import { invalidArgument } from '../errors.js';
import type { Alert, AlertAction } from './types.js';

export interface BusLike {
  publish(subject: string, data?: unknown, opts?: { priority?: 'critical' | 'high' | 'normal' | 'low' }): boolean;
  /** Refuses (on) or again accepts (off) new publishes of a lane. Not on Bus yet: the lead adds it. */
  shed?(priority: 'low' | 'normal', on: boolean): void;
}

export interface AIClientLike {
  openBreaker(target: string, options: { forMs: number }): void;
}

export interface ActionContext {
  bus: BusLike | undefined;
  ai: AIClientLike | undefined;
  /** Sets myelin_autoscale_desired_replicas (through the manager's sink), when it has one. */
  setReplicas: ((replicas: number) => void) | undefined;
}

export const DEFAULT_BREAKER_MS = 60_000;

/** Throws ERR_INVALID_ARGUMENT unless `a` is an action this module runs. */
export function checkAction(a: unknown, where: string): void {
  if (typeof a === 'function') return;
  if (a === null || typeof a !== 'object' || Array.isArray(a)) throw invalidArgument(`${where} must be a function or { kind, ... }`);
  const o = a as Record<string, unknown>;
  const only = (keys: string[]) => {
    for (const k of Object.keys(o)) if (!keys.includes(k)) throw invalidArgument(`${where}: unknown key '${k}' for kind '${String(o.kind)}'`);
  };
  switch (o.kind) {
    case 'open-breaker':
      only(['kind', 'target', 'forMs']);
      if (typeof o.target !== 'string' || !/^[^/]+\/.+$/.test(o.target)) throw invalidArgument(`${where}.target must be a 'provider/model' string`);
      if (o.forMs !== undefined && (typeof o.forMs !== 'number' || !(o.forMs > 0) || !Number.isFinite(o.forMs))) throw invalidArgument(`${where}.forMs must be a positive number of ms`);
      return;
    case 'shed-load':
      only(['kind', 'priority']);
      if (o.priority !== undefined && o.priority !== 'low' && o.priority !== 'normal') throw invalidArgument(`${where}.priority must be 'low' or 'normal'`);
      return;
    case 'autoscale':
      only(['kind', 'replicas']);
      if (typeof o.replicas !== 'number' || !Number.isInteger(o.replicas) || o.replicas < 0 || o.replicas > 100_000) throw invalidArgument(`${where}.replicas must be an integer in [0, 100000]`);
      return;
    default:
      throw invalidArgument(`${where}.kind must be 'open-breaker', 'shed-load' or 'autoscale', got ${JSON.stringify(String(o.kind)).slice(0, 40)}`);
  }
}

/**
 * Runs `action` for a notification. `phase`: 'fire' (first firing), 'repeat' (a
 * re-notification while firing), 'resolve'. Returns false when the action had nothing
 * to act on (no bus, no AI client, no shed method); throws or rejects when it failed.
 */
export async function runAction(action: AlertAction, alert: Alert, phase: 'fire' | 'repeat' | 'resolve', ctx: ActionContext): Promise<boolean> {
  if (typeof action === 'function') {
    await action(alert);
    return true;
  }
  switch (action.kind) {
    case 'open-breaker':
      if (phase === 'resolve') return true; // the breaker closes by itself after forMs
      if (!ctx.ai) return false;
      ctx.ai.openBreaker(action.target, { forMs: action.forMs ?? DEFAULT_BREAKER_MS });
      return true;
    case 'shed-load': {
      if (phase === 'repeat') return true;
      const shed = ctx.bus?.shed;
      if (typeof shed !== 'function') return false;
      shed.call(ctx.bus, action.priority ?? 'low', phase === 'fire');
      return true;
    }
    case 'autoscale': {
      if (phase !== 'fire') return true;
      ctx.setReplicas?.(action.replicas);
      ctx.bus?.publish('$SYS.autoscale', { replicas: action.replicas, alert: alert.name, value: alert.value, at: alert.startsAt }, { priority: 'high' });
      return ctx.setReplicas !== undefined || ctx.bus !== undefined;
    }
  }
}
