/**
 * Read-your-writes on the client: the open stream's session, how many of its events have been
 * read, and the mutations waiting for it to catch up. A mutation sent with the session's id is
 * answered with the number of events (`event: sync`) after which the stream carries its effect;
 * the mutation resolves once that many have been read, so every subscription already shows it.
 */

/** The longest a mutation waits for the stream before it resolves anyway. */
const MAX_WAIT_MS = 5_000;

interface Waiter {
  session: string;
  seq: number;
  done: () => void;
}

export class StreamSession {
  /** The open stream's session, which a mutation names so that its answer can wait for it. */
  private current: string | null = null;
  /** Events of this session read so far (the server's `event: sync` count). */
  private seq = 0;
  private readonly waiters = new Set<Waiter>();

  get id(): string | null {
    return this.current;
  }

  /** A stream opened as `session`: nothing of it read yet. */
  begin(session: string): void {
    this.current = session;
    this.seq = 0;
  }

  /** The stream has delivered its first `seq` events. */
  advance(seq: number): void {
    this.seq = seq;
    this.release();
  }

  /** The stream is gone: nobody waits for it any longer. */
  end(): void {
    this.current = null;
    this.release();
  }

  /**
   * Resolves once the stream of `session` has delivered its first `seq` events, or at once if
   * that stream is gone (a new one starts from current values anyway), or after a few seconds
   * at most.
   */
  caughtUp(session: string, seq: number): Promise<void> {
    if (session !== this.current || this.seq >= seq) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter: Waiter = {
        session,
        seq,
        done: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(waiter.done, MAX_WAIT_MS);
      this.waiters.add(waiter);
    });
  }

  private release() {
    for (const waiter of [...this.waiters]) {
      if (waiter.session !== this.current || waiter.seq <= this.seq) waiter.done();
    }
  }
}
