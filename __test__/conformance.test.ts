/**
 * `convoy graduate <table> --check` (GRADUATION.md § The conformance report), run as a user runs
 * it: every kind of failure seeded by SQL into 100,000 documents and found exactly, each row
 * counted once per field and reason with its first ids; a conforming table exits 0; `--json`;
 * the steps not built yet exit 2. Then what the report is for: a patch refused because of fields
 * that were already invalid says so, and `convoy dev` counts the documents a tightened schema no
 * longer fits.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { projectId, seedSql } from './fixtures/graduation-app/seed.mjs';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';
import { freePort, type Running, start, waitForHealth } from './helpers/process.js';
import { cliPath, convoy, copyApp } from './helpers/production.js';

const source = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'graduation-app');

const DOCUMENTS = 100_000;
const PER_KIND = DOCUMENTS / 1000;
const NOT_AN_OBJECT = '20000000-0000-7000-8000-000000000001';

/** 100,000 projects, 100 of each kind of failure (the fixture's seed.mjs), and two rows more. */
const SEED = `${seedSql({ documents: DOCUMENTS, users: 100 })}
INSERT INTO projects (id, data) VALUES ('${NOT_AN_OBJECT}', '[1, 2]');
INSERT INTO tasks (id, data) VALUES (gen_random_uuid(), '{"projectId": "${projectId(500)}", "title": "t"}');
`;

/** The ids of kind `kind` (and of more kinds, for a group they share), in id order. */
function idsOf(...kinds: number[]): string[] {
  const ids: number[] = [];
  for (let g = 1; g <= DOCUMENTS; g++) if (kinds.includes(g % 1000)) ids.push(g);
  return ids.map(projectId);
}

let database: TestDatabase;
let app: string;
let env: NodeJS.ProcessEnv;
const cleanup: Array<() => Promise<unknown>> = [];

before(async () => {
  database = await createDatabase();
  app = await copyApp(source);
  // Plain text, as a pipe gets it, whatever CI=true tells picocolors.
  env = { ...process.env, DATABASE_URL: database.url, NO_COLOR: '1' };
  const migrated = await convoy(['migrate'], app, env);
  assert.equal(migrated.code, 0, migrated.output);
  await database.query(SEED);
});

after(async () => {
  for (const step of cleanup.reverse()) await step();
  await database?.drop();
});

describe('convoy graduate --check', { timeout: 120_000 }, () => {
  test('every failing row of 100,000 is found, once per field and reason, with its first ids and a fix', async () => {
    const started = Date.now();
    const { code, output } = await convoy(['graduate', 'projects', '--check', '--json'], app, env);
    assert.equal(code, 1, output);
    const report = JSON.parse(output.slice(output.indexOf('{'), output.lastIndexOf('}') + 1));
    const groups = Object.fromEntries(
      report.failures.map((group: any) => [`${group.field} ${group.reason}`, group]),
    ) as Record<string, any>;
    const expected: Array<[string, number[], string[]]> = [
      ['(document) not_an_object', [], ['sql', 'zod']],
      ['name missing', [1, 14], ['sql', 'zod']],
      ['name null', [2], ['sql', 'zod']],
      ['name refinement', [3], ['zod']],
      ['email refinement', [9], ['zod']],
      ['userId not_castable', [7], ['sql', 'zod']],
      ['userId dangling_ref', [8], ['sql']],
      ['status wrong_type', [5], ['sql', 'zod']],
      ['status not_allowed', [4, 14], ['sql', 'zod']],
      ['count not_castable', [6], ['sql', 'zod']],
      ['score wrong_type', [13], ['sql', 'zod']],
      ['settings wrong_type', [15], ['sql', 'zod']],
      ['settings.theme not_allowed', [11], ['sql', 'zod']],
      ['settings.notifications missing', [12], ['sql', 'zod']],
      ['(unknown fields) unknown_field', [10], ['sql', 'zod']],
    ];
    assert.deepEqual(
      report.failures.map((group: any) => `${group.field} ${group.reason}`),
      expected.map(([key]) => key),
      'one group per field and reason, in the order of the schema',
    );
    for (const [key, kinds, foundBy] of expected) {
      const group = groups[key]!;
      const ids = kinds.length === 0 ? [NOT_AN_OBJECT] : idsOf(...kinds);
      assert.equal(group.count, ids.length, `${key}: count`);
      assert.deepEqual(group.sampleIds, ids.slice(0, 5), `${key}: the first ids`);
      assert.deepEqual(group.foundBy, foundBy, `${key}: found by`);
      assert.ok(['update', 'default', 'mutation'].includes(group.fix.kind), `${key}: a fix`);
    }
    // The fast pass's SQL and the exact pass's Zod file each failure under the same rule.
    for (const fast of report.fast.failures) {
      assert.equal(
        groups[`${fast.field} ${fast.reason}`]?.count,
        fast.count,
        `${fast.field} ${fast.reason}: both passes`,
      );
      assert.deepEqual(groups[`${fast.field} ${fast.reason}`]?.sampleIds, fast.sampleIds);
    }
    assert.equal(report.documents, DOCUMENTS + 1);
    assert.equal(report.failingDocuments, 15 * PER_KIND + 1, 'a row that breaks two rules is one failing document');
    assert.equal(report.conforms, false);
    // The fast pass sees all but the Zod-only rules (the empty name and the email).
    assert.equal(report.fast.failingDocuments, 13 * PER_KIND + 1);
    assert.equal(report.fast.documents, DOCUMENTS + 1);
    assert.match(groups['name refinement'].rule, /Too small/);
    assert.match(groups['(unknown fields) unknown_field'].rule, /legacy \(100\)/);
    assert.match(
      groups['status not_allowed'].fix.sql,
      /^UPDATE "projects" SET data = jsonb_set\(data, ARRAY\['status'\]/,
    );
    assert.deepEqual(
      report.warnings.map((warning: any) => [warning.parent, warning.child, warning.referenced ?? null]),
      [
        ['users', 'projects', 100],
        ['projects', 'tasks', null],
      ],
    );
    assert.match(report.warnings[0].message, /refused with CONFLICT/);
    assert.equal(report.warnings[1].onDelete, 'cascade');
    assert.match(report.warnings[1].message, /deletes the tasks documents that name it too \(.* ON DELETE CASCADE\)/);
    assert.deepEqual(report.zodOnly, [
      { field: 'name', rules: ['min_length'] },
      { field: 'email', rules: ['string_format email'] },
    ]);
    console.log(`the check of ${DOCUMENTS} documents, as the CLI runs it: ${Date.now() - started} ms`);
  });

  test('the fixes it offers, run as printed, leave only what needs a mutation', async () => {
    const scratch = await createDatabase();
    cleanup.push(() => scratch.drop());
    const scratchEnv = { ...process.env, DATABASE_URL: scratch.url };
    assert.equal((await convoy(['migrate'], app, scratchEnv)).code, 0);
    await scratch.query(SEED.replace(`generate_series(1, ${DOCUMENTS})`, 'generate_series(1, 2000)'));
    const first = await convoy(['graduate', 'projects', '--check', '--json'], app, scratchEnv);
    const report = JSON.parse(first.output.slice(first.output.indexOf('{'), first.output.lastIndexOf('}') + 1));
    for (const group of report.failures) {
      if (group.fix.kind !== 'mutation') await scratch.query(group.fix.sql);
    }
    const second = await convoy(['graduate', 'projects', '--check', '--json'], app, scratchEnv);
    const left = JSON.parse(second.output.slice(second.output.indexOf('{'), second.output.lastIndexOf('}') + 1));
    assert.deepEqual(
      left.failures.map((group: any) => [`${group.field} ${group.reason}`, group.fix.kind]),
      [
        ['(document) not_an_object', 'mutation'],
        ['name refinement', 'mutation'],
        ['email refinement', 'mutation'],
        ['userId not_castable', 'mutation'],
        ['userId dangling_ref', 'mutation'],
        ['settings wrong_type', 'mutation'],
      ],
    );
  });

  test('the report as a person reads it: a line per field and reason, the fix under it; progress in plain lines', async () => {
    const { code, output } = await convoy(['graduate', 'projects', '--check', '--batch-size', '10000'], app, env);
    assert.equal(code, 1, output);
    assert.match(output, /projects: 1,501 of 100,001 documents do not fit the schema/);
    assert.match(
      output,
      new RegExp(
        `\\n  status: not one of 'draft', 'active', 'archived' — 200 documents: ${idsOf(4, 14).slice(0, 5).join(', ')}, …`,
      ),
    );
    assert.match(output, /\n {4}fix \(update\): map them to "draft"/);
    assert.match(output, /\n {6}UPDATE "projects" SET data = jsonb_set/);
    assert.match(output, /userId: no document of users has this id — 100 documents/);
    assert.match(output, /warning: once projects is graduated, a delete of any of the 100 documents of users/);
    // No TTY: a plain line per tenth, with the rate.
    assert.match(output, /checked 50,000 of 100,001 documents of projects \(49%, [\d,]+\/s, about .* left\)/);
  });

  test('a table whose documents all fit exits 0', async () => {
    const { code, output } = await convoy(['graduate', 'users', '--check'], app, env);
    assert.equal(code, 0, output);
    assert.match(output, /users: all 100 documents fit the schema and their refs/);
    assert.match(
      output,
      /warning: once projects is graduated too, a delete of a document of users .* refused with CONFLICT/,
    );
  });

  test('what cannot run says so and exits 2; a graduation of documents that do not fit is refused with 1', async () => {
    const before = await database.query(
      "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'projects'",
    );
    const status = await convoy(['graduate', 'projects', '--status'], app, env);
    assert.equal(status.code, 0, status.output);
    assert.match(status.output, /projects: documents, no graduation under way/);
    for (const flag of ['--abort', '--complete']) {
      const { code, output } = await convoy(['graduate', 'projects', flag], app, env);
      assert.equal(code, 2, output);
      assert.match(output, /projects is not graduating \(it is documents\)/);
    }
    const both = await convoy(['graduate', 'projects', '--check', '--status'], app, env);
    assert.equal(both.code, 2, both.output);
    const bare = await convoy(['graduate', 'projects'], app, env);
    assert.equal(bare.code, 1, bare.output);
    assert.match(bare.output, /projects cannot graduate while documents do not fit the schema/);
    const after = await database.query(
      "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'projects'",
    );
    assert.deepEqual(after, before, 'the refused graduation changed nothing');
    const unknown = await convoy(['graduate', 'nope', '--check'], app, env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.output, /has no table nope; its tables: users, projects, tasks/);
    const { DATABASE_URL: _, ...noUrl } = env;
    const missing = await convoy(['graduate', 'projects', '--check'], app, {
      ...noUrl,
      DATABASE_URL: `${database.url}_missing`,
    });
    assert.equal(missing.code, 2, missing.output);
  });
});

describe('what the report is for', { timeout: 120_000 }, () => {
  let server: ConvoyServer;

  before(async () => {
    server = await startConvoy({ appDir: app, databaseUrl: database.url, port: 0, dev: false, log: () => {} });
    cleanup.push(() => server.stop());
  });

  const rename = async (g: number) => {
    const response = await fetch(`${server.url}/api/mutation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'projects:rename', args: { id: projectId(g), name: 'renamed' } }),
    });
    return { status: response.status, body: (await response.json()) as any };
  };

  test('a patch refused only for fields already invalid in the stored document names them and the check', async () => {
    const refused = await rename(9);
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'INVALID_ARGS');
    assert.match(
      refused.body.error.message,
      /the patch is valid, but email was already invalid in the stored document \(email: Invalid email address\)/,
    );
    assert.match(refused.body.error.message, /npx convoy graduate projects --check/);
    const [stored] = await database.query('SELECT data FROM projects WHERE id = $1', [projectId(9)]);
    assert.equal(stored.data.name, 'project 9', 'nothing was written');

    // The patch corrects the missing name, but not the status.
    const two = await rename(14 + 1000);
    assert.equal(two.status, 400);
    assert.match(two.body.error.message, /but status was already invalid in the stored document/);
    // A patch that corrects the one invalid field passes.
    assert.equal((await rename(1)).status, 200);
  });
});

describe('convoy dev, when the schema tightens', { timeout: 120_000 }, () => {
  test('it says how many documents no longer fit, and the command that lists them, while it serves', async () => {
    const devDatabase = await createDatabase();
    cleanup.push(() => devDatabase.drop());
    const devApp = await copyApp(source);
    const port = await freePort();
    const dev: Running = start('node', [cliPath, 'dev', '--port', String(port)], {
      cwd: devApp,
      env: { ...process.env, DATABASE_URL: devDatabase.url, NO_COLOR: '1' },
    });
    cleanup.push(() => dev.stop());
    await waitForHealth(`http://127.0.0.1:${port}`, dev);
    await devDatabase.query(`
      INSERT INTO projects (id, data) SELECT gen_random_uuid(), jsonb_build_object('name', 'p', 'userId',
        gen_random_uuid()::text, 'status', CASE WHEN g <= 3 THEN 'archived' ELSE 'active' END, 'count', g, 'score', null,
        'settings', '{"theme": "dark", "notifications": true}'::jsonb) FROM generate_series(1, 10) g`);

    const schemaFile = path.join(devApp, 'convoy', 'schema.ts');
    const schema = await readFile(schemaFile, 'utf8');
    await writeFile(
      schemaFile,
      schema.replace("z.enum(['draft', 'active', 'archived'])", "z.enum(['draft', 'active'])"),
    );
    const deadline = Date.now() + 30_000;
    while (!/no longer fit/.test(dev.output()) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.match(
      dev.output(),
      /projects: 3 of 10 documents no longer fit the schema \(status: not one of 'draft', 'active' — 3\); see them: npx convoy graduate projects --check/,
    );
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    assert.equal(health.status, 200);

    // Widening it back fits every document: nothing to say.
    const before = dev.output().length;
    await writeFile(schemaFile, schema);
    while (!/reloaded/.test(dev.output().slice(before)) && Date.now() < deadline + 30_000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.doesNotMatch(dev.output().slice(before), /no longer fit/);
  });
});
