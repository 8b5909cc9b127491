/**
 * `convoy dev` as a new user meets it (issue 16): help and typos, the type check that keeps a
 * version with type errors out, stack traces through source maps, function files where Convoy
 * does not look, `.env` files, the database it names. A real `convoy dev` process (dist/) on a
 * database of its own on the test Postgres.
 */
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { callOk } from './helpers/call.js';
import { devEnv, makeDevApp, notesFile, startDev, waitForOutput } from './helpers/devApp.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';
import { type Running, run } from './helpers/process.js';
import { cliPath } from './helpers/production.js';

const convoy = (...args: string[]) => run('node', [cliPath, ...args], { cwd: path.dirname(cliPath), env: devEnv() });

describe('convoy --help, --version and a mistyped command', () => {
  test('--help and --version print once; dev --help is dev’s help alone, --typecheck in it', async () => {
    const help = await convoy('--help');
    assert.equal(help.code, 0);
    assert.equal(help.output.split('Usage:').length - 1, 1, help.output);
    const version = await convoy('--version');
    assert.equal(version.output.trim().split('\n').length, 1, version.output);
    const devHelp = await convoy('dev', '--help');
    assert.equal(devHelp.code, 0);
    assert.equal(devHelp.output.split('Usage:').length - 1, 1, devHelp.output);
    assert.match(devHelp.output, /\$ convoy dev/);
    assert.match(devHelp.output, /--typecheck <mode>/);
    assert.doesNotMatch(devHelp.output, /Commands:|graduate/, 'not the global help after it');
  });

  test('an unknown command says so, suggests the nearest one and exits 1', async () => {
    const typo = await convoy('dve');
    assert.equal(typo.code, 1);
    assert.match(typo.output, /unknown command dve — did you mean dev\?/);
    const withHelp = await convoy('dve', '--help');
    assert.equal(withHelp.code, 1, 'not the global help and exit 0');
    assert.match(withHelp.output, /unknown command dve — did you mean dev\?/);
    const far = await convoy('frobnicate');
    assert.equal(far.code, 1);
    assert.match(far.output, /unknown command frobnicate/);
    assert.doesNotMatch(far.output, /did you mean/, 'no suggestion that is not near');
  });

  test('an unknown option without a command says so and exits 1, not the help and 0', async () => {
    const bogus = await convoy('--bogus');
    assert.equal(bogus.code, 1, bogus.output);
    assert.match(bogus.output, /unknown option --bogus/);
    assert.doesNotMatch(bogus.output, /Usage/);
  });

  test('--typecheck takes enable or disable only', async () => {
    const app = await makeDevApp({}, { typescript: false });
    const wrong = await run('node', [cliPath, 'dev', '--typecheck', 'sometimes'], { cwd: app, env: devEnv() });
    assert.equal(wrong.code, 1);
    assert.match(wrong.output, /--typecheck is enable or disable, not sometimes/);
  });
});

describe('convoy dev', { timeout: 120_000 }, () => {
  let database: TestDatabase;
  const running: Running[] = [];
  // A password to mask: the test server's own, or one its trust authentication ignores.
  const urlWithPassword = () => {
    const url = new URL(database.url);
    if (!url.password) url.password = 's3cret-pw';
    return url;
  };
  const withDatabase = (extra: NodeJS.ProcessEnv = {}) => devEnv({ DATABASE_URL: database.url, ...extra });
  // One at a time: the one before stops first (two cores are shared with everything else).
  const dev = async (...args: Parameters<typeof startDev>) => {
    for (const child of running.splice(0)) await child.stop('SIGINT');
    const started = await startDev(...args);
    running.push(started.running);
    return started;
  };

  before(async () => {
    database = await createDatabase();
  });
  after(async () => {
    for (const child of running) await child.stop('SIGINT');
    await database.drop();
  });

  test('a handler returning a string for a number is not swapped in: the last good version keeps serving', async () => {
    const app = await makeDevApp({});
    const { running: served, url } = await dev(app, { env: withDatabase() });
    assert.equal(await callOk(url, 'query', 'notes:count', {}), 1);

    await writeFile(path.join(app, 'convoy', 'functions', 'notes.ts'), notesFile("'str'"));
    await waitForOutput(served, /1 type error in convoy\/:\nconvoy\/functions\/notes\.ts\(2,\d+\): error TS2322/);
    assert.match(served.output(), /still serving the last version/);
    assert.equal(await callOk(url, 'query', 'notes:count', {}), 1, 'the last good version');

    await writeFile(path.join(app, 'convoy', 'functions', 'notes.ts'), notesFile('2'));
    await waitForOutput(served, /reloaded/);
    assert.equal(await callOk(url, 'query', 'notes:count', {}), 2);
  });

  test('deleting a function file reloads: the stale _generated/api.ts naming it does not hold the next version up', async () => {
    const extra = "import { query } from '@avvos/convoy';\nexport const x = query({ handler: async () => 1 });\n";
    const app = await makeDevApp({ 'convoy/functions/extra.ts': extra });
    const { running: served, url } = await dev(app, { env: withDatabase() });
    assert.equal(await callOk(url, 'query', 'extra:x', {}), 1);
    await rm(path.join(app, 'convoy', 'functions', 'extra.ts'));
    await waitForOutput(served, /reloaded/);
    assert.doesNotMatch(served.output(), /type error/);
    const gone = await fetch(`${url}/api/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'extra:x', args: {} }),
    });
    assert.equal(gone.status, 404);
  });

  test('type errors at the first start: nothing is served until a save type-checks', async () => {
    const app = await makeDevApp({ 'convoy/functions/notes.ts': notesFile("'str'") });
    const { running: waiting, url } = await dev(app, { env: withDatabase(), until: /not serving until/ });
    assert.match(waiting.output(), /error TS2322/);
    assert.match(waiting.output(), /--typecheck disable/, 'names the way out');
    await assert.rejects(fetch(`${url}/health`), 'no server yet');

    await writeFile(path.join(app, 'convoy', 'functions', 'notes.ts'), notesFile('3'));
    await waitForOutput(waiting, /serving http/);
    assert.equal(await callOk(url, 'query', 'notes:count', {}), 3);
  });

  test("PRODUCT.md's createContext(req, base) under strict is an implicit any said, not a version held back", async () => {
    // PRODUCT.md's auth example as typed in, a stand-in for its verifyJwt beside it.
    const server = `async function verifyJwt(token: string | undefined) {
  return { sub: token ?? 'anonymous' };
}
export async function createContext(req, base) {
  const token = req.headers.authorization?.replace(/^Bearer /, '');
  const user = await verifyJwt(token);
  return { ...base, auth: { userId: user.sub } };
}
`;
    const app = await makeDevApp({ 'convoy/server.ts': server });
    const { running: served, url } = await dev(app, { env: withDatabase() });
    assert.match(served.output(), /implicit anys in convoy\/.*defineContext/s);
    assert.match(served.output(), /convoy\/server\.ts\(4,\d+\): error TS7006/);
    assert.doesNotMatch(served.output(), /not serving until/);
    assert.equal(await callOk(url, 'query', 'notes:count', {}), 1);
  });

  test('a mended tsconfig.json is noticed without a save in convoy/', async () => {
    // An unused local, which the first tsconfig refuses and the second does not.
    const unused = `import { query } from '@avvos/convoy';\nconst unused = 1;\nexport const count = query({ handler: async (): Promise<number> => 4 });\n`;
    const app = await makeDevApp({ 'convoy/functions/notes.ts': unused });
    const tsconfig = JSON.parse(await readFile(path.join(app, 'tsconfig.json'), 'utf8'));
    await writeFile(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({ ...tsconfig, compilerOptions: { ...tsconfig.compilerOptions, noUnusedLocals: true } }),
    );
    const { running: waiting, url } = await dev(app, { env: withDatabase(), until: /not serving until/ });
    assert.match(waiting.output(), /error TS6133/);
    await writeFile(path.join(app, 'tsconfig.json'), JSON.stringify(tsconfig));
    await waitForOutput(waiting, /serving http/);
    assert.equal(await callOk(url, 'query', 'notes:count', {}), 4);
  });

  test('--typecheck disable serves a version with type errors', async () => {
    const app = await makeDevApp({ 'convoy/functions/notes.ts': notesFile("'str'") });
    const { url, running: served } = await dev(app, { env: withDatabase(), args: ['--typecheck', 'disable'] });
    assert.equal(await callOk(url, 'query', 'notes:count', {}), 'str');
    assert.doesNotMatch(served.output(), /type error|typescript/i);
  });

  test('an app without TypeScript says once that it is not type-checked, and serves', async () => {
    const app = await makeDevApp({}, { typescript: false });
    const { url, running: served } = await dev(app, { env: withDatabase() });
    assert.equal(served.output().match(/no typescript in the app's node_modules: not type-checking/g)?.length, 1);
    assert.equal(await callOk(url, 'query', 'notes:count', {}), 1);
  });

  test('a stack trace of a handler names convoy/functions/notes.ts and its line, not .convoy/build', async () => {
    const app = await makeDevApp({});
    const { url, running: served } = await dev(app, { env: withDatabase(), args: ['--typecheck', 'disable'] });
    const response = await fetch(`${url}/api/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'notes:boom', args: {} }),
    });
    const stack: string = ((await response.json()) as any).error.data.stack;
    assert.match(stack, /convoy\/functions\/notes\.ts:3:\d+/, stack);
    assert.doesNotMatch(stack, /\.convoy\/build/, stack);
    await waitForOutput(served, /notes:boom failed/);
    assert.match(served.output(), /convoy\/functions\/notes\.ts:3:\d+/, 'the terminal too');
  });

  test('functions in convoy/*.ts (the layout of Convex) are named, with where to move them', async () => {
    const app = await makeDevApp({
      'convoy/tasks.ts':
        "import { query } from '@avvos/convoy';\nexport const list = query({ handler: async () => [] });\n",
      'convoy/lib/util.ts': 'export const twice = (n: number) => 2 * n;\n',
    });
    const { running: served } = await dev(app, { env: withDatabase(), args: ['--typecheck', 'disable'] });
    assert.match(
      served.output(),
      /convoy\/tasks\.ts defines functions, but Convoy serves only convoy\/functions\/: move it to convoy\/functions\/tasks\.ts/,
    );
    assert.doesNotMatch(served.output(), /util\.ts/, 'a helper without functions is no warning');
  });

  test('.env.local over .env, the real environment over both; the database named with its password masked', async () => {
    const app = await makeDevApp({
      'convoy/functions/env.ts':
        "import { query } from '@avvos/convoy';\n" +
        'export const read = query({ handler: async () => [process.env.A ?? null, process.env.B ?? null, process.env.C ?? null] });\n',
      '.env': 'A=from-env\nB=from-env\nC=from-env\n',
      '.env.local': `DATABASE_URL=${urlWithPassword().href}\nB=from-local\nC=from-local\n`,
    });
    const { url, running: served } = await dev(app, {
      env: devEnv({ C: 'from-the-shell' }),
      args: ['--typecheck', 'disable'],
    });
    assert.deepEqual(await callOk(url, 'query', 'env:read', {}), ['from-env', 'from-local', 'from-the-shell']);
    assert.match(served.output(), /read \.env\.local and \.env/);
    assert.match(
      served.output(),
      new RegExp(
        `database: postgres(ql)?://[^:@/]+:\\*\\*\\*\\*@[^/]+/${database.name} \\(DATABASE_URL from \\.env\\.local\\)`,
      ),
    );
    assert.ok(!served.output().includes(decodeURIComponent(urlWithPassword().password)), 'no password printed');
  });
});
