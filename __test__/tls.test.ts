/**
 * TLS to Postgres (SPEC §11) against a cluster of the test's own that accepts only TLS: every
 * sslmode connects or fails as libpq's does, a wrong certificate fails with a message about the
 * certificate, the refusal of plain text is explained, channel binding works with SCRAM, and a
 * server over `verify-full` serves queries, mutations and live queries, with commits reaching a
 * second process through LISTEN/NOTIFY over TLS. Also the other steps of connecting (DNS, TCP,
 * authentication, a missing database), each named in its error.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ConvoyClient } from '../src/client/index.js';
import { connectEngine } from '../src/server/native.js';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { callOk } from './helpers/call.js';
import { serverUrl } from './helpers/postgres.js';
import { freePort, type Running } from './helpers/process.js';
import { convoy, copyApp, startProduction } from './helpers/production.js';
import { startTlsCluster, type TlsCluster } from './helpers/tls-postgres.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const appDir = path.join(here, 'fixtures', 'behaviour-app');

let cluster: TlsCluster;

before(async () => {
  cluster = await startTlsCluster();
});

after(async () => {
  await cluster?.stop();
});

/** Connects the native core the way every server and the CLI do, and proves TLS was used. */
async function connectsOverTls(
  params: Record<string, string>,
  options?: { host?: string; user?: string },
  on: TlsCluster = cluster,
) {
  const application = `convoy_tls_${Math.random().toString(36).slice(2, 10)}`;
  const url = on.url({ ...params, application_name: application }, options);
  const engine = await connectEngine(url, 1, '');
  try {
    const ssl = on.psql(
      `SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = '${application}'`,
    );
    assert.equal(ssl.trim(), 't', `the connections of ${url} use TLS`);
  } finally {
    await engine.close();
  }
}

async function refusal(url: string): Promise<string> {
  try {
    const engine = await connectEngine(url, 1, '');
    await engine.close();
  } catch (error) {
    const message = (error as Error).message;
    assert.doesNotMatch(message, /OtherError|Other\(/, 'no Rust debug text in the message');
    return message;
  }
  assert.fail(`${url} connected`);
}

/** Runs `body` with HOME (where libpq's default ~/.postgresql/root.crt is looked for) at `home`. */
async function withHome<T>(home: string, body: () => Promise<T>): Promise<T> {
  const saved = process.env.HOME;
  process.env.HOME = home;
  try {
    return await body();
  } finally {
    process.env.HOME = saved;
  }
}

describe('sslmode against a server that accepts only TLS', () => {
  test('require, no-verify and prefer connect (encrypted, certificate unchecked)', async () => {
    await connectsOverTls({ sslmode: 'require' });
    await connectsOverTls({ sslmode: 'no-verify' });
    await connectsOverTls({ sslmode: 'prefer' });
    await connectsOverTls({});
  });

  test('verify-ca with the right CA connects, whatever name the certificate carries', async () => {
    await connectsOverTls({ sslmode: 'verify-ca', sslrootcert: cluster.caFile });
    await connectsOverTls({ sslmode: 'require', sslrootcert: cluster.caFile });
  });

  test('verify-full with the right CA connects by the name in the certificate', async () => {
    await connectsOverTls({ sslmode: 'verify-full', sslrootcert: cluster.caFile }, { host: 'localhost' });
  });

  test('verify-full with another CA fails with a message about the certificate', async () => {
    const message = await refusal(
      cluster.url({ sslmode: 'verify-full', sslrootcert: cluster.otherCaFile }, { host: 'localhost' }),
    );
    assert.match(message, /TLS failed \(sslmode=verify-full\)/);
    assert.match(message, /certificate has an unknown issuer: it is not signed by a CA Convoy trusts/);
    assert.match(message, new RegExp(`the certificates in sslrootcert=${cluster.otherCaFile}`));
    assert.match(message, /sslrootcert=/);
  });

  test('verify-ca with another CA fails too', async () => {
    const message = await refusal(cluster.url({ sslmode: 'verify-ca', sslrootcert: cluster.otherCaFile }));
    assert.match(message, /not signed by a CA Convoy trusts/);
  });

  test('verify-full by a name the certificate does not carry says so, and points at verify-ca', async () => {
    const message = await refusal(cluster.url({ sslmode: 'verify-full', sslrootcert: cluster.caFile }));
    assert.match(message, /not made out to "127\.0\.0\.1": it is made out to localhost\./);
    assert.match(message, /verify-ca/);
  });

  test("the server's refusal of sslmode=disable is explained", async () => {
    const message = await refusal(cluster.url({ sslmode: 'disable' }));
    assert.match(message, /accepts only encrypted connections/);
    assert.match(message, /sslmode=require/);
  });

  test('allow falls back to TLS when the server refuses plain text', async () => {
    await connectsOverTls({ sslmode: 'allow' });
  });

  test('channel_binding=require works over TLS with a SCRAM password, and without TLS is refused', async () => {
    const { name, password } = cluster.scramUser;
    const user = `${name}:${encodeURIComponent(password)}`;
    await connectsOverTls({ sslmode: 'require', channel_binding: 'require' }, { user });
    const wrong = await refusal(cluster.url({ sslmode: 'require' }, { user: `${name}:wrong` }));
    assert.match(wrong, /authentication failed for user "convoy_scram"/);
  });

  test('a password the URL leaves out: asked for by name, or taken from PGPASSWORD as libpq does', async () => {
    const { name, password } = cluster.scramUser;
    const message = await refusal(cluster.url({ sslmode: 'require' }, { user: name }));
    assert.match(message, /the server asks user "convoy_scram" for a password, and DATABASE_URL has none/);
    process.env.PGPASSWORD = password;
    try {
      await connectsOverTls({ sslmode: 'require' }, { user: name });
    } finally {
      delete process.env.PGPASSWORD;
    }
  });

  test('a role that does not exist is named, with how to create it', async () => {
    const message = await refusal(cluster.url({ sslmode: 'require' }, { user: 'nobody_here' }));
    assert.match(message, /role "nobody_here" does not exist/);
    assert.match(message, /CREATE ROLE nobody_here LOGIN/);
  });

  test('a missing certificate file is named', async () => {
    const message = await refusal(cluster.url({ sslmode: 'verify-full', sslrootcert: '/nonexistent/ca.pem' }));
    assert.match(message, /sslrootcert=\/nonexistent\/ca\.pem/);
  });
});

describe("a self-signed server certificate made by the Postgres docs' recipe (CA:TRUE)", () => {
  let selfSigned: TlsCluster;

  before(async () => {
    selfSigned = await startTlsCluster({ selfSigned: true });
  });

  after(async () => {
    await selfSigned?.stop();
  });

  test('verify-full with that certificate as sslrootcert connects, by either name it carries', async () => {
    const params = { sslmode: 'verify-full', sslrootcert: selfSigned.serverCertFile };
    await connectsOverTls(params, { host: 'localhost' }, selfSigned);
    await connectsOverTls(params, {}, selfSigned);
  });

  test('verify-ca with that certificate as sslrootcert connects', async () => {
    await connectsOverTls({ sslmode: 'verify-ca', sslrootcert: selfSigned.serverCertFile }, {}, selfSigned);
    await connectsOverTls({ sslmode: 'require', sslrootcert: selfSigned.serverCertFile }, {}, selfSigned);
  });

  test('verify-full by a name it does not carry is refused, naming the host', async () => {
    const message = await refusal(
      selfSigned.url(
        { sslmode: 'verify-full', sslrootcert: selfSigned.serverCertFile, hostaddr: '127.0.0.1' },
        { host: 'wrong-name.example' },
      ),
    );
    assert.match(message, /not made out to "wrong-name\.example": it is made out to localhost, 127\.0\.0\.1/);
    assert.match(message, /sslmode=verify-ca/);
  });

  test('another CA file says the certificate is a CA certificate, and that giving it as sslrootcert works', async () => {
    for (const sslmode of ['verify-full', 'verify-ca']) {
      const message = await refusal(selfSigned.url({ sslmode, sslrootcert: selfSigned.otherCaFile }));
      assert.match(message, new RegExp(`TLS failed \\(sslmode=${sslmode}\\)`));
      assert.match(message, /is a CA certificate \(basicConstraints CA:TRUE/);
      assert.match(message, new RegExp(`not one of the certificates in sslrootcert=${selfSigned.otherCaFile}`));
      assert.match(message, /give that very certificate as sslrootcert=/);
    }
  });

  test("sslrootcert=system says the operating system's CAs were trusted", async () => {
    const message = await refusal(selfSigned.url({ sslrootcert: 'system' }, { host: 'localhost' }));
    assert.match(message, /(the operating system's CAs \(sslrootcert=system\)|no trusted CA certificates were found)/);
  });

  test("no sslrootcert: libpq's default ~/.postgresql/root.crt is read, and its absence is said", async () => {
    const home = await mkdtemp(path.join(tmpdir(), 'convoy-home-'));
    try {
      const missing = await withHome(home, () => refusal(selfSigned.url({ sslmode: 'verify-full' })));
      assert.match(
        missing,
        new RegExp(
          `no sslrootcert was given, and libpq's default file ${home}/\\.postgresql/root\\.crt does not exist`,
        ),
      );
      await mkdir(path.join(home, '.postgresql'));
      await copyFile(selfSigned.serverCertFile, path.join(home, '.postgresql', 'root.crt'));
      await withHome(home, () => connectsOverTls({ sslmode: 'verify-full' }, {}, selfSigned));
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});

test('prefer (the default) chooses TLS when the server offers both', async (t) => {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query('SHOW ssl');
    if (rows[0].ssl !== 'on') return t.skip(`the server at ${serverUrl} has ssl off`);
    const application = `convoy_prefer_${Math.random().toString(36).slice(2, 10)}`;
    const url = new URL(serverUrl);
    url.searchParams.set('application_name', application);
    const engine = await connectEngine(url.toString(), 1, '');
    try {
      const ssl = await admin.query(
        'SELECT bool_and(s.ssl) AS tls FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1',
        [application],
      );
      assert.equal(ssl.rows[0].tls, true);
    } finally {
      await engine.close();
    }
  } finally {
    await admin.end();
  }
});

describe('each step of connecting is named in its error', () => {
  test('DNS', async () => {
    const message = await refusal('postgresql://postgres@convoy-no-such-host.invalid:5432/postgres');
    assert.match(message, /DNS: the host name "convoy-no-such-host.invalid" could not be resolved/);
  });

  test('TCP', async () => {
    const port = await freePort();
    const message = await refusal(`postgresql://postgres@127.0.0.1:${port}/postgres?connect_timeout=5`);
    assert.match(message, new RegExp(`TCP: 127\\.0\\.0\\.1 resolves .*no connection could be made to port ${port}`));
  });

  test('a database that does not exist', async () => {
    const message = await refusal(cluster.url({ sslmode: 'require' }, { database: 'no_such_database' }));
    assert.match(message, /the database "no_such_database" does not exist/);
    assert.match(message, /createdb no_such_database/);
  });

  test('libpq values tokio-postgres would refuse are understood, and a wrong one is named', async () => {
    const message = await refusal(cluster.url({ sslmode: 'sometimes' }));
    assert.match(message, /sslmode=sometimes is not one of disable, allow, prefer, require, verify-ca, verify-full/);
  });
});

describe('a server over verify-full', () => {
  let database: string;
  let url: string;
  let server: ConvoyServer;
  let other: Running;
  let otherUrl: string;
  let app: string | undefined;

  before(async () => {
    database = `convoy_tls_app_${Math.random().toString(36).slice(2, 10)}`;
    cluster.psql(`CREATE DATABASE ${database}`);
    cluster.psql(
      'CREATE TABLE events (id serial PRIMARY KEY, event text NOT NULL, at timestamptz NOT NULL DEFAULT now())',
      database,
    );
    url = cluster.url({ sslmode: 'verify-full', sslrootcert: cluster.caFile }, { host: 'localhost', database });
    // The production path: `convoy build`, `convoy migrate` (the CLI over TLS), then
    // `node convoy/_generated/http.js`; beside it a server as `convoy dev` runs one.
    app = await copyApp(appDir);
    const built = await convoy(['build'], app);
    assert.equal(built.code, 0, built.output);
    const migrated = await convoy(['migrate'], app, { ...process.env, DATABASE_URL: url });
    assert.equal(migrated.code, 0, migrated.output);
    const production = await startProduction(app, { DATABASE_URL: url });
    other = production.running;
    otherUrl = production.url;
    server = await startConvoy({ appDir, databaseUrl: url, port: 0, dev: true, log: () => {} });
  });

  after(async () => {
    await other?.stop('SIGTERM');
    await server?.stop();
    if (app) await rm(app, { recursive: true, force: true });
  });

  const call = callOk;

  test('the production server serves queries and mutations', async () => {
    await call(otherUrl, 'mutation', 'notes:add', { text: 'over tls', n: 1 });
    const notes = await call(otherUrl, 'query', 'notes:list', {});
    assert.deepEqual(
      notes.map((note: any) => note.text),
      ['over tls'],
    );
    const health = await fetch(`${otherUrl}/health`);
    assert.equal(health.status, 200);
  });

  test('a live query on the production server sees a mutation made on the other process (LISTEN/NOTIFY over TLS)', async () => {
    const client = new ConvoyClient(otherUrl);
    const seen: unknown[][] = [];
    const unsubscribe = client.subscribe({ path: 'notes:list' } as any, {}, (value) => seen.push(value as unknown[]));
    try {
      const deadline = Date.now() + 15_000;
      while (seen.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
      assert.ok(seen.length > 0, 'the first value arrived');
      const before = seen.at(-1)!.length;
      await call(server.url, 'mutation', 'notes:add', { text: 'across processes', n: 2 });
      while (seen.at(-1)!.length === before && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      assert.equal(seen.at(-1)!.length, before + 1, 'the write made on the other process arrived');
      const ssl = cluster.psql(
        "SELECT count(*) FILTER (WHERE NOT s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.backend_type = 'client backend' AND a.client_addr IS NOT NULL AND a.datname = current_database()",
        database,
      );
      assert.equal(ssl.trim(), '0', 'no connection to the app database is plain text');
    } finally {
      unsubscribe();
      client.close();
    }
  });
});
