/**
 * `convoy graduate` end to end (issue 13, GRADUATION.md § Running it online): 100,000 PRODUCT.md
 * projects with a few bad documents, found by `--check` and fixed; then two production servers
 * and a development server serve a steady load of queries, mutations and live queries, with a
 * pagination open, while `convoy graduate projects` and `--complete` run as a user runs them.
 * Not one call fails, every acknowledged write is there, every subscriber ends on a fresh
 * query's answer, the pagination ends with every project once, and the table ends as a fresh
 * `.relational()` one. `--abort` leaves another table as it was; a graduation killed mid-backfill
 * goes on from where it stopped, nothing missed or doubled.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConvoyClient } from '../src/client/index.js';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';
import { type Running, start } from './helpers/process.js';
import { convoy, copyApp, startProduction } from './helpers/production.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'graduate-app');
const PROJECTS = 100_000;
const USERS = 100;

let database: TestDatabase;
let fresh: TestDatabase;
let appDir: string;
let env: NodeJS.ProcessEnv;
const cleanup: Array<() => Promise<unknown>> = [];

async function call(url: string, kind: 'query' | 'mutation', name: string, args: unknown) {
  const response = await fetch(`${url}/api/${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: `app:${name}`, args }),
  });
  return { status: response.status, body: (await response.json()) as any };
}

/** Columns, constraints, indexes and triggers of a table, as psql's \d shows them. */
async function shape(db: TestDatabase, table: string) {
  return {
    columns: await db.query(
      `SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns
       WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
      [table],
    ),
    constraints: await db.query(
      `SELECT conname, pg_get_constraintdef(oid) AS definition, convalidated FROM pg_constraint
       WHERE conrelid = to_regclass($1) ORDER BY conname`,
      [table],
    ),
    indexes: await db.query('SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexname', [
      table,
    ]),
    triggers: await db.query(
      'SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass($1) AND NOT tgisinternal ORDER BY tgname',
      [table],
    ),
  };
}

before(async () => {
  database = await createDatabase();
  fresh = await createDatabase();
  appDir = await copyApp(fixture);
  env = { ...process.env, DATABASE_URL: database.url, NO_COLOR: '1' };
  for (const command of [['build'], ['migrate']]) {
    const { code, output } = await convoy(command, appDir, env);
    assert.equal(code, 0, output);
  }
  await database.query(
    `INSERT INTO users (id, data) SELECT gen_random_uuid(), jsonb_build_object('name', 'user ' || n, 'email', n || '@example.com', 'createdAt', n)
     FROM generate_series(1, ${USERS}) AS n`,
  );
  await database.query(
    `INSERT INTO projects (id, data, created_at)
     SELECT gen_random_uuid(), jsonb_build_object('name', 'project ' || n, 'userId', u.id::text, 'status', 'active', 'createdAt', n),
            now() - (n || ' milliseconds')::interval
     FROM generate_series(1, ${PROJECTS}) AS n
     JOIN LATERAL (SELECT id FROM users ORDER BY id OFFSET n % ${USERS} LIMIT 1) AS u ON true`,
  );
  await database.query(
    "INSERT INTO notes (id, data) SELECT gen_random_uuid(), jsonb_build_object('text', 'note ' || n, 'n', n) FROM generate_series(1, 500) AS n",
  );
  await database.query(
    "INSERT INTO logs (id, data) SELECT gen_random_uuid(), jsonb_build_object('line', 'line ' || n, 'level', n % 5) FROM generate_series(1, 60000) AS n",
  );
});

after(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => {});
  await database?.drop();
  await fresh?.drop();
  if (appDir) await rm(appDir, { recursive: true, force: true });
});

describe('convoy graduate, online', { timeout: 300_000 }, () => {
  test('--check finds the few bad documents among 100,000; once they are fixed, all fit', async () => {
    const bad = await database.query('SELECT id::text FROM projects ORDER BY id LIMIT 5');
    const ids = bad.map((row: any) => row.id);
    await database.query(`UPDATE projects SET data = data || '{"status": "done"}' WHERE id = ANY($1::uuid[])`, [
      ids.slice(0, 3),
    ]);
    await database.query("UPDATE projects SET data = data - 'name' WHERE id = ANY($1::uuid[])", [ids.slice(3)]);
    const refused = await convoy(['graduate', 'projects'], appDir, env);
    assert.equal(refused.code, 1, refused.output);
    const check = await convoy(['graduate', 'projects', '--check', '--json'], appDir, env);
    assert.equal(check.code, 1, check.output);
    const report = JSON.parse(check.output.slice(check.output.indexOf('{'), check.output.lastIndexOf('}') + 1));
    const groups = report.failures.map((group: any) => [group.field, group.reason, group.count, group.sampleIds]);
    assert.deepEqual(groups, [
      ['name', 'missing', 2, ids.slice(3).sort()],
      ['status', 'not_allowed', 3, ids.slice(0, 3).sort()],
    ]);
    await database.query(`UPDATE projects SET data = data || '{"status": "archived"}' WHERE data->>'status' = 'done'`);
    await database.query(`UPDATE projects SET data = data || '{"name": "named later"}' WHERE NOT data ? 'name'`);
    const passes = await convoy(['graduate', 'projects', '--check'], appDir, env);
    assert.equal(passes.code, 0, passes.output);
  });

  test('under load on three servers: no call fails, no write is lost, live queries and a pagination carry on', async () => {
    const servers: string[] = [];
    const at = (index: number) => servers[index % servers.length] as string;
    for (let i = 0; i < 2; i++) {
      const { running, url } = await startProduction(appDir, { DATABASE_URL: database.url });
      cleanup.push(() => (running as Running).stop('SIGTERM'));
      servers.push(url);
    }
    const dev: ConvoyServer = await startConvoy({
      appDir,
      databaseUrl: database.url,
      port: 0,
      dev: true,
      log: () => {},
    });
    cleanup.push(() => dev.stop());
    servers.push(dev.url);

    const users = (await database.query('SELECT id::text FROM users ORDER BY id LIMIT 6')).map((row: any) => row.id);
    const touched = (await database.query('SELECT id::text FROM projects ORDER BY random() LIMIT 200')).map(
      (row: any) => row.id,
    );
    // Live queries on every server, each of a user the load writes to.
    const clients = servers.map((url) => new ConvoyClient(url));
    cleanup.push(async () => {
      for (const client of clients) client.close();
    });
    const live = clients.flatMap((client, s) =>
      users.slice(0, 2).map((userId, u) => {
        const seen: { value: any[] | undefined; errors: string[] } = { value: undefined, errors: [] };
        client.subscribe(
          { path: 'app:listProjects' } as never,
          { userId } as never,
          (value) => {
            seen.value = value as any[];
          },
          (error) => seen.errors.push(`${s}/${u}: ${error.message}`),
        );
        return { userId, seen };
      }),
    );

    // A pagination opened before the graduation, read a page at a time all through it.
    const before = (await database.query('SELECT id::text FROM projects')).map((row: any) => row.id);
    const paged: string[] = [];
    let cursor: string | null = null;
    let pagesDone = false;
    let paging = false;
    const nextPage = async (server: string) => {
      // One page at a time: each continues from the one before.
      if (pagesDone || paging) return;
      paging = true;
      const page = await call(server, 'query', 'projectPage', { cursor, numItems: 1000 });
      assert.equal(page.status, 200, JSON.stringify(page.body));
      paged.push(...page.body.value.page.map((project: any) => project._id));
      cursor = page.body.value.continueCursor;
      pagesDone = page.body.value.isDone;
      paging = false;
    };
    await nextPage(at(0));

    const failures: string[] = [];
    const created: string[] = [];
    const touches = new Map<string, number>();
    let calls = 0;
    let stopping = false;
    const worker = async (w: number) => {
      for (let i = 0; !stopping; i++) {
        const server = at(w + i);
        const userId = users[(w + i) % users.length];
        const kind = i % 4;
        const answer =
          kind === 0
            ? await call(server, 'mutation', 'createProject', { userId, name: `load ${w}.${i}` })
            : kind === 1
              ? await call(server, 'mutation', 'touchProject', { id: touched[(w * 31 + i) % touched.length] })
              : await call(server, 'query', 'listProjects', { userId });
        calls++;
        if (answer.status !== 200) {
          failures.push(`${server} ${kind}: ${answer.status} ${JSON.stringify(answer.body)}`);
          continue;
        }
        if (kind === 0) created.push(answer.body.value);
        if (kind === 1) {
          const id = touched[(w * 31 + i) % touched.length];
          touches.set(id, (touches.get(id) ?? 0) + 1);
        }
        if (i % 20 === 0) await nextPage(server);
      }
    };
    const workers = Array.from({ length: 6 }, (_, w) => worker(w));
    await new Promise((resolve) => setTimeout(resolve, 1000));

    const graduated = await convoy(['graduate', 'projects'], appDir, env);
    assert.equal(graduated.code, 0, graduated.output);
    assert.match(graduated.output, /served from the columns/);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const completed = await convoy(['graduate', 'projects', '--complete'], appDir, env);
    assert.equal(completed.code, 0, completed.output);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    stopping = true;
    await Promise.all(workers);
    while (!pagesDone) await nextPage(at(2));

    assert.deepEqual(failures, [], `${failures.length} of ${calls} calls failed`);
    // Every process was told, and serves the table from its columns now.
    for (const server of servers) {
      const metrics = await (await fetch(`${server}/metrics`)).text();
      assert.match(
        metrics,
        /convoy_table_stage\{table="projects",stage="relational",step="",reads="columns"\} 1/,
        server,
      );
    }
    assert.ok(calls > 200, `the load made ${calls} calls`);
    // Every acknowledged write is there, each once.
    const stored = new Set(
      (await database.query('SELECT id::text FROM projects WHERE id = ANY($1::uuid[])', [created])).map(
        (row: any) => row.id,
      ),
    );
    assert.equal(stored.size, created.length, 'every created project is stored');
    const names = await database.query('SELECT id::text, name FROM projects WHERE id = ANY($1::uuid[])', [
      [...touches.keys()],
    ]);
    for (const { id, name } of names) {
      assert.equal(name.length - name.replace(/\+/g, '').length, touches.get(id), `project ${id}: ${name}`);
    }
    // The pagination saw every project that was there when it began, and none twice.
    assert.equal(new Set(paged).size, paged.length, 'no project twice in the pagination');
    const pagedSet = new Set(paged);
    assert.equal(before.filter((id: string) => !pagedSet.has(id)).length, 0, 'every project once');
    // Every subscriber ends on what a fresh query answers.
    for (const { userId, seen } of live) {
      const answer = await call(at(0), 'query', 'listProjects', { userId });
      const deadline = Date.now() + 5000;
      while (JSON.stringify(seen.value) !== JSON.stringify(answer.body.value) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.deepEqual(seen.value, answer.body.value, `the live listProjects of ${userId}`);
      assert.deepEqual(seen.errors, []);
    }
  });

  test('the graduated table is what .relational() creates, column for column', async () => {
    const relational = await convoy(['migrate'], appDir, {
      ...process.env,
      DATABASE_URL: fresh.url,
      CONVOY_TEST_STORAGE: 'relational',
    });
    assert.equal(relational.code, 0, relational.output);
    const strip = (table: Awaited<ReturnType<typeof shape>>) => ({
      ...table,
      // A dropped column leaves a gap in the numbering only; the change triggers are Convoy's.
      triggers: table.triggers.filter((trigger: any) => !trigger.tgname.startsWith('convoy_notify_')),
    });
    assert.deepEqual(strip(await shape(database, 'projects')), strip(await shape(fresh, 'projects')));
    assert.deepEqual(await database.query("SELECT stage FROM convoy.tables WHERE name = 'projects'"), [
      { stage: 'relational' },
    ]);
  });

  test('--abort leaves a table exactly as it was', async () => {
    const before = await shape(database, 'notes');
    const data = await database.query(
      "SELECT md5(string_agg(id::text || data::text, ',' ORDER BY id)) AS hash FROM notes",
    );
    const graduated = await convoy(['graduate', 'notes'], appDir, env);
    assert.equal(graduated.code, 0, graduated.output);
    assert.notDeepEqual(await shape(database, 'notes'), before);
    const status = await convoy(['graduate', 'notes', '--status'], appDir, env);
    assert.match(status.output, /notes: graduating, served from the columns/);
    const aborted = await convoy(['graduate', 'notes', '--abort'], appDir, env);
    assert.equal(aborted.code, 0, aborted.output);
    assert.deepEqual(await shape(database, 'notes'), before);
    assert.deepEqual(
      await database.query("SELECT md5(string_agg(id::text || data::text, ',' ORDER BY id)) AS hash FROM notes"),
      data,
    );
    assert.deepEqual(await database.query("SELECT stage FROM convoy.tables WHERE name = 'notes'"), [
      { stage: 'documents' },
    ]);
  });

  test('killed mid-backfill, run again, it goes on from there: nothing missed, nothing twice', async () => {
    const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'bin.js');
    const first = start('node', [cli, 'graduate', 'logs', '--max-rows-per-second', '10000'], { cwd: appDir, env });
    const deadline = Date.now() + 60_000;
    for (;;) {
      const [row] = await database
        .query("SELECT rows_done FROM convoy.graduations WHERE table_name = 'logs'")
        .catch(() => [undefined]);
      if (row && Number(row.rows_done) >= 5000) break;
      assert.ok(Date.now() < deadline, `the backfill did not start: ${first.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await first.stop('SIGKILL');
    const [stopped] = await database.query("SELECT step, rows_done FROM convoy.graduations WHERE table_name = 'logs'");
    assert.equal(stopped.step, 'backfill');
    assert.ok(Number(stopped.rows_done) < 60_000, `killed at ${stopped.rows_done}`);

    const again = await convoy(['graduate', 'logs'], appDir, env);
    assert.equal(again.code, 0, again.output);
    assert.match(again.output, /resuming the graduation of logs/);
    const [done] = await database.query("SELECT step, rows_done FROM convoy.graduations WHERE table_name = 'logs'");
    assert.deepEqual({ step: done.step, rows: Number(done.rows_done) }, { step: 'columns', rows: 60_000 });
    const [wrong] = await database.query(
      "SELECT count(*)::int AS n FROM logs WHERE line IS DISTINCT FROM data->>'line' OR level IS DISTINCT FROM (data->>'level')::bigint",
    );
    assert.equal(wrong.n, 0);
    const completed = await convoy(['graduate', 'logs', '--complete'], appDir, env);
    assert.equal(completed.code, 0, completed.output);
    assert.equal((await database.query('SELECT count(*)::int AS n FROM logs'))[0].n, 60_000);
  });
});
