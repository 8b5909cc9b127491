/**
 * The client's half of live queries (docs/protocol.md § Sync): one event stream per client,
 * carrying every subscription; subscriptions added and removed by POST. Reconnects by itself
 * with backoff, asks for headers (and so `auth`) again each time, and resubscribes everything on
 * the new stream.
 */
import { ConvoyError, type ConvoyErrorShape } from '../values/errors.js';
import type { BoundUpdate } from './optimistic.js';
import { StreamSession } from './session.js';
import { readEvents } from './sse.js';
import { type Listener, type Subscription, Subscriptions, type UpdateHandle } from './subscriptions.js';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface StreamTransport {
  url: string;
  headers: () => Promise<Record<string, string>>;
  fetch: typeof fetch;
}

const BACKOFF_MS = { first: 250, max: 5_000 };

export class SubscriptionStream {
  private readonly subscriptions = new Subscriptions();
  private readonly session = new StreamSession();
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private state: ConnectionState = 'closed';
  /** The headers the open stream was opened with; its subscriptions are changed with the same. */
  private streamHeaders: Record<string, string> = {};
  private abort: AbortController | null = null;
  private failures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  /** Settles when the open stream's subscriptions are back on the server after it opened. */
  private resubscribing: Promise<void> = Promise.resolve();

  constructor(private readonly transport: StreamTransport) {}

  get connectionState(): ConnectionState {
    return this.state;
  }

  /** The open stream's session, which a mutation names so that its answer can wait for it. */
  get sessionId(): string | null {
    return this.session.id;
  }

  /**
   * Read-your-writes for a mutation answered by another server process than the stream's (its
   * answer carried no position): asks the stream's process to catch up with every commit answered
   * anywhere before now, and waits until the stream carries it. Gives up quietly (the stream
   * still catches up by itself, a moment later) when that cannot be asked.
   */
  async settle(session: string): Promise<void> {
    try {
      const response = await this.transport.fetch(`${this.transport.url}/api/sync/${session}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.streamHeaders },
        body: JSON.stringify({ settle: true }),
      });
      if (!response.ok) return;
      const body = (await response.json()) as { sync?: number };
      if (typeof body.sync === 'number') await this.caughtUp(session, body.sync);
    } catch {
      // The stream is failing too.
    }
  }

  /** See `StreamSession.caughtUp`: what a mutation's answer waits for. */
  caughtUp(session: string, seq: number): Promise<void> {
    return this.session.caughtUp(session, seq);
  }

  /**
   * Resolves when the subscriptions are back on the server after the stream opened: a mutation
   * held while it was down is sent after that, so that its answer's wait for the stream covers
   * them (their first results after the outage would otherwise come after it, showing the write
   * late).
   */
  resubscribed(): Promise<void> {
    return this.resubscribing;
  }

  /** See `Subscriptions.addUpdate`: a pending mutation's optimistic update, until it settles. */
  addOptimisticUpdate(update: BoundUpdate): UpdateHandle {
    return this.subscriptions.addUpdate(update);
  }

  onStateChange(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  subscribe(path: string, args: unknown, listener: Listener): () => void {
    const { subscription, created } = this.subscriptions.add(path, args, listener);
    if (created && this.session.id) void this.change({ add: [wireSubscription(subscription)] });
    this.ensureOpen();
    return () => {
      if (!this.subscriptions.remove(subscription, listener)) return;
      if (this.session.id) void this.change({ remove: [subscription.id] });
      if (this.subscriptions.size === 0) this.stop('closed');
    };
  }

  /** Closes the stream for good (until the next subscription). */
  close(): void {
    this.stop('closed');
  }

  private setState(state: ConnectionState) {
    if (this.state === state) return;
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }

  private ensureOpen() {
    if (this.abort || this.retryTimer) return;
    this.setState(this.failures > 0 ? 'reconnecting' : 'connecting');
    const abort = new AbortController();
    this.abort = abort;
    void this.read(abort).then(
      () => this.lost(abort),
      () => this.lost(abort),
    );
  }

  private stop(state: ConnectionState) {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.abort?.abort();
    this.abort = null;
    this.failures = 0;
    this.session.end();
    this.setState(state);
  }

  /** The stream ended or failed: try again after a while, unless it was closed on purpose. */
  private lost(abort: AbortController) {
    if (this.abort !== abort) return;
    this.abort = null;
    this.session.end();
    if (this.subscriptions.size === 0) {
      this.setState('closed');
      return;
    }
    this.failures++;
    this.setState('reconnecting');
    const delay = Math.min(BACKOFF_MS.max, BACKOFF_MS.first * 2 ** (this.failures - 1));
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = null;
        this.ensureOpen();
      },
      delay * (0.5 + Math.random()),
    );
  }

  private async read(abort: AbortController) {
    // Asked anew for every stream: a reconnect authenticates with a fresh token.
    const headers = await this.transport.headers();
    this.streamHeaders = headers;
    const response = await this.transport.fetch(`${this.transport.url}/api/sync`, {
      headers: { accept: 'text/event-stream', ...headers },
      signal: abort.signal,
    });
    if (!response.ok || !response.body) {
      const error = await errorOf(response);
      for (const subscription of this.subscriptions.all()) this.subscriptions.publish(subscription, { error });
      return;
    }
    for await (const { name, data } of readEvents(response.body)) {
      if (this.abort !== abort) continue;
      this.event(name, JSON.parse(data), abort);
    }
  }

  private event(name: string, message: any, abort: AbortController) {
    if (name === 'close') return; // the server ends the stream (stopping, or idle); reconnect
    if (name === 'sync') {
      this.session.advance(message.seq);
      return;
    }
    if (name === 'session') {
      this.session.begin(message.session);
      this.failures = 0;
      this.setState('open');
      // A new stream knows nothing: subscribe to everything again.
      const add = [...this.subscriptions.all()].map(wireSubscription);
      this.resubscribing = add.length > 0 ? this.change({ add }) : Promise.resolve();
      return;
    }
    const subscription = this.subscriptions.get(message.id);
    if (!subscription) return;
    const error = message.error ? ConvoyError.fromJSON(message.error) : null;
    this.subscriptions.publish(subscription, error ? { error } : { value: message.value });
    if (error?.code === 'UNAUTHORIZED') void this.reauthenticate(abort);
  }

  /**
   * A subscription was refused as unauthorized: when the credentials have changed since the
   * stream opened (a token was refreshed), open a new stream with the new ones.
   */
  private async reauthenticate(abort: AbortController) {
    const opened = JSON.stringify(this.streamHeaders);
    const now = JSON.stringify(await this.transport.headers());
    if (now !== opened && this.abort === abort) abort.abort();
  }

  private async change(body: { add?: ReturnType<typeof wireSubscription>[]; remove?: string[] }) {
    const session = this.session.id;
    if (!session) return;
    try {
      const response = await this.transport.fetch(`${this.transport.url}/api/sync/${session}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.streamHeaders },
        body: JSON.stringify(body),
      });
      if (response.ok || this.session.id !== session) return;
      const error = await errorOf(response);
      for (const { id } of body.add ?? []) {
        const subscription = this.subscriptions.get(id);
        if (subscription) this.subscriptions.publish(subscription, { error });
      }
    } catch {
      // The stream is failing too; the next one subscribes again.
    }
  }
}

/** A subscription as the server is told of it. */
function wireSubscription({ id, path, args }: Subscription) {
  return { id, path, args };
}

async function errorOf(response: Response): Promise<ConvoyError> {
  try {
    const body = (await response.json()) as { error?: ConvoyErrorShape };
    if (body.error) return ConvoyError.fromJSON(body.error);
  } catch {
    // Not Convoy's envelope.
  }
  return new ConvoyError(
    response.status >= 500 ? 'UNAVAILABLE' : 'INTERNAL',
    `the sync stream answered ${response.status}`,
  );
}
