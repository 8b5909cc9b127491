/**
 * `ConvoyClient`: calls queries and mutations over HTTP (docs/protocol.md). Framework-free, for
 * browsers and Node (it needs only `fetch`). Arguments and results are typed by the function
 * reference: `client.mutation(api.projects.createProject, { userId, name })`.
 */
import type { ArgsOfReference, FunctionKind, FunctionReference, ReturnsOfReference } from '../functions.js';
import { ConvoyError, type ConvoyErrorShape } from '../values/errors.js';
import { type ConnectionState, SubscriptionStream } from './stream.js';

export interface ConvoyClientOptions {
  /** Sent with every request. */
  headers?: Record<string, string>;
  /** Returns a token sent as `Authorization: Bearer <token>`; asked before every request. */
  auth?: () => string | Promise<string>;
  /** A `fetch` to use instead of the global one (tests, custom agents). */
  fetch?: typeof fetch;
}

/** `[args]` when the function takes args, `[args?]` when it takes none. */
type ArgsParameter<Ref> =
  {} extends ArgsOfReference<Ref> ? [args?: ArgsOfReference<Ref>] : [args: ArgsOfReference<Ref>];

export class ConvoyClient {
  readonly url: string;
  private readonly options: ConvoyClientOptions;
  private readonly stream: SubscriptionStream;

  constructor(url: string, options: ConvoyClientOptions = {}) {
    this.url = url.replace(/\/+$/, '');
    this.options = options;
    this.stream = new SubscriptionStream({
      url: this.url,
      headers: () => this.headers(),
      fetch: (...request) => (this.options.fetch ?? globalThis.fetch)(...request),
    });
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

  mutation<Ref extends FunctionReference<'mutation'>>(
    ref: Ref,
    ...args: ArgsParameter<Ref>
  ): Promise<ReturnsOfReference<Ref>> {
    return this.call('mutation', ref, args[0]);
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

  private async call(kind: FunctionKind, ref: FunctionReference, args: unknown): Promise<any> {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(await this.headers()) };
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
    if (session && typeof body.sync === 'number') await this.stream.caughtUp(session, body.sync);
    return body.value;
  }
}
