/**
 * What a Convoy server is started with: `ConvoyOptions`, the limits the environment may set, and
 * the options the native HTTP server gets from them.
 */
import { isIPv6 } from 'node:net';
import { ConvoyError } from '../values/errors.js';
import type { ServerOptions } from './native.js';

export interface ConvoyOptions {
  /** The folder holding `convoy/`. */
  appDir: string;
  databaseUrl: string;
  /** 0 picks a free port. Default 3737. */
  port?: number;
  host?: string;
  /** Dev mode shows internal errors in full to the client; production answers a generic message. */
  dev?: boolean;
  /** Postgres connections for queries, and as many again for mutations. Default 8. */
  poolSize?: number;
  /**
   * Browser origins other than the server's own that may call it: exact (`https://app.example.com`)
   * or any port (`http://localhost:*`). Dev mode adds localhost and 127.0.0.1 on any port.
   */
  allowedOrigins?: string[];
  /**
   * Install the trigger that makes writes made outside Convoy (psql, migrations, other services)
   * reach live queries (docs/postgres.md). Default: on in dev mode, off in production. With
   * `syncSchema: false` nothing is installed: `convoy migrate` installs it.
   */
  changeTrigger?: boolean;
  /**
   * Where the app comes from: `'sources'` (the default) bundles `convoy/` on every load;
   * `'bundle'` loads `.convoy/dist/`, which `convoy build` writes, and needs neither the
   * TypeScript sources nor esbuild.
   */
  load?: 'sources' | 'bundle';
  /**
   * `true` (the default): create what the schema needs, as `convoy dev` does. `false`: change
   * nothing, and refuse to start when the database does not match the schema, naming
   * `convoy migrate` (the production server).
   */
  syncSchema?: boolean;
  /** Request bodies larger than this are refused with `PAYLOAD_TOO_LARGE`. Default 1 MiB. */
  maxBodyBytes?: number;
  /**
   * How long a function may run before its caller gets `INTERNAL` (a mutation's transaction is
   * rolled back). A function may set its own with `timeoutMs`. Default 30 000.
   */
  functionTimeoutMs?: number;
  /** Sync streams open at once; more are answered `UNAVAILABLE`. Default 10 000. */
  maxStreams?: number;
  /** A sync stream that holds no subscription for this long is closed. Default 60 000. */
  streamIdleTimeoutMs?: number;
  /**
   * Open HTTP connections; past it a new connection is answered only on `/health` (others get
   * `UNAVAILABLE`). Default 4 096.
   */
  maxConnections?: number;
  /** Open HTTP connections from one client address, likewise. Default 256. */
  maxConnectionsPerAddress?: number;
  /** Called with a line for the terminal (schema changes, internal errors). Default: console.error. */
  log?: (line: string) => void;
  /**
   * Awaited beside loading the app, before its schema is synced and it is served: a rejection
   * keeps this version out (`convoy dev`'s type check). `reload` takes one of its own.
   */
  admit?: Promise<void>;
}

/** The limits of `ConvoyOptions` that environment variables may set (docs/security.md). */
export type Limits = Pick<
  ConvoyOptions,
  | 'allowedOrigins'
  | 'maxBodyBytes'
  | 'functionTimeoutMs'
  | 'maxStreams'
  | 'streamIdleTimeoutMs'
  | 'maxConnections'
  | 'maxConnectionsPerAddress'
>;

/**
 * The limits set in the environment: `CONVOY_ALLOWED_ORIGINS` (comma-separated),
 * `CONVOY_MAX_BODY_BYTES`, `CONVOY_FUNCTION_TIMEOUT_MS`, `CONVOY_MAX_STREAMS`,
 * `CONVOY_STREAM_IDLE_TIMEOUT_MS`, `CONVOY_MAX_CONNECTIONS`, `CONVOY_MAX_CONNECTIONS_PER_ADDRESS`.
 */
export function limitsFromEnv(env: NodeJS.ProcessEnv = process.env): Limits {
  const limits: Limits = {
    allowedOrigins: (env.CONVOY_ALLOWED_ORIGINS ?? '')
      .split(',')
      .map((origin) => origin.trim())
      .filter(Boolean),
  };
  const numbers = {
    maxBodyBytes: 'CONVOY_MAX_BODY_BYTES',
    functionTimeoutMs: 'CONVOY_FUNCTION_TIMEOUT_MS',
    maxStreams: 'CONVOY_MAX_STREAMS',
    streamIdleTimeoutMs: 'CONVOY_STREAM_IDLE_TIMEOUT_MS',
    maxConnections: 'CONVOY_MAX_CONNECTIONS',
    maxConnectionsPerAddress: 'CONVOY_MAX_CONNECTIONS_PER_ADDRESS',
  } as const;
  for (const [option, name] of Object.entries(numbers) as Array<[keyof typeof numbers, string]>) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new ConvoyError('INVALID_ARGS', `${name} must be a positive whole number, not ${JSON.stringify(text)}`);
    }
    limits[option] = value;
  }
  return limits;
}

/** In dev mode a front end on this machine (Vite, Next) may call the server from any port. */
const LOCAL_ORIGINS = ['http://localhost:*', 'http://127.0.0.1:*'];

/** The largest value a native `u32` option takes. */
const U32_MAX = 0xffff_ffff;

function positive(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value <= 0 || value > U32_MAX) {
    throw new ConvoyError('INVALID_ARGS', `${name} must be a positive whole number up to ${U32_MAX}, not ${value}`);
  }
  return value;
}

/** The native HTTP server's options; a limit out of range is refused here, before anything starts. */
export function serverOptionsOf(options: ConvoyOptions): ServerOptions {
  const dev = options.dev ?? false;
  const limits = {
    maxBodyBytes: positive('maxBodyBytes', options.maxBodyBytes),
    callTimeoutMs: positive('functionTimeoutMs', options.functionTimeoutMs),
    maxStreams: positive('maxStreams', options.maxStreams),
    streamIdleTimeoutMs: positive('streamIdleTimeoutMs', options.streamIdleTimeoutMs),
    maxConnections: positive('maxConnections', options.maxConnections),
    maxConnectionsPerAddress: positive('maxConnectionsPerAddress', options.maxConnectionsPerAddress),
  };
  return {
    port: options.port ?? 3737,
    host: options.host ?? '127.0.0.1',
    allowedOrigins: [...(options.allowedOrigins ?? []), ...(dev ? LOCAL_ORIGINS : [])],
    ...limits,
    dev,
  };
}

/**
 * The URL the server is reached on from this machine once it listens on `port` (what it prints,
 * and what the dashboard's own client calls). A wildcard host is no address to connect to:
 * `0.0.0.0` is reached on 127.0.0.1, and `::` on `[::1]` (Rust binds `::` without setting
 * IPV6_V6ONLY, so it is dual-stack on Linux's default but IPv6 only on Windows and where
 * `net.ipv6.bindv6only` is set: `::1` is reached in both). An IPv6 literal goes in brackets.
 */
export function serverUrlOf(options: Pick<ConvoyOptions, 'host'>, port: number): string {
  const host = options.host ?? '127.0.0.1';
  const reached = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${isIPv6(reached) ? `[${reached}]` : reached}:${port}`;
}
