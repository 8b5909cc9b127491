/**
 * Mutations held while the server cannot be reached: a page keeps working while offline, its
 * optimistic updates shown, and what the user did is sent when the live-update stream is back —
 * in the order it was called, one after another, each with the idempotency key of its first
 * attempt, so that one whose first answer was lost is applied once all the same.
 *
 * "Offline" is the stream's word for it: `'reconnecting'` means the server was reached and is
 * not now, and while it says so a held mutation waits for as long as it takes. Otherwise (the
 * stream is open but the server answers `UNAVAILABLE` — its database is down —, or there is no
 * stream: nothing subscribed, a script) nothing says when it will answer, and a mutation gives up
 * after a few attempts over a couple of seconds.
 */
import { ConvoyError } from '../values/errors.js';
import type { ConnectionState } from './stream.js';

export interface Connection {
  readonly connectionState: ConnectionState;
  onStateChange(listener: (state: ConnectionState) => void): () => void;
  /** Resolves when a stream that has just opened has its subscriptions back on the server. */
  resubscribed(): Promise<void>;
}

/** Unanswered attempts while nothing says the server is gone: 0.1 + 0.2 + 0.4 + 0.8 s between them. */
const ATTEMPTS_WHILE_REACHABLE = 5;
/** Between two attempts: doubling, up to 5 s. */
const RETRY_MS = { first: 100, max: 5_000 };

interface Held {
  /** Its place: the order mutations were called in. */
  place: number;
  send: () => Promise<unknown>;
  /** Unanswered attempts made while the server was thought reachable. */
  unanswered: number;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export class Outbox {
  /** Held mutations in the order they were called. */
  private readonly held: Held[] = [];
  private draining = false;
  private nextPlace = 1;

  constructor(private readonly connection: Connection) {}

  /** A place in line for a mutation being called, kept should it have to wait. */
  place(): number {
    return this.nextPlace++;
  }

  /** A mutation called now must wait: the stream is down, or mutations called before it wait. */
  get mustWait(): boolean {
    return this.held.length > 0 || this.connection.connectionState === 'reconnecting';
  }

  /** Whether `error` means the mutation was not answered, and may be sent again with its key. */
  static unanswered(error: unknown): boolean {
    return error instanceof ConvoyError && error.code === 'UNAVAILABLE';
  }

  /**
   * Sends `send` in its place — after every held mutation called before it — when the server can
   * be reached; `failed` is true when a first attempt was made outside and went unanswered.
   */
  hold<T>(place: number, send: () => Promise<T>, failed = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const held: Held = { place, send, unanswered: failed ? 1 : 0, resolve: resolve as never, reject };
      // A mutation whose first attempt failed after later ones were held goes before them.
      const after = this.held.findIndex((other) => other.place > place);
      if (after === -1) this.held.push(held);
      else this.held.splice(after, 0, held);
      void this.drain();
    });
  }

  private async drain() {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.held.length > 0) {
        // The first in line once the server can be reached: one whose unanswered attempt came
        // back while the others waited has taken its place before them by then.
        await this.untilReachable();
        const next = this.held[0]!;
        const outcome = await this.untilAnswered(next);
        this.held.splice(this.held.indexOf(next), 1);
        if ('value' in outcome) next.resolve(outcome.value);
        else next.reject(outcome.error);
      }
    } finally {
      this.draining = false;
    }
  }

  private async untilAnswered(held: Held): Promise<{ value: unknown } | { error: unknown }> {
    for (let attempt = held.unanswered + 1; ; attempt++) {
      // Not at once after an unanswered attempt: the server that did not answer is starting, or
      // gone (and then the stream says so, and the wait below is for it to come back).
      if (attempt > 1) await sleep(Math.min(RETRY_MS.max, RETRY_MS.first * 2 ** Math.min(attempt - 2, 10)));
      await this.untilReachable();
      try {
        return { value: await held.send() };
      } catch (error) {
        if (!Outbox.unanswered(error)) return { error };
        // The stream lost the server too: wait for it, however long, without counting.
        if (this.connection.connectionState === 'reconnecting') continue;
        held.unanswered++;
        if (held.unanswered >= ATTEMPTS_WHILE_REACHABLE) return { error };
      }
    }
  }

  /**
   * Resolves once the stream is open with its subscriptions back (so that the answer's wait for
   * the stream covers them), or there is no stream to wait for.
   */
  private async untilReachable(): Promise<void> {
    if (this.connection.connectionState === 'reconnecting') {
      await new Promise<void>((resolve) => {
        const stop = this.connection.onStateChange((state) => {
          if (state === 'reconnecting') return;
          stop();
          resolve();
        });
      });
    }
    await this.connection.resubscribed();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
