/**
 * Debian's PgBouncer in front of a test database, with one pool in transaction mode (`tx`) and
 * one in session mode (`session`): the two kinds of pooler hosted databases put in front of
 * Postgres. Run as the `postgres` user when the tests run as root (PgBouncer refuses root).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, type Running, start } from './process.js';

export const pgbouncerBinary = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((file) => existsSync(file));

export interface Pgbouncer {
  /** URLs of the test database through the pooler: `transaction` and `session` mode. */
  url(mode: 'transaction' | 'session'): string;
  stop(): Promise<void>;
}

/** `databaseUrl` names a database on a server reached over TCP without a password. */
export async function startPgbouncer(databaseUrl: string): Promise<Pgbouncer> {
  if (!pgbouncerBinary) throw new Error('pgbouncer is not installed (apt-get install pgbouncer)');
  const target = new URL(databaseUrl);
  const database = target.pathname.slice(1);
  const dir = await mkdtemp(path.join(tmpdir(), 'convoy-pgbouncer-'));
  const port = await freePort();
  const server = `host=${target.hostname} port=${target.port || 5432} dbname=${database} user=${target.username || 'postgres'}`;
  const config = [
    '[databases]',
    `tx = ${server} pool_mode=transaction`,
    `session = ${server} pool_mode=session`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    // Every client logs in as the database line's user, without a password.
    'auth_type = any',
    // Room for every connection of Convoy's pools: in session mode each holds a server connection.
    'default_pool_size = 40',
    'max_client_conn = 200',
    `logfile = ${path.join(dir, 'pgbouncer.log')}`,
    `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
    '',
  ].join('\n');
  const ini = path.join(dir, 'pgbouncer.ini');
  await writeFile(ini, config);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  const running: Running = asRoot
    ? start('runuser', ['-u', 'postgres', '--', pgbouncerBinary, ini], { cwd: dir, env: process.env })
    : start(pgbouncerBinary, [ini], { cwd: dir, env: process.env });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (running.child.exitCode !== null) throw new Error(`pgbouncer exited:\n${running.output()}`);
    try {
      execFileSync('pg_isready', ['-h', '127.0.0.1', '-p', String(port), '-d', 'tx'], { stdio: 'ignore' });
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`pgbouncer did not start:\n${running.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    url: (mode) =>
      `postgresql://${target.username || 'postgres'}@127.0.0.1:${port}/${mode === 'transaction' ? 'tx' : 'session'}`,
    async stop() {
      await running.stop('SIGINT');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
