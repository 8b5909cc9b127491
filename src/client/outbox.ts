/**
 * Mutations held while the server cannot be reached: a page keeps working while offline, its
 * optimistic updates shown, and what the user did is sent when the live-update stream is back —
 * in the order it was done, one after another, each with the idempotency key of its first
 * attempt, so that one whose first answer was lost is applied once all the same.
 *
 * "Offline" is the stream's word for it: `'reconnecting'` means the server was reached and is
 * not now. A client with no stream (nothing subscribed, a script) has nothing that says when the
 * server is back, and gives up after a few attempts over a couple of seconds instead.
 */
import { ConvoyError } from '../values/errors.js';
import type { ConnectionState } from './stream.js';

export interface Connection {
  readonly connectionState: ConnectionState;
  onStateChange(listener: (state: ConnectionState) => void): () => void;
}

/** Attempts while no stream says when the server is back: 0.1 + 0.2 + 0.4 + 0.8 s between them. */
const ATTEMPTS_WITHOUT_STREAM = 5;
/** Between two attempts: doubling, up to 5 s. */
const RETRY_MS = { first: 100, max: 5_000 };

export class Outbox {
  /** The last held mutation's turn: the next one waits for it. */
  private tail: Promise<unknown> = Promise.resolve();
  private held = 0;

  constructor(private readonly connection: Connection) {}

  /** A mutation called now must wait: the stream is down, or mutations called before it wait. */
  get mustWait(): boolean {
    return this.held > 0 || this.connection.connectionState === 'reconnecting';
  }

  /** Whether `error` means the mutation was not answered, and may be sent again with its key. */
  static unanswered(error: unknown): boolean {
    return error instanceof ConvoyError && error.code === 'UNAVAILABLE';
  }

  /**
   * Runs `send` after every mutation held before it, when the server can be reached, and again
   * while it answers `UNAVAILABLE`; `attempted` counts tries already made outside.
   */
  hold<T>(send: () => Promise<T>, attempted = 0): Promise<T> {
    this.held++;
    const turn = this.tail.then(() => this.untilAnswered(send, attempted));
    this.tail = turn.catch(() => {});
    return turn.finally(() => {
      this.held--;
    });
  }

  private async untilAnswered<T>(send: () => Promise<T>, attempted: number): Promise<T> {
    for (let attempt = attempted + 1; ; attempt++) {
      // Not at once after an unanswered attempt: the server that did not answer is starting, or
      // gone (and then the stream says so, and the wait below is for it to come back).
      if (attempt > 1) {
        const { first, max } = RETRY_MS;
        await sleep(Math.min(max, first * 2 ** Math.min(attempt - 2, 10)));
      }
      await this.untilReachable();
      try {
        return await send();
      } catch (error) {
        const withoutStream = this.connection.connectionState === 'closed';
        if (!Outbox.unanswered(error) || (withoutStream && attempt >= ATTEMPTS_WITHOUT_STREAM)) throw error;
      }
    }
  }

  /** Resolves once the stream is open, or there is no stream to wait for. */
  private untilReachable(): Promise<void> {
    const reachable = (state: ConnectionState) => state !== 'reconnecting';
    if (reachable(this.connection.connectionState)) return Promise.resolve();
    return new Promise((resolve) => {
      const stop = this.connection.onStateChange((state) => {
        if (!reachable(state)) return;
        stop();
        resolve();
      });
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
