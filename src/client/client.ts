/**
 * `ConvoyClient`: calls queries and mutations over HTTP (docs/protocol.md). Framework-free, for
 * browsers and Node (it needs only `fetch`). Arguments and results are typed by the function
 * reference: `client.mutation(api.projects.createProject, { userId, name })`.
 */
import type { ArgsOfReference, FunctionKind, FunctionReference, ReturnsOfReference } from '../functions.js';
import { ConvoyError, type ConvoyErrorShape } from '../values/errors.js';
import type { ArgsParameter, OptimisticUpdate } from './optimistic.js';
import { Outbox } from './outbox.js';
import { type ConnectionState, SubscriptionStream } from './stream.js';

export interface ConvoyClientOptions {
  /** Sent with every request. */
  headers?: Record<string, string>;
  /** Returns a token sent as `Authorization: Bearer <token>`; asked before every request. */
  auth?: () => string | Promise<string>;
  /** A `fetch` to use instead of the global one (tests, custom agents). */
  fetch?: typeof fetch;
}

export interface MutationOptions<Args> {
  /**
   * Changes what this client's live queries show until the mutation settles: rolled back if it
   * fails, replaced by the server's results when it lands (see `OptimisticLocalStore`).
   */
  optimisticUpdate?: OptimisticUpdate<Args>;
}

/** A mutation's args (optional when it takes none), then its options. */
export type MutationParameters<Ref> =
  {} extends ArgsOfReference<Ref>
    ? [args?: ArgsOfReference<Ref>, options?: MutationOptions<ArgsOfReference<Ref>>]
    : [args: ArgsOfReference<Ref>, options?: MutationOptions<ArgsOfReference<Ref>>];

export class ConvoyClient {
  readonly url: string;
  private readonly options: ConvoyClientOptions;
  private readonly stream: SubscriptionStream;
  private readonly outbox: Outbox;
  /** When a mutation of this client's was last answered (ms since the epoch), and by which process. */
  private lastMutationAt = Number.NEGATIVE_INFINITY;
  private lastMutationProcess = '';

  constructor(url: string, options: ConvoyClientOptions = {}) {
    this.url = url.replace(/\/+$/, '');
    this.options = options;
    this.stream = new SubscriptionStream({
      url: this.url,
      headers: () => this.headers(),
      fetch: (...request) => (this.options.fetch ?? globalThis.fetch)(...request),
    });
    this.outbox = new Outbox(this.stream);
  }

  /**
   * The state of the live-update stream: `'closed'` while nothing is subscribed, then
   * `'connecting'`, `'open'`, and `'reconnecting'` while it is down (it retries by itself).
   */
  get connectionState(): ConnectionState {
    return this.stream.connectionState;
  }

  /** Calls `listener` whenever `connectionState` changes; returns a function that stops it. */
  onConnectionStateChange(listener: (state: ConnectionState) => void): () => void {
    return this.stream.onStateChange(listener);
  }

  /**
   * Runs a query and keeps its result current: `onValue` gets the result now and again whenever
   * a write changes it. Subscriptions to the same query and args share one on the server.
   * Returns a function that unsubscribes.
   */
  subscribe<Ref extends FunctionReference<'query'>>(
    ref: Ref,
    args: ArgsOfReference<Ref>,
    onValue: (value: ReturnsOfReference<Ref>) => void,
    onError?: (error: ConvoyError) => void,
  ): () => void {
    return this.stream.subscribe(ref.path, args, {
      onValue: onValue as (value: unknown) => void,
      ...(onError ? { onError } : {}),
    });
  }

  query<Ref extends FunctionReference<'query'>>(
    ref: Ref,
    ...args: ArgsParameter<Ref>
  ): Promise<ReturnsOfReference<Ref>> {
    return this.call('query', ref, args[0]);
  }

  /**
   * Runs a mutation. While the live-update stream is down (`connectionState` is
   * `'reconnecting'`) it is held, and sent when the stream is back, after the mutations called
   * before it; it is applied once however often it had to be sent.
   */
  async mutation<Ref extends FunctionReference<'mutation'>>(
    ref: Ref,
    ...[args, options]: MutationParameters<Ref>
  ): Promise<ReturnsOfReference<Ref>> {
    const update = options?.optimisticUpdate;
    // Shown before anything is sent; an update that throws sends nothing.
    const shown = update ? this.stream.addOptimisticUpdate((store) => update(store, args as never)) : undefined;
    try {
      return await this.call('mutation', ref, args, shown?.sent);
    } finally {
      // Failed: rolled back. Landed: the answer waited for the stream to carry the write (when a
      // stream was open), so the queries show it without the update.
      shown?.drop();
    }
  }

  /** Closes the live-update stream; a later `subscribe` opens it again, and calls still work. */
  close(): void {
    this.stream.close();
  }

  private async headers(): Promise<Record<string, string>> {
    const headers: Record<string, string> = { ...this.options.headers };
    if (this.options.auth) headers.authorization = `Bearer ${await this.options.auth()}`;
    return headers;
  }

  /**
   * Runs a call. A mutation carries an idempotency key, the same on each of its attempts: one the
   * server could not answer (`UNAVAILABLE`, or no answer at all) waits in the outbox and is sent
   * again, and applies at most once.
   */
  private async call(kind: FunctionKind, ref: FunctionReference, args: unknown, onSend?: () => void): Promise<any> {
    if (kind !== 'mutation') return this.send(kind, ref, args, undefined);
    const key = idempotencyKey();
    const place = this.outbox.place();
    const send = () => {
      onSend?.();
      return this.send(kind, ref, args, key);
    };
    if (this.outbox.mustWait) return this.outbox.hold(place, send);
    try {
      return await send();
    } catch (error) {
      if (!Outbox.unanswered(error)) throw error;
      return this.outbox.hold(place, send, true);
    }
  }

  private async send(kind: FunctionKind, ref: FunctionReference, args: unknown, key: string | undefined) {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(await this.headers()) };
    if (key) headers['idempotency-key'] = key;
    // Soon after a mutation was answered, perhaps by another server process, a query must not be
    // answered from a live result that process may not have heard of yet.
    if (kind === 'query' && Date.now() - this.lastMutationAt < FRESH_AFTER_MUTATION_MS) {
      headers['x-convoy-fresh'] = this.lastMutationProcess;
    }
    // With a stream open, a mutation's answer waits for the stream to carry its effect, and says
    // how far to read: when the promise resolves, every subscription already shows the write.
    const session = kind === 'mutation' ? this.stream.sessionId : null;
    if (session) headers['x-convoy-session'] = session;
    const doFetch = this.options.fetch ?? globalThis.fetch;
    let response: Response;
    try {
      response = await doFetch(`${this.url}/api/${kind}`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ path: ref.path, args: args ?? {} }),
      });
    } catch (error) {
      throw new ConvoyError('UNAVAILABLE', `could not reach ${this.url}: ${(error as Error).message}`);
    }
    let body: { value?: unknown; error?: ConvoyErrorShape; sync?: number };
    try {
      body = await response.json();
    } catch {
      throw new ConvoyError(
        response.status >= 500 ? 'UNAVAILABLE' : 'INTERNAL',
        `${this.url} answered ${response.status} without a JSON body; is it a Convoy server?`,
      );
    }
    if (body.error) throw ConvoyError.fromJSON(body.error);
    if (!response.ok) throw new ConvoyError('INTERNAL', `${this.url} answered ${response.status}`);
    if (kind === 'mutation') {
      this.lastMutationAt = Date.now();
      // The process that committed it; any other may not have heard of it yet.
      this.lastMutationProcess = response.headers.get('x-convoy-process') ?? '';
      if (session && typeof body.sync === 'number') await this.stream.caughtUp(session, body.sync);
      // Answered by another process than the stream's: ask the stream's to catch up.
      else if (session) await this.stream.settle(session);
    }
    return body.value;
  }
}

/** How long after a mutation's answer the client's queries ask for a fresh run. */
const FRESH_AFTER_MUTATION_MS = 10_000;

/** A random UUID (v4), also where `crypto.randomUUID` is missing (a page served over plain HTTP). */
function idempotencyKey(): string {
  if (typeof globalThis.crypto?.randomUUID === 'function') return globalThis.crypto.randomUUID();
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
