/**
 * The client's half of live queries (docs/protocol.md § Sync): one event stream per client,
 * carrying every subscription; subscriptions added and removed by POST. Reconnects by itself
 * with backoff, asks `auth` again each time, and resubscribes everything on the new stream.
 */
import { ConvoyError, type ConvoyErrorShape } from '../values/errors.js';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface SyncTransport {
  url: string;
  headers: () => Promise<Record<string, string>>;
  fetch: typeof fetch;
}

interface Listener {
  onValue: (value: unknown) => void;
  onError?: (error: ConvoyError) => void;
}

/** One server-side subscription, shared by every listener of the same function and args. */
interface Entry {
  id: string;
  path: string;
  args: unknown;
  listeners: Set<Listener>;
  last?: { value: unknown } | { error: ConvoyError };
}

const BACKOFF_MS = { first: 250, max: 5_000 };

export class SyncConnection {
  private readonly entries = new Map<string, Entry>();
  private readonly byId = new Map<string, Entry>();
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private state: ConnectionState = 'closed';
  private session: string | null = null;
  /** The headers the open stream was opened with; its subscriptions are changed with the same. */
  private streamHeaders: Record<string, string> = {};
  private abort: AbortController | null = null;
  private nextId = 1;
  private failures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  /** Events of this session read so far (the server's `event: sync` count). */
  private seq = 0;
  private readonly waiters = new Set<{ session: string; seq: number; done: () => void }>();

  constructor(private readonly transport: SyncTransport) {}

  get connectionState(): ConnectionState {
    return this.state;
  }

  /** The open stream's session, which a mutation names so that its answer can wait for it. */
  get sessionId(): string | null {
    return this.session;
  }

  /**
   * Resolves once the stream of `session` has delivered its first `seq` events — then every
   * subscription shows what a mutation answered with that `seq` did — or at once if that stream
   * is gone (a new one starts from current values anyway), or after a few seconds at most.
   */
  caughtUp(session: string, seq: number): Promise<void> {
    if (session !== this.session || this.seq >= seq) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        session,
        seq,
        done: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(waiter.done, 5_000);
      this.waiters.add(waiter);
    });
  }

  private release() {
    for (const waiter of [...this.waiters]) {
      if (waiter.session !== this.session || waiter.seq <= this.seq) waiter.done();
    }
  }

  onStateChange(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  subscribe(path: string, args: unknown, listener: Listener): () => void {
    const key = `${path}\u0000${JSON.stringify(args ?? {})}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { id: String(this.nextId++), path, args: args ?? {}, listeners: new Set() };
      this.entries.set(key, entry);
      this.byId.set(entry.id, entry);
      if (this.session) void this.change({ add: [this.wireEntry(entry)] });
    }
    entry.listeners.add(listener);
    const { last } = entry;
    if (last) queueMicrotask(() => deliver(listener, last));
    this.ensureOpen();
    const subscribed = entry;
    return () => {
      subscribed.listeners.delete(listener);
      if (subscribed.listeners.size > 0 || this.entries.get(key) !== subscribed) return;
      this.entries.delete(key);
      this.byId.delete(subscribed.id);
      if (this.session) void this.change({ remove: [subscribed.id] });
      if (this.entries.size === 0) this.stop('closed');
    };
  }

  /** Closes the stream for good (until the next subscription). */
  close(): void {
    this.stop('closed');
  }

  private wireEntry(entry: Entry) {
    return { id: entry.id, path: entry.path, args: entry.args };
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
    this.session = null;
    this.failures = 0;
    this.release();
    this.setState(state);
  }

  /** The stream ended or failed: try again after a while, unless it was closed on purpose. */
  private lost(abort: AbortController) {
    if (this.abort !== abort) return;
    this.abort = null;
    this.session = null;
    this.release();
    if (this.entries.size === 0) {
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
      for (const entry of this.entries.values()) this.publish(entry, { error });
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += value;
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        this.event(buffer.slice(0, end), abort);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
      }
    }
  }

  private event(text: string, abort: AbortController) {
    if (this.abort !== abort) return;
    let name = 'message';
    let data = '';
    for (const line of text.split('\n')) {
      if (line.startsWith('event:')) name = line.slice(6).trim();
      else if (line.startsWith('data:')) data += line.slice(5).trimStart();
    }
    if (!data) return; // a heartbeat
    const message = JSON.parse(data);
    if (name === 'close') return; // the server ends the stream (stopping, or idle); reconnect
    if (name === 'sync') {
      this.seq = message.seq;
      this.release();
      return;
    }
    if (name === 'session') {
      this.session = message.session;
      this.seq = 0;
      this.failures = 0;
      this.setState('open');
      // A new stream knows nothing: subscribe to everything again.
      const add = [...this.entries.values()].map((entry) => this.wireEntry(entry));
      if (add.length > 0) void this.change({ add });
      return;
    }
    const entry = this.byId.get(message.id);
    if (!entry) return;
    const error = message.error ? ConvoyError.fromJSON(message.error) : null;
    this.publish(entry, error ? { error } : { value: message.value });
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

  private publish(entry: Entry, last: { value: unknown } | { error: ConvoyError }) {
    entry.last = last;
    for (const listener of entry.listeners) deliver(listener, last);
  }

  private async change(body: { add?: unknown[]; remove?: string[] }) {
    const session = this.session;
    if (!session) return;
    try {
      const response = await this.transport.fetch(`${this.transport.url}/api/sync/${session}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.streamHeaders },
        body: JSON.stringify(body),
      });
      if (response.ok || this.session !== session) return;
      const error = await errorOf(response);
      for (const id of (body.add ?? []).map((add: any) => add.id)) {
        const entry = this.byId.get(id);
        if (entry) this.publish(entry, { error });
      }
    } catch {
      // The stream is failing too; the next one subscribes again.
    }
  }
}

function deliver(listener: Listener, last: { value: unknown } | { error: ConvoyError }) {
  if ('value' in last) listener.onValue(last.value);
  else listener.onError?.(last.error);
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
