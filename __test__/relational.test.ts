/**
 * `.relational()` tables over HTTP (issue 12; docs/postgres.md § A relational table): the table
 * Convoy creates (typed columns, NOT NULL, CHECK, foreign keys, indexes, the column names), the
 * same `ctx.db` on it, PRODUCT.md's raw SQL as written, the database's constraints answered with
 * their codes and nothing written, what `onDelete` does (live queries included), a field added
 * later, and a table whose stage differs from its declaration, reported and never converted.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConvoyClient } from '../src/client/index.js';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { callOk } from './helpers/call.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';
import { convoy, copyApp } from './helpers/production.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'relational-app');

let database: TestDatabase;
let server: ConvoyServer;
let appDir: string;
let client: ConvoyClient;

async function callPath(kind: 'query' | 'mutation', path: string, args: unknown = {}) {
  const response = await fetch(`${server.url}/api/${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path, args }),
  });
  return { status: response.status, body: (await response.json()) as any };
}
const call = (kind: 'query' | 'mutation', name: string, args: unknown = {}) => callPath(kind, `app:${name}`, args);
const ok = (kind: 'query' | 'mutation', name: string, args: unknown = {}) =>
  callOk(server.url, kind, `app:${name}`, args);
const count = async (table: string) => (await database.query(`SELECT count(*)::int AS n FROM ${table}`))[0].n as number;

/** The latest value of a live query, and a way to wait for one that passes a test. */
function watch(name: string, args: Record<string, unknown>) {
  const values: unknown[] = [];
  const unsubscribe = client.subscribe({ path: `app:${name}` } as never, args as never, (value) => values.push(value));
  return {
    unsubscribe,
    async until(check: (value: any) => boolean, what: string) {
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline) {
        if (values.some(check)) return;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.fail(`timed out waiting for ${what}; saw ${JSON.stringify(values)}`);
    },
  };
}

before(async () => {
  database = await createDatabase();
  appDir = await copyApp(fixture);
  const codegen = await convoy(['codegen'], appDir);
  assert.equal(codegen.code, 0, codegen.output);
  server = await startConvoy({ appDir, databaseUrl: database.url, port: 0, dev: true, log: () => {} });
  client = new ConvoyClient(server.url);
});

after(async () => {
  client?.close();
  await server?.stop();
  await database?.drop();
  if (appDir) await rm(appDir, { recursive: true, force: true });
});

describe('the table Convoy creates', () => {
  test('a typed column per field, NOT NULL where required, CHECK for the enum, FKs for refs', async () => {
    const columns = await database.query(
      `SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
       WHERE table_schema = 'public' AND table_name IN ('projects', 'tasks') ORDER BY table_name, ordinal_position`,
    );
    assert.deepEqual(
      columns.map((c: any) => `${c.table_name}.${c.column_name} ${c.data_type} ${c.is_nullable}`),
      [
        'projects.id uuid NO',
        'projects.created_at timestamp with time zone NO',
        'projects.updated_at timestamp with time zone NO',
        'projects.name text NO',
        'projects.user_id uuid NO',
        'projects.status text NO',
        // PRODUCT.md's createdAt steps around Convoy's own created_at.
        'projects.created_at_field double precision NO',
        'tasks.id uuid NO',
        'tasks.created_at timestamp with time zone NO',
        'tasks.updated_at timestamp with time zone NO',
        'tasks.title text NO',
        'tasks.project_id uuid NO',
        'tasks.done boolean NO',
        // A name the schema chose; nullable, since the field may be null.
        'tasks.estimate_hours bigint YES',
      ],
    );
    const constraints = await database.query(
      `SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint
       WHERE conrelid IN ('projects'::regclass, 'tasks'::regclass, 'comments'::regclass) AND contype IN ('c', 'f')
       ORDER BY conname`,
    );
    assert.deepEqual(
      constraints.map((c: any) => `${c.conname}: ${c.definition}`),
      [
        'comments_assignee_id_fkey: FOREIGN KEY (assignee_id) REFERENCES users(id) ON DELETE SET NULL',
        'comments_note_id_fkey: FOREIGN KEY (note_id) REFERENCES notes(id) ON DELETE CASCADE',
        "projects_status_check: CHECK ((status = ANY (ARRAY['draft'::text, 'active'::text, 'archived'::text])))",
        'projects_user_id_fkey: FOREIGN KEY (user_id) REFERENCES users(id)',
        'tasks_project_id_fkey: FOREIGN KEY (project_id) REFERENCES projects(id) ON DELETE CASCADE',
      ],
    );
    // The schema's index serves the FK too; comments' refs get an index each.
    const indexes = await database.query(
      `SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('projects', 'comments') AND indexname NOT LIKE '%pkey' ORDER BY indexname`,
    );
    assert.deepEqual(
      indexes.map((index: any) => index.indexdef.replace(/ USING btree/, '').replace(/^CREATE INDEX \S+ /, '')),
      ['ON public.comments (assignee_id)', 'ON public.comments (note_id)', 'ON public.projects (user_id)'],
    );
    assert.deepEqual(
      (await database.query('SELECT name, stage FROM convoy.tables ORDER BY name')).map(
        (row: any) => `${row.name} ${row.stage}`,
      ),
      ['comments relational', 'notes documents', 'projects relational', 'tasks relational', 'users relational'],
    );
    assert.ok(
      server.lastSync.notes.some((note) => /projects\.createdAt is the column created_at_field/.test(note)),
      JSON.stringify(server.lastSync.notes),
    );
  });
});

describe('the same ctx.db', () => {
  test("PRODUCT.md's query and raw SQL, as written", async () => {
    const ada = await ok('mutation', 'createUser', { name: 'Ada', email: 'ada@example.com' });
    const first = await ok('mutation', 'createProject', { userId: ada, name: 'Engine' });
    const second = await ok('mutation', 'createProject', { userId: ada, name: 'Notes', status: 'draft' });
    const projects = await ok('query', 'listProjects', { userId: ada });
    assert.deepEqual(
      projects.map((project: any) => [project._id, project.name, project.status, project.userId]),
      [
        [second, 'Notes', 'draft', ada],
        [first, 'Engine', 'active', ada],
      ],
    );
    assert.equal(typeof projects[0]._creationTime, 'number');
    assert.equal(typeof projects[0].createdAt, 'number');
    assert.deepEqual(Object.keys(projects[0]).sort(), [
      '_creationTime',
      '_id',
      'createdAt',
      'name',
      'status',
      'userId',
    ]);
    assert.deepEqual(await ok('query', 'activeProjectNames'), [{ name: 'Engine' }]);
    // A read-modify-write.
    await ok('mutation', 'renameProject', { id: first, suffix: ' 2' });
    assert.deepEqual(await ok('query', 'activeProjectNames'), [{ name: 'Engine 2' }]);
  });

  test('a nullable field reads back as null, an optional one as missing', async () => {
    const user = await ok('mutation', 'createUser', { name: 'Bo', email: 'bo@example.com' });
    const project = await ok('mutation', 'createProject', { userId: user, name: 'Tasks' });
    await ok('mutation', 'addTask', { projectId: project, title: 'unsized' });
    await ok('mutation', 'addTask', { projectId: project, title: 'sized', estimate: 3 });
    const tasks = await ok('query', 'tasksOf', { projectId: project });
    assert.deepEqual(
      tasks.map((task: any) => [task.title, task.estimate, task.done]),
      [
        ['unsized', null, false],
        ['sized', 3, false],
      ],
    );
    const note = await ok('mutation', 'addNote', { text: 'no user' });
    await ok('mutation', 'addComment', { noteId: note, body: 'unassigned' });
    const [comment] = await ok('query', 'comments');
    assert.equal('assigneeId' in comment, false, JSON.stringify(comment));
  });
});

describe('constraints answer with their codes, and nothing is written', () => {
  test('a ref to a row that does not exist is INVALID_ARGS naming the constraint, on insert and on patch', async () => {
    const before = await count('projects');
    const refused = await call('mutation', 'createProject', { userId: randomUUID(), name: 'Orphan' });
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'INVALID_ARGS');
    assert.match(refused.body.error.message, /projects_user_id_fkey/);
    assert.deepEqual(refused.body.error.data, {
      constraint: 'projects_user_id_fkey',
      table: 'projects',
      column: 'user_id',
    });
    assert.equal(await count('projects'), before);

    const owner = await ok('mutation', 'createUser', { name: 'Cy', email: 'cy@example.com' });
    const project = await ok('mutation', 'createProject', { userId: owner, name: 'Kept' });
    const moved = await call('mutation', 'moveProject', { id: project, userId: randomUUID() });
    assert.equal(moved.status, 400, JSON.stringify(moved.body));
    assert.equal(moved.body.error.code, 'INVALID_ARGS');
    const [row] = await database.query('SELECT user_id::text AS user_id FROM projects WHERE id = $1', [project]);
    assert.equal(row.user_id, owner);
  });

  test('deleting a row others refer to is CONFLICT with data.constraint, and the row stays', async () => {
    const owner = await ok('mutation', 'createUser', { name: 'Di', email: 'di@example.com' });
    await ok('mutation', 'createProject', { userId: owner, name: 'Anchor' });
    const refused = await call('mutation', 'deleteUser', { id: owner });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'CONFLICT');
    assert.equal(refused.body.error.data.constraint, 'projects_user_id_fkey');
    assert.equal((await database.query('SELECT 1 FROM users WHERE id = $1', [owner])).length, 1);
  });

  test("a CHECK and a unique index of the user's: INVALID_ARGS and CONFLICT", async () => {
    await database.query('ALTER TABLE projects ADD CONSTRAINT project_name_short CHECK (length(name) < 30)');
    await database.query('CREATE UNIQUE INDEX project_name_unique ON projects (name)');
    try {
      const owner = await ok('mutation', 'createUser', { name: 'Ed', email: 'ed@example.com' });
      const before = await count('projects');
      const long = await call('mutation', 'createProject', {
        userId: owner,
        name: 'a name far too long for the check',
      });
      assert.equal(long.status, 400, JSON.stringify(long.body));
      assert.match(long.body.error.message, /project_name_short/);
      await ok('mutation', 'createProject', { userId: owner, name: 'Unique' });
      const twice = await call('mutation', 'createProject', { userId: owner, name: 'Unique' });
      assert.equal(twice.status, 409, JSON.stringify(twice.body));
      assert.equal(twice.body.error.data.constraint, 'project_name_unique');
      assert.equal(await count('projects'), before + 1);
    } finally {
      await database.query('ALTER TABLE projects DROP CONSTRAINT project_name_short');
      await database.query('DROP INDEX project_name_unique');
    }
  });

  test('a NOT NULL of the database is INVALID_ARGS naming the column', async () => {
    await database.query('DELETE FROM comments WHERE assignee_id IS NULL');
    await database.query('ALTER TABLE comments ALTER COLUMN assignee_id SET NOT NULL');
    try {
      const note = await ok('mutation', 'addNote', { text: 'for a comment' });
      const refused = await call('mutation', 'addComment', { noteId: note, body: 'nobody' });
      assert.equal(refused.status, 400, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, 'INVALID_ARGS');
      assert.match(refused.body.error.message, /assignee_id/);
    } finally {
      await database.query('ALTER TABLE comments ALTER COLUMN assignee_id DROP NOT NULL');
    }
  });
});

describe('onDelete', () => {
  test('cascade deletes the tasks with their project, and their live query sees it', async () => {
    const owner = await ok('mutation', 'createUser', { name: 'Fi', email: 'fi@example.com' });
    const project = await ok('mutation', 'createProject', { userId: owner, name: 'Doomed' });
    await ok('mutation', 'addTask', { projectId: project, title: 'one' });
    await ok('mutation', 'addTask', { projectId: project, title: 'two' });
    const live = watch('tasksOf', { projectId: project });
    await live.until((tasks) => tasks.length === 2, 'both tasks');
    await ok('mutation', 'deleteProject', { id: project });
    await live.until((tasks) => tasks.length === 0, 'no tasks once the project is gone');
    live.unsubscribe();
    assert.equal((await database.query('SELECT 1 FROM tasks WHERE project_id = $1', [project])).length, 0);
  });

  test('setNull leaves the ref missing; a cascade from a document table reaches a relational one', async () => {
    const assignee = await ok('mutation', 'createUser', { name: 'Gil', email: 'gil@example.com' });
    const note = await ok('mutation', 'addNote', { text: 'assigned', userId: assignee });
    await ok('mutation', 'addComment', { noteId: note, body: 'for gil', assigneeId: assignee });
    const live = watch('comments', {});
    await live.until((all) => all.some((comment: any) => comment.assigneeId === assignee), "gil's comment");
    await ok('mutation', 'deleteUser', { id: assignee });
    await live.until(
      (all) => all.some((comment: any) => comment.body === 'for gil' && !('assigneeId' in comment)),
      'the comment without its assignee',
    );
    // The document table's ref to the deleted user is not checked: it dangles, as documented.
    assert.equal((await database.query("SELECT 1 FROM notes WHERE data->>'userId' = $1", [assignee])).length, 1);
    await ok('mutation', 'deleteNote', { id: note });
    await live.until(
      (all) => !all.some((comment: any) => comment.body === 'for gil'),
      'the comment gone with its note',
    );
    live.unsubscribe();
  });
});

describe('the schema changes', () => {
  test('a field added to a relational table adds its column; old rows read without it', async () => {
    const schemaFile = path.join(appDir, 'convoy', 'schema.ts');
    const original = await readFile(schemaFile, 'utf8');
    await writeFile(
      schemaFile,
      original.replace('done: z.boolean(),', 'done: z.boolean(),\n    priority: z.number().optional(),'),
    );
    try {
      await server.reload();
      const [column] = await database.query(
        "SELECT data_type, is_nullable FROM information_schema.columns WHERE table_name = 'tasks' AND column_name = 'priority'",
      );
      assert.deepEqual(column, { data_type: 'double precision', is_nullable: 'YES' });
      const owner = await ok('mutation', 'createUser', { name: 'Hal', email: 'hal@example.com' });
      const project = await ok('mutation', 'createProject', { userId: owner, name: 'Grows' });
      await ok('mutation', 'addTask', { projectId: project, title: 'before priorities' });
      const [task] = await ok('query', 'tasksOf', { projectId: project });
      assert.equal('priority' in task, false);
    } finally {
      await writeFile(schemaFile, original);
      await server.reload();
    }
    // Convoy never drops a column.
    assert.equal(
      (
        await database.query(
          "SELECT 1 FROM information_schema.columns WHERE table_name = 'tasks' AND column_name = 'priority'",
        )
      ).length,
      1,
    );
  });

  test('a schema that loosens loosens the table: a widened enum, a field made optional, a field removed; a changed type is reported', async () => {
    const schemaFile = path.join(appDir, 'convoy', 'schema.ts');
    const original = await readFile(schemaFile, 'utf8');
    const changed = original
      .replace(
        "status: z.enum(['draft', 'active', 'archived']),",
        "status: z.enum(['draft', 'active', 'archived', 'paused']),",
      )
      .replace('    title: z.string(),\n', '    title: z.string().optional(),\n')
      .replace('    done: z.boolean(),\n', '')
      .replace('body: z.string(),', 'body: z.number(),');
    assert.notEqual(changed, original);
    await writeFile(schemaFile, changed);
    const functionsFile = path.join(appDir, 'convoy', 'functions', 'app.ts');
    const functions = await readFile(functionsFile, 'utf8');
    await writeFile(
      functionsFile,
      functions
        .replace(
          "status: z.enum(['draft', 'active', 'archived']).optional() }",
          "status: z.enum(['draft', 'active', 'archived', 'paused']).optional() }",
        )
        .replace(
          "ctx.db.insert('tasks', { projectId: projectId as never, title, done: false, estimate: estimate ?? null }),",
          "ctx.db.insert('tasks', { projectId: projectId as never, ...(title ? { title } : {}), estimate: estimate ?? null } as never),",
        ),
    );
    try {
      await server.reload();
      const notes = server.lastSync.notes.join('\n');
      assert.match(notes, /projects\.status: its allowed values changed/);
      assert.match(notes, /tasks\.done is no field of the schema any more/);
      assert.match(notes, /comments\.body is now double precision in the schema, but its column body is text/);
      const owner = await ok('mutation', 'createUser', { name: 'Jo', email: 'jo@example.com' });
      const project = await ok('mutation', 'createProject', {
        userId: owner,
        name: 'Paused',
        status: 'paused' as never,
      });
      await ok('mutation', 'addTask', { projectId: project, title: '' });
      const [task] = await ok('query', 'tasksOf', { projectId: project });
      assert.equal('title' in task, false);
      const mismatch = await call('mutation', 'addComment', {
        noteId: await ok('mutation', 'addNote', { text: 'n' }),
        body: 1 as never,
      });
      assert.equal(mismatch.status, 400, JSON.stringify(mismatch.body));
      assert.equal(mismatch.body.error.code, 'INVALID_ARGS');
      // Running it again changes nothing.
      const again = await convoy(['migrate', '--dry-run'], appDir, { ...process.env, DATABASE_URL: database.url });
      assert.match(again.output, /nothing to do/, again.output);
    } finally {
      await writeFile(schemaFile, original);
      await writeFile(functionsFile, functions);
      await server.reload();
    }
  });

  test('raw SQL that reaches for data or a field name on a relational table says which column to use', async () => {
    const schemaFile = path.join(appDir, 'convoy', 'functions', 'raw.ts');
    await writeFile(
      schemaFile,
      "import { sql } from '@avvos/convoy';\nimport { query } from '../_generated/server';\n" +
        "export const byData = query({ handler: async (ctx) => ctx.db.raw(sql`SELECT 1 FROM projects WHERE data->>'status' = 'active'`) });\n" +
        'export const byField = query({ handler: async (ctx) => ctx.db.raw(sql`SELECT 1 FROM projects WHERE userId IS NULL`) });\n',
    );
    try {
      await server.reload();
      const byData = (await callPath('query', 'raw:byData')).body;
      assert.equal(byData.error.code, 'INVALID_ARGS');
      assert.match(byData.error.message, /relational: each field is a column of its own/);
      const byField = (await callPath('query', 'raw:byField')).body;
      assert.equal(byField.error.code, 'INVALID_ARGS');
      assert.match(byField.error.message, /userId of the relational table projects is the column user_id/);
    } finally {
      await rm(schemaFile);
      await server.reload();
    }
  });

  test('a document table declared .relational() is reported, and served as documents', async () => {
    const schemaFile = path.join(appDir, 'convoy', 'schema.ts');
    const original = await readFile(schemaFile, 'utf8');
    await writeFile(
      schemaFile,
      original.replace(
        "notes: defineTable({ text: z.string(), userId: defineRef('users').optional() }),",
        "notes: defineTable({ text: z.string(), userId: defineRef('users').optional() }).relational(),",
      ),
    );
    try {
      await server.reload();
      assert.ok(
        server.lastSync.notes.some((note) => /notes is declared \.relational\(\) but holds documents/.test(note)),
        JSON.stringify(server.lastSync.notes),
      );
      await ok('mutation', 'addNote', { text: 'still a document' });
      assert.equal((await database.query("SELECT 1 FROM notes WHERE data->>'text' = 'still a document'")).length, 1);
      assert.deepEqual(
        (await database.query("SELECT stage FROM convoy.tables WHERE name = 'notes'")).map((row: any) => row.stage),
        ['documents'],
      );
    } finally {
      await writeFile(schemaFile, original);
      await server.reload();
    }
  });

  test('a write made with psql reaches live queries of a relational table (the change trigger)', async () => {
    const owner = await ok('mutation', 'createUser', { name: 'Ivy', email: 'ivy@example.com' });
    const live = watch('listProjects', { userId: owner });
    await live.until((projects) => projects.length === 0, 'no projects yet');
    await database.query(
      "INSERT INTO projects (id, name, user_id, status, created_at_field) VALUES (gen_random_uuid(), 'from psql', $1, 'active', 1)",
      [owner],
    );
    await live.until((projects) => projects.some((project: any) => project.name === 'from psql'), 'the psql row');
    live.unsubscribe();
  });
});
