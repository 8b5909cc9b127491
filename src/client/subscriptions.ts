/**
 * The client's subscriptions, apart from any stream: one per function and args, shared by every
 * listener that asks for the same, each keeping its last result so that a new listener gets it
 * at once. The stream tells the server about them; this only keeps the books — and what the
 * pending optimistic updates make each one show over the server's result (optimistic.ts).
 */
import type { ConvoyError } from '../values/errors.js';
import { type BoundUpdate, playUpdates, queryKey, type ShownQuery } from './optimistic.js';

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
  /** The server's newest outcome. */
  last?: Outcome;
  /** What the listeners were told last: `last`, or what the optimistic updates make of it. */
  shown?: Outcome;
  /**
   * The server's outcome the updates are played over while a newer one waits (see `publish`):
   * set only while it waits.
   */
  playedOver?: Outcome | undefined;
}

/** An optimistic update of a pending mutation. */
interface PendingUpdate {
  update: BoundUpdate;
  /** Its mutation has been sent: a result from the server may hold its write from now on. */
  sent: boolean;
}

/** What a pending mutation's caller does with its update. */
export interface UpdateHandle {
  /** The mutation is being sent. */
  sent(): void;
  /** The mutation settled: the update goes. */
  drop(): void;
}

/** How long a new result may wait for a sent mutation's answer before it is shown anyway. */
const WAIT_FOR_ANSWER_MS = 1_000;

export class Subscriptions {
  private readonly byKey = new Map<string, Subscription>();
  private readonly byId = new Map<string, Subscription>();
  private nextId = 1;
  /** The optimistic updates of pending mutations, in the order the mutations were called. */
  private readonly updates = new Map<number, PendingUpdate>();
  private nextUpdate = 1;
  /** The queries the updates of sent mutations set, as of the last play. */
  private setBySent = new Set<string>();
  private waitTimer: ReturnType<typeof setTimeout> | null = null;

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
    const key = queryKey(path, args);
    let subscription = this.byKey.get(key);
    const created = !subscription;
    if (!subscription) {
      subscription = { id: String(this.nextId++), path, args: args ?? {}, key, listeners: new Set() };
      this.byKey.set(key, subscription);
      this.byId.set(subscription.id, subscription);
    }
    subscription.listeners.add(listener);
    if (created && this.updates.size > 0) this.reshow();
    // What it shows then, not now: an update or a result may come before the microtask.
    if (subscription.shown) {
      queueMicrotask(() => {
        const { shown } = subscription;
        if (shown && subscription.listeners.has(listener)) deliver(listener, shown);
      });
    }
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

  /**
   * `outcome` is the subscription's result now: every listener hears it, or what the updates make
   * of it. A result for a query that the update of a sent mutation sets may already hold that
   * mutation's write: shown over the update it would show the write twice (the made-up document
   * and the real one), so it waits for the mutation's answer — which drops the update — and both
   * change in one step; a second at most.
   */
  publish(subscription: Subscription, outcome: Outcome): void {
    const before = subscription.last;
    subscription.last = outcome;
    if (this.updates.size === 0) {
      show(subscription, outcome);
      return;
    }
    if (this.setBySent.has(subscription.key)) {
      if (!('playedOver' in subscription)) subscription.playedOver = before;
      this.waitTimer ??= setTimeout(() => this.stopWaiting(), WAIT_FOR_ANSWER_MS);
      return;
    }
    this.reshow();
  }

  /**
   * Adds a pending mutation's optimistic update, shown at once; the handle tells when the
   * mutation is sent and when it settled (after which every subscription shows what the server
   * sent and the updates still pending). An update that throws now is not added, and its error is
   * thrown.
   */
  addUpdate(update: BoundUpdate): UpdateHandle {
    const id = this.nextUpdate++;
    const pending: PendingUpdate = { update, sent: false };
    this.updates.set(id, pending);
    try {
      this.reshow(update);
    } catch (error) {
      this.updates.delete(id);
      throw error;
    }
    return {
      sent: () => {
        if (pending.sent || !this.updates.has(id)) return;
        pending.sent = true;
        this.reshow();
      },
      drop: () => {
        if (!this.updates.delete(id)) return;
        this.afterDrop();
      },
    };
  }

  /**
   * A mutation answered and its update is gone: a result that waited for it is shown now, but
   * one that a sent mutation still pending also sets goes on waiting — for that one's answer —
   * and shows what it showed: played now, it would show that write twice if it holds it.
   */
  private afterDrop(): void {
    this.reshow(undefined, true);
    let released = false;
    for (const subscription of this.byKey.values()) {
      if ('playedOver' in subscription && !this.setBySent.has(subscription.key)) {
        delete subscription.playedOver;
        released = true;
      }
    }
    if (released) this.reshow(undefined, true);
    if (![...this.byKey.values()].some((subscription) => 'playedOver' in subscription)) {
      if (this.waitTimer) clearTimeout(this.waitTimer);
      this.waitTimer = null;
    }
  }

  /** Results that waited for an answer are shown now. */
  private stopWaiting(): void {
    if (this.waitTimer) clearTimeout(this.waitTimer);
    this.waitTimer = null;
    for (const subscription of this.byKey.values()) delete subscription.playedOver;
    this.reshow();
  }

  /**
   * Plays the pending updates over the server's results and tells listeners what changed; with
   * `holdWaiting`, a result still waiting for a sent mutation's answer keeps what it showed.
   */
  private reshow(strict?: BoundUpdate, holdWaiting = false): void {
    const queries = new Map<string, ShownQuery>();
    for (const subscription of this.byKey.values()) {
      const base = 'playedOver' in subscription ? subscription.playedOver : subscription.last;
      queries.set(subscription.key, {
        path: subscription.path,
        args: subscription.args,
        value: base && 'value' in base ? base.value : undefined,
      });
    }
    const pending = [...this.updates.values()];
    const { shown: made, setBy } = playUpdates(
      pending.map(({ update }) => update),
      queries,
      strict,
    );
    this.setBySent = new Set(
      pending.filter(({ sent }) => sent).flatMap(({ update }) => [...(setBy.get(update) ?? [])]),
    );
    for (const subscription of this.byKey.values()) {
      if (holdWaiting && 'playedOver' in subscription && this.setBySent.has(subscription.key)) continue;
      const base = 'playedOver' in subscription ? subscription.playedOver : subscription.last;
      const outcome = made.has(subscription.key) ? { value: made.get(subscription.key) } : base;
      // A query with no result from the server and no update left keeps what it showed.
      if (outcome) show(subscription, outcome);
    }
  }
}

function show(subscription: Subscription, outcome: Outcome) {
  if (subscription.shown === outcome) return;
  subscription.shown = outcome;
  for (const listener of subscription.listeners) deliver(listener, outcome);
}

function deliver(listener: Listener, outcome: Outcome) {
  if ('value' in outcome) listener.onValue(outcome.value);
  else listener.onError?.(outcome.error);
}
