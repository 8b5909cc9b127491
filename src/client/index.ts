/**
 * `ConvoyClient`: calls queries and mutations over HTTP (docs/protocol.md). Framework-free, for
 * browsers and Node (it needs only `fetch`). Arguments and results are typed by the function
 * reference: `client.mutation(api.projects.createProject, { userId, name })`.
 */
import type { ArgsOfReference, FunctionKind, FunctionReference, ReturnsOfReference } from '../functions.js';
import { ConvoyError, type ConvoyErrorShape } from '../values/errors.js';

export type { FunctionReference } from '../functions.js';
export { ConvoyError, isConvoyError } from '../values/errors.js';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

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

  constructor(url: string, options: ConvoyClientOptions = {}) {
    this.url = url.replace(/\/+$/, '');
    this.options = options;
  }

  /**
   * The state of the live-update stream. This version has no stream yet (queries are fetched on
   * demand), so it reads `'closed'`.
   */
  get connectionState(): ConnectionState {
    return 'closed';
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

  /** Ends the client; later calls still work over plain HTTP. */
  close(): void {}

  private async call(kind: FunctionKind, ref: FunctionReference, args: unknown): Promise<any> {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...this.options.headers };
    if (this.options.auth) headers.authorization = `Bearer ${await this.options.auth()}`;
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
    let body: { value?: unknown; error?: ConvoyErrorShape };
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
    return body.value;
  }
}
