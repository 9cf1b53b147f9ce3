// An async delivery that settles without a promise. A worker pool's handler returns
// one per event; the bus attaches its own settle function and the delivery's state,
// which saves a promise and two closures per event on the hottest cross-thread path.
import type { EventExtra } from './lane-queue.js';
import type { Subscription, Tracker } from './subscription.js';
import type { BusEvent } from './types.js';

export type SettleFn = (t: Ticket, value: unknown, err: unknown, isErr: boolean) => void;

export class Ticket implements Tracker {
  readonly ev: BusEvent;
  // A ticket doubles as its event's tracker when it is the event's only delivery,
  // which saves an allocation per event on the worker-pool path.
  pending = 0;
  failed = false;
  settle: SettleFn | undefined = undefined;
  sub: Subscription | undefined = undefined;
  tracker: Tracker | undefined = undefined;
  extra: EventExtra | undefined = undefined;

  constructor(ev: BusEvent) {
    this.ev = ev;
  }

  resolve(value?: unknown): void {
    this.settle?.(this, value, undefined, false);
  }

  reject(err: unknown): void {
    this.settle?.(this, undefined, err, true);
  }
}
