/**
 * The client's subscriptions, apart from any stream: one per function and args, shared by every
 * listener that asks for the same, each keeping its last result so that a new listener gets it
 * at once. The stream tells the server about them; this only keeps the books.
 */
import type { ConvoyError } from '../values/errors.js';

export interface Listener {
  onValue: (value: unknown) => void;
  onError?: (error: ConvoyError) => void;
}

export type Outcome = { value: unknown } | { error: ConvoyError };

/** One server-side subscription, shared by every listener of the same function and args. */
export interface Subscription {
  /** Its id on the stream. */
  id: string;
  path: string;
  args: unknown;
  key: string;
  listeners: Set<Listener>;
  last?: Outcome;
}

export class Subscriptions {
  private readonly byKey = new Map<string, Subscription>();
  private readonly byId = new Map<string, Subscription>();
  private nextId = 1;

  get size(): number {
    return this.byKey.size;
  }

  all(): IterableIterator<Subscription> {
    return this.byKey.values();
  }

  get(id: string): Subscription | undefined {
    return this.byId.get(id);
  }

  /**
   * Adds `listener` to the subscription of `path` and `args`, made when there is none (then
   * `created`); a listener that joins one with a result gets it soon after, never before this
   * returns.
   */
  add(path: string, args: unknown, listener: Listener): { subscription: Subscription; created: boolean } {
    const key = `${path}\u0000${JSON.stringify(args ?? {})}`;
    let subscription = this.byKey.get(key);
    const created = !subscription;
    if (!subscription) {
      subscription = { id: String(this.nextId++), path, args: args ?? {}, key, listeners: new Set() };
      this.byKey.set(key, subscription);
      this.byId.set(subscription.id, subscription);
    }
    subscription.listeners.add(listener);
    const { last } = subscription;
    if (last) queueMicrotask(() => deliver(listener, last));
    return { subscription, created };
  }

  /**
   * Takes `listener` off `subscription`; true when that was its last listener and the
   * subscription is gone (the server should forget it). Removing twice changes nothing.
   */
  remove(subscription: Subscription, listener: Listener): boolean {
    subscription.listeners.delete(listener);
    if (subscription.listeners.size > 0 || this.byKey.get(subscription.key) !== subscription) return false;
    this.byKey.delete(subscription.key);
    this.byId.delete(subscription.id);
    return true;
  }

  /** `outcome` is the subscription's result now: every listener hears it. */
  publish(subscription: Subscription, outcome: Outcome): void {
    subscription.last = outcome;
    for (const listener of subscription.listeners) deliver(listener, outcome);
  }
}

function deliver(listener: Listener, outcome: Outcome) {
  if ('value' in outcome) listener.onValue(outcome.value);
  else listener.onError?.(outcome.error);
}
