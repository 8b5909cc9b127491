/**
 * A Postgres cluster of the test's own that accepts only TLS, with a CA and a server certificate
 * made by openssl: what a hosted database looks like from the outside. Debian's Postgres binaries
 * (or PG_BIN); run as the `postgres` user when the tests run as root, since initdb refuses root.
 *
 * The server certificate names `localhost` only, so that connecting to 127.0.0.1 with
 * `verify-full` is a name mismatch and `verify-ca` is not. With `selfSigned`, the server's
 * certificate is made by the Postgres docs' recipe instead: self-signed, for localhost and
 * 127.0.0.1, and CA:TRUE (openssl's default for `req -x509`), trusted by giving it as `sslrootcert`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './process.js';

export const pgBin = process.env.PG_BIN ?? findPgBin();

function findPgBin(): string {
  for (const version of ['17', '16', '15', '14']) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    if (existsSync(path.join(dir, 'initdb'))) return dir;
  }
  return '';
}

export interface TlsCluster {
  port: number;
  /** The CA that signed the server's certificate. */
  caFile: string;
  /** A CA that signed nothing of this server's. */
  otherCaFile: string;
  /** The server's own certificate (with `selfSigned`, the one to give as `sslrootcert`). */
  serverCertFile: string;
  /** A user that logs in with a SCRAM password (channel binding needs one). */
  scramUser: { name: string; password: string };
  /** `postgresql://postgres@<host>:<port>/<database>?<params>`. */
  url(params: Record<string, string>, options?: { host?: string; database?: string; user?: string }): string;
  /** Runs SQL as the superuser over the cluster's Unix socket. */
  psql(sql: string, database?: string): string;
  stop(): Promise<void>;
}

const asRoot = process.getuid?.() === 0;

function runAsPostgres(command: string, args: string[], cwd?: string): string {
  const [file, fileArgs] = asRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
  return execFileSync(file, fileArgs, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'ignore' });
}

async function makeCa(dir: string, name: string): Promise<void> {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-subj',
      `/CN=Convoy test ${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
}

/** The server's certificate as https://www.postgresql.org/docs/current/ssl-tcp.html makes it. */
function makeSelfSignedByDocsRecipe(dir: string): void {
  openssl(
    [
      'req',
      '-new',
      '-x509',
      '-days',
      '2',
      '-nodes',
      '-text',
      '-out',
      'server.crt',
      '-keyout',
      'server.key',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    dir,
  );
}

async function makeCaSigned(dir: string): Promise<void> {
  openssl(
    ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'],
    dir,
  );
  await writeFile(
    path.join(dir, 'server.ext'),
    'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '2',
      '-extfile',
      'server.ext',
    ],
    dir,
  );
}

export async function startTlsCluster(options: { selfSigned?: boolean } = {}): Promise<TlsCluster> {
  if (!pgBin) throw new Error('no Postgres binaries found: set PG_BIN to the folder holding initdb');
  const dir = await mkdtemp(path.join(tmpdir(), 'convoy-tls-'));
  await makeCa(dir, 'ca');
  await makeCa(dir, 'other-ca');
  if (options.selfSigned) makeSelfSignedByDocsRecipe(dir);
  else await makeCaSigned(dir);
  await chmod(path.join(dir, 'server.key'), 0o600);
  await chmod(dir, 0o755);
  if (asRoot) execFileSync('chown', ['-R', 'postgres:postgres', dir]);

  const data = path.join(dir, 'data');
  runAsPostgres(path.join(pgBin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], dir);
  const port = await freePort();
  const settings = [
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${dir}'`,
    'ssl = on',
    `ssl_cert_file = '${path.join(dir, 'server.crt')}'`,
    `ssl_key_file = '${path.join(dir, 'server.key')}'`,
    "password_encryption = 'scram-sha-256'",
    'fsync = off',
    'max_connections = 200',
  ];
  await writeFile(path.join(data, 'postgresql.auto.conf'), `${settings.join('\n')}\n`);
  // TCP only over TLS: a plain-text connection finds no line and is refused ("no encryption").
  await writeFile(
    path.join(data, 'pg_hba.conf'),
    [
      'local all all trust',
      'hostssl all convoy_scram 127.0.0.1/32 scram-sha-256',
      'hostssl all all 127.0.0.1/32 trust',
      '',
    ].join('\n'),
  );
  if (asRoot) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  runAsPostgres(path.join(pgBin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'log'), '-w', 'start'], dir);

  const psql = (sql: string, database = 'postgres') =>
    runAsPostgres(
      path.join(pgBin, 'psql'),
      ['-h', dir, '-p', String(port), '-U', 'postgres', '-d', database, '-Atqc', sql],
      dir,
    );
  const scramUser = { name: 'convoy_scram', password: 'correct horse' };
  psql(`CREATE ROLE ${scramUser.name} LOGIN SUPERUSER PASSWORD '${scramUser.password}'`);

  return {
    port,
    caFile: path.join(dir, 'ca.crt'),
    otherCaFile: path.join(dir, 'other-ca.crt'),
    serverCertFile: path.join(dir, 'server.crt'),
    scramUser,
    url(params, options = {}) {
      // Percent-encoded as libpq decodes it (URLSearchParams would write a space as `+`).
      const query = Object.entries(params)
        .map(([key, value]) => `${key}=${encodeURIComponent(value)}`)
        .join('&');
      const user = options.user ?? 'postgres';
      return `postgresql://${user}@${options.host ?? '127.0.0.1'}:${port}/${options.database ?? 'postgres'}${query ? `?${query}` : ''}`;
    },
    psql,
    async stop() {
      try {
        runAsPostgres(path.join(pgBin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], dir);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
