/**
 * The dashboard (issue 17, SPEC.md § 12) in a real browser (Debian's Chromium through
 * playwright-core), against the example app served by `convoy dev` as built: its tables and
 * functions are listed; a document written through the app's API appears without a reload; an
 * edit with an invalid value shows the schema's error in place and writes nothing; a query and a
 * mutation run from the form, and a query kept live follows a write; the log shows those calls;
 * the page loads nothing from outside its server. Then the production server: no dashboard
 * without CONVOY_ADMIN_KEY (404), and with one every API request lacking it is refused (401).
 * It takes the screenshots under docs/ that the README and docs/dashboard.md show (written there
 * with CONVOY_DASHBOARD_SCREENSHOTS=1).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { ConvoyClient } from '../dist/client/index.js';
import { CallLog } from '../dist/dashboard/callLog.js';
import type { FunctionCall } from '../dist/server/native.js';
import { launchChromium, noChromium } from './helpers/chromium.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';
import { freePort, type Running, start } from './helpers/process.js';
import { cliPath, convoy, copyApp, startProduction } from './helpers/production.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const exampleDir = path.join(root, 'examples', 'app');
// The screenshots the docs show are written there only when asked (CONVOY_DASHBOARD_SCREENSHOTS=1):
// each run's ids and times differ, and CI fails on any file a run changes.
const screenshots =
  process.env.CONVOY_DASHBOARD_SCREENSHOTS === '1'
    ? path.join(root, 'docs')
    : mkdtempSync(path.join(tmpdir(), 'convoy-dashboard-'));
const skip = noChromium;

/** The page as `npm run build:dashboard` writes it; built here when a clone has not yet. */
async function ensurePageBuilt(): Promise<void> {
  if (existsSync(path.join(root, 'dist', 'dashboard', 'page', 'index.html'))) return;
  await build({ configFile: path.join(root, 'dashboard', 'vite.config.ts'), logLevel: 'warn' });
}

async function exampleCopy(): Promise<string> {
  const app = await copyApp(exampleDir);
  await writeFile(path.join(app, 'package.json'), '{ "name": "example", "private": true, "type": "module" }\n');
  return app;
}

async function waitFor(running: Running, pattern: RegExp, what: string): Promise<RegExpExecArray> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const match = pattern.exec(running.output());
    if (match) return match;
    if (running.child.exitCode !== null || Date.now() > deadline) assert.fail(`${what}:\n${running.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function call(url: string, kind: 'query' | 'mutation', path: string, args: unknown): Promise<any> {
  const response = await fetch(`${url}/api/${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path, args }),
  });
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  return body.value;
}

describe('the dashboard of convoy dev', { skip, timeout: 240_000 }, () => {
  let database: TestDatabase;
  let app: string;
  let dev: Running;
  let appUrl: string;
  let dashboardUrl: string;
  let browser: Browser;
  let page: Page;
  const requests: string[] = [];

  const ada = async () =>
    (await call(appUrl, 'query', 'users:listUsers', {})).find((user: any) => user.email === 'ada@example.com');

  before(async () => {
    await ensurePageBuilt();
    database = await createDatabase();
    app = await exampleCopy();
    const [port, dashboardPort] = [await freePort(), await freePort()];
    dev = start(
      'node',
      [cliPath, 'dev', '--port', String(port), '--dashboard-port', String(dashboardPort), '--typecheck', 'disable'],
      // Without colours: CI=true turns picocolors on, and the URL is read from the output.
      { cwd: app, env: { ...process.env, DATABASE_URL: database.url, CONVOY_ADMIN_KEY: '', NO_COLOR: '1' } },
    );
    dashboardUrl = (await waitFor(dev, /dashboard: (http:\/\/\S+)/, 'convoy dev printed no dashboard URL'))[1]!;
    appUrl = `http://127.0.0.1:${port}`;
    assert.equal(dashboardUrl, `http://127.0.0.1:${dashboardPort}/_dashboard/`);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (error) => console.error('page error:', error));
    page.on('request', (request) => requests.push(request.url()));
  });

  after(async () => {
    await browser?.close();
    await dev?.stop('SIGINT');
    await database?.drop();
  });

  test('tables: listed with stage and rows; a write through the API shows live; an invalid edit shows its error and writes nothing', async () => {
    const ada = await call(appUrl, 'mutation', 'users:createUser', { name: 'Ada', email: 'ada@example.com' });
    await page.goto(dashboardUrl);
    const tables = page.getByTestId('tables');
    await tables.getByText('users').waitFor({ timeout: 20_000 });
    await tables.getByText('projects').waitFor();
    assert.match((await tables.textContent()) ?? '', /usersdocuments1 rowprojects/);

    await tables.getByRole('button', { name: /^projects/ }).click();
    const documents = page.getByTestId('documents');
    await page.getByText('live', { exact: true }).waitFor();
    await call(appUrl, 'mutation', 'projects:createProject', { userId: ada, name: 'Rocket' });
    await documents.getByText('Rocket').waitFor({ timeout: 10_000 });
    await call(appUrl, 'mutation', 'projects:createProject', { userId: ada, name: 'Apollo' });
    await documents.getByText('Apollo').waitFor({ timeout: 10_000 });
    await tables.getByText('2 rows').waitFor({ timeout: 10_000 });

    // Ordered by an index and filtered by a field.
    await page.getByLabel('Field').selectOption('name');
    await page.getByLabel('Value').fill('Rocket');
    await page.getByRole('button', { name: 'Filter', exact: true }).click();
    await documents.getByText('Apollo').waitFor({ state: 'detached', timeout: 10_000 });
    await documents.getByText('Rocket').waitFor({ timeout: 10_000 });
    assert.equal(await documents.locator('tbody tr').count(), 1);
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByLabel('Order by').selectOption('by_userId');
    await documents.getByText('Apollo').waitFor({ timeout: 10_000 });

    // Insert through the form.
    await page.getByRole('button', { name: 'Insert document' }).click();
    const editor = page.getByLabel('Document (JSON, without _id and _creationTime)');
    await editor.fill(JSON.stringify({ name: 'Gemini', userId: ada, status: 'active', createdAt: 3 }));
    await page.getByRole('button', { name: 'Insert', exact: true }).click();
    await documents.getByText('Gemini').waitFor({ timeout: 10_000 });

    // An edit the schema refuses: the error in place, nothing written.
    await tables.getByRole('button', { name: /^users/ }).click();
    await documents.getByText('ada@example.com').waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: `Edit ${ada}` }).click();
    await editor.fill(JSON.stringify({ name: 42, email: 'ada@example.com', createdAt: 1 }, null, 2));
    await page.getByRole('button', { name: 'Save' }).click();
    const issues = page.getByRole('list', { name: 'Validation errors' });
    await issues.waitFor({ timeout: 10_000 });
    assert.match((await issues.textContent()) ?? '', /name line 2: .*expected string/i);
    assert.equal(await editor.getAttribute('aria-invalid'), 'true');
    const [stored] = await database.query(`SELECT data->>'name' AS name FROM users WHERE id = $1`, [ada]);
    assert.equal(stored.name, 'Ada', 'the refused edit wrote nothing');
    await page.screenshot({ path: path.join(screenshots, 'dashboard-tables.png') });

    // A valid edit is saved and shows live.
    await editor.fill(JSON.stringify({ name: 'Ada Lovelace', email: 'ada@example.com', createdAt: 1 }));
    await page.getByRole('button', { name: 'Save' }).click();
    await documents.getByText('Ada Lovelace').waitFor({ timeout: 10_000 });

    // With the keyboard: an insert opened, cancelled with Escape; a delete confirmed.
    await page.getByRole('button', { name: 'Insert document' }).focus();
    await page.keyboard.press('Enter');
    await editor.waitFor();
    await page.keyboard.press('Escape');
    await editor.waitFor({ state: 'detached' });
    const doomed = await call(appUrl, 'mutation', 'users:createUser', { name: 'Doomed', email: 'doomed@example.com' });
    await documents.getByText('Doomed', { exact: true }).waitFor({ timeout: 10_000 });
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: `Delete ${doomed}` }).focus();
    await page.keyboard.press('Enter');
    await documents.getByText('Doomed', { exact: true }).waitFor({ state: 'detached', timeout: 10_000 });
    assert.equal((await database.query('SELECT count(*)::int AS n FROM users WHERE id = $1', [doomed]))[0].n, 0);
  });

  test('functions: listed with their args; a query and a mutation run from the form; a query kept live', async () => {
    await page.goto(`${dashboardUrl}#functions`);
    const list = page.getByTestId('functions');
    for (const name of ['users:createUser', 'users:listUsers', 'projects:createProject', 'projects:listProjects']) {
      await list.getByText(name, { exact: true }).waitFor({ timeout: 20_000 });
    }
    await list.getByRole('button', { name: /^projects:listProjects/ }).click();
    const user = await ada();
    const args = page.getByLabel('Args (JSON)');
    await args.fill(JSON.stringify({ userId: user._id }));
    await page.getByRole('button', { name: 'Run query' }).click();
    await page.getByTestId('result').getByText('"Rocket"', { exact: false }).waitFor({ timeout: 10_000 });

    await page.getByRole('button', { name: 'Keep live' }).click();
    const live = page.getByTestId('live-result');
    await live.getByText('"Gemini"', { exact: false }).waitFor({ timeout: 10_000 });
    await call(appUrl, 'mutation', 'projects:createProject', { userId: user._id, name: 'Voyager' });
    await live.getByText('"Voyager"', { exact: false }).waitFor({ timeout: 10_000 });

    // Bad args: the function's own INVALID_ARGS.
    await args.fill('{"userId": "not an id"}');
    await page.getByRole('button', { name: 'Run query' }).click();
    await page.getByTestId('result').getByText('INVALID_ARGS').waitFor({ timeout: 10_000 });

    await list.getByRole('button', { name: /^users:createUser/ }).click();
    await page.getByLabel('Args (JSON)').fill(JSON.stringify({ name: 'Grace', email: 'grace@example.com' }));
    await page.getByRole('button', { name: 'Run mutation' }).click();
    await page.getByTestId('result').getByText('Result').waitFor({ timeout: 10_000 });
    const users = await call(appUrl, 'query', 'users:listUsers', {});
    assert.ok(
      users.some((candidate: any) => candidate.name === 'Grace'),
      'the mutation ran',
    );
    await list.getByRole('button', { name: /^projects:listProjects/ }).click();
    await page.getByLabel('Args (JSON)').fill(JSON.stringify({ userId: user._id }));
    await page.getByRole('button', { name: 'Run query' }).click();
    await page.getByTestId('result').getByText('"Voyager"', { exact: false }).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: path.join(screenshots, 'dashboard-functions.png') });
  });

  test('logs: the calls just made, live, with their status, and filtered', async () => {
    await page.goto(`${dashboardUrl}#logs`);
    const log = page.getByTestId('log');
    await log.getByText('users:createUser').first().waitFor({ timeout: 20_000 });
    await log.getByText('projects:listProjects').first().waitFor();
    await log.getByText('INVALID_ARGS').first().waitFor();
    // The tail is live: a call made now shows without a reload.
    await call(appUrl, 'query', 'users:listUsers', {});
    await log.getByText('users:listUsers').first().waitFor({ timeout: 10_000 });
    await page.getByLabel('Status').selectOption('error');
    await log.getByText('users:createUser').first().waitFor({ state: 'detached', timeout: 10_000 });
    assert.ok((await log.locator('tbody tr').count()) >= 1);
    await page.getByLabel('Status').selectOption('');
    await log.getByText('users:createUser').first().waitFor();
    await page.screenshot({ path: path.join(screenshots, 'dashboard-logs.png') });
  });

  test('graduation: the conformance report on demand and the commands', async () => {
    await page.goto(`${dashboardUrl}#graduation`);
    const card = page.getByRole('article', { name: /^projects/ });
    await card.getByRole('button', { name: 'Check conformance' }).click();
    await card.getByText(/All 4 documents fit the schema/).waitFor({ timeout: 20_000 });
    await card.getByText('npx convoy graduate projects --dry-run').waitFor();
    await page.screenshot({ path: path.join(screenshots, 'dashboard-graduation.png') });
  });

  test('readable on a phone (390×844), and nothing loaded from outside the server', async () => {
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
    phone.on('request', (request) => requests.push(request.url()));
    await phone.goto(dashboardUrl);
    await phone.getByTestId('documents').getByText('Ada Lovelace').waitFor({ timeout: 20_000 });
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);
    await phone.screenshot({ path: path.join(screenshots, 'dashboard-phone.png') });
    await phone.close();
    const origin = new URL(dashboardUrl).origin;
    const foreign = requests.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith('data:'));
    assert.deepEqual(foreign, [], 'every request went to the dashboard itself');
    assert.ok(requests.length > 10);
  });

  test('graduation: a run under way shows its progress and the commands that apply to it', async () => {
    const graduated = await convoy(['graduate', 'projects'], app, { ...process.env, DATABASE_URL: database.url });
    assert.equal(graduated.code, 0, graduated.output);
    await page.goto(`${dashboardUrl}#graduation`);
    const card = page.getByRole('article', { name: /^projects/ });
    await card.getByText(/columns: 4 of 4 rows/).waitFor({ timeout: 20_000 });
    await card.getByText('npx convoy graduate projects --complete').waitFor();
    await card.getByText('npx convoy graduate projects --abort').waitFor();
    await page.goto(`${dashboardUrl}#tables`);
    await page
      .getByTestId('tables')
      .getByRole('button', { name: /^projects\s*graduating/ })
      .click();
    // Served from the columns now, and still live.
    const user = await ada();
    await call(appUrl, 'mutation', 'projects:createProject', { userId: user._id, name: 'Columbia' });
    await page.getByTestId('documents').getByText('Columbia').waitFor({ timeout: 10_000 });
  });

  test('its API refuses other origins and other host names', async () => {
    const api = `${new URL(dashboardUrl).origin}/_dashboard/api/tables`;
    const evil = await fetch(api, { method: 'POST', headers: { origin: 'http://evil.example' } });
    assert.equal(evil.status, 403);
    const foreign: Array<Record<string, string>> = [
      { origin: 'null' },
      { origin: 'not a url' },
      { 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of foreign) {
      assert.equal((await fetch(api, { headers })).status, 403, JSON.stringify(headers));
    }
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
    // A page of another site whose name was rebound to 127.0.0.1 names its own host (fetch
    // cannot set Host, node:http can).
    const rebound = await new Promise<number>((resolve, reject) => {
      const request = httpRequest(api, { headers: { host: 'evil.example' } }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on('error', reject);
      request.end();
    });
    assert.equal(rebound, 403);
    const own = await fetch(api);
    assert.equal(own.status, 200);
    // Its writes are ctx.db's: a patch merged and validated, a missing document NOT_FOUND, an
    // invalid document INVALID_ARGS with Zod's issues, and nothing written by either.
    const documents = `${new URL(dashboardUrl).origin}/_dashboard/api/tables/users/documents`;
    const send = async (url: string, method: string, body?: unknown) => {
      const answer = await fetch(url, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      return { status: answer.status, body: (await answer.json()) as any };
    };
    const user = await ada();
    assert.equal((await send(`${documents}/${user._id}`, 'PATCH', { patch: { name: 'Augusta Ada' } })).status, 200);
    assert.equal((await ada()).name, 'Augusta Ada');
    assert.equal((await ada()).createdAt, user.createdAt, 'a patch keeps the other fields');
    const invalid = await send(`${documents}/${user._id}`, 'PATCH', { patch: { email: 7 } });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.error.code, 'INVALID_ARGS');
    assert.deepEqual(invalid.body.error.data.issues[0].path, ['email']);
    assert.equal((await ada()).email, 'ada@example.com');
    const missing = await send(`${documents}/01900000-0000-7000-8000-000000000000`, 'DELETE');
    assert.equal(missing.status, 404);
    assert.equal((await send(`${documents}`, 'POST', { value: { name: 'x' } })).status, 400);
    assert.equal((await send(`${documents}`, 'POST', '[')).status, 400, 'a body that is not an object');
    // Args of a page of documents that are JSON but no object: refused, not a TypeError's 500.
    for (const args of ['null', '5', '[]', '"x"']) {
      const answer = await send(`${documents}?args=${encodeURIComponent(args)}`, 'GET');
      assert.equal(answer.status, 400, `?args=${args}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error.code, 'INVALID_ARGS');
    }

    // A write from the dashboard wakes the app's own live queries, as a mutation's does.
    const client = new ConvoyClient(appUrl);
    try {
      const seen: string[][] = [];
      const unsubscribe = client.subscribe(
        { path: 'projects:listProjects', kind: 'query' } as never,
        { userId: user._id } as never,
        (projects: any) => seen.push(projects.map((project: any) => project.name)),
      );
      while (seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      const projects = `${new URL(dashboardUrl).origin}/_dashboard/api/tables/projects/documents`;
      const value = { name: 'Skylab', userId: user._id, status: 'active', createdAt: 9 };
      assert.equal((await send(projects, 'POST', { value })).status, 200);
      const deadline = Date.now() + 10_000;
      while (!seen.at(-1)?.includes('Skylab')) {
        assert.ok(Date.now() < deadline, `the live query saw ${JSON.stringify(seen)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      unsubscribe();
    } finally {
      client.close();
    }

    // The dashboard's functions are not the app's: the app's server does not run them for others.
    const response = await fetch(`${appUrl}/api/mutation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: '_convoy/dashboard:delete', args: { table: 'users', id: 'x' } }),
    });
    assert.equal(response.status, 404);
  });
});

describe('the dashboard of the production server', { timeout: 240_000 }, () => {
  let database: TestDatabase;
  let app: string;

  before(async () => {
    await ensurePageBuilt();
    database = await createDatabase();
    app = await exampleCopy();
    const env = { ...process.env, DATABASE_URL: database.url };
    for (const step of [['codegen'], ['build'], ['migrate']]) {
      const result = await convoy(step, app, env);
      assert.equal(result.code, 0, result.output);
    }
  });

  after(async () => {
    await database?.drop();
  });

  test('without CONVOY_ADMIN_KEY there is no dashboard', async () => {
    const dashboardPort = await freePort();
    const { running, url } = await startProduction(app, {
      DATABASE_URL: database.url,
      CONVOY_ADMIN_KEY: '',
      CONVOY_DASHBOARD_PORT: String(dashboardPort),
    });
    try {
      assert.equal((await fetch(`${url}/_dashboard/`)).status, 404);
      assert.equal((await fetch(`${url}/_dashboard/api/tables`)).status, 404);
      await assert.rejects(fetch(`http://127.0.0.1:${dashboardPort}/_dashboard/`), 'nothing listens on its port');
      assert.doesNotMatch(running.output(), /dashboard/);
    } finally {
      await running.stop('SIGTERM');
    }
  });

  test('with CONVOY_ADMIN_KEY every API request must present it', async () => {
    const key = 'correct horse battery staple';
    const { running } = await startProduction(app, {
      DATABASE_URL: database.url,
      CONVOY_ADMIN_KEY: key,
      CONVOY_DASHBOARD_PORT: '0',
    });
    try {
      const [, dashboardUrl] = await waitFor(running, /dashboard at (http:\/\/\S+)/, 'no dashboard URL printed');
      const api = `${dashboardUrl}api`;
      assert.equal((await fetch(`${api}/tables`)).status, 401);
      assert.equal((await fetch(`${api}/tables`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
      assert.equal((await fetch(`${api}/logs/live`)).status, 401);
      const insert = await fetch(`${api}/tables/users/documents`, {
        method: 'POST',
        body: JSON.stringify({ value: { name: 'x', email: 'x@example.com', createdAt: 1 } }),
      });
      assert.equal(insert.status, 401);
      assert.equal((await database.query('SELECT count(*)::int AS n FROM users'))[0].n, 0, 'nothing written');
      const tables = await fetch(`${api}/tables`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(tables.status, 200);
      assert.deepEqual(
        (await tables.json()).map((table: { name: string }) => table.name),
        ['users', 'projects'],
      );
      const foreign = await fetch(`${api}/tables`, {
        headers: { authorization: `Bearer ${key}`, origin: 'https://evil.example' },
      });
      assert.equal(foreign.status, 403, 'never served cross-origin');

      // The page asks for the key, keeps it for the tab, and then works.
      if (!skip) {
        const browser = await launchChromium();
        try {
          const page = await browser.newPage();
          await page.goto(dashboardUrl!);
          await page.getByLabel('Admin key').fill('wrong');
          await page.getByRole('button', { name: 'Sign in' }).click();
          await page.getByText('That key was refused.').waitFor({ timeout: 10_000 });
          await page.getByLabel('Admin key').fill(key);
          await page.getByRole('button', { name: 'Sign in' }).click();
          await page.getByTestId('tables').getByText('projects').waitFor({ timeout: 10_000 });
          await page.reload();
          await page.getByTestId('tables').getByText('projects').waitFor({ timeout: 10_000 });
        } finally {
          await browser.close();
        }
      }
    } finally {
      await running.stop('SIGTERM');
    }
  });
});

test("the page is a static bundle under 300 KB gzipped, with nothing inline a CSP of 'self' refuses", async () => {
  await ensurePageBuilt();
  const page = path.join(root, 'dist', 'dashboard', 'page');
  const files = readdirSync(path.join(page, 'assets')).map((name) => path.join(page, 'assets', name));
  const gzipped = files.reduce((total, file) => total + gzipSync(readFileSync(file)).length, 0);
  assert.ok(gzipped < 300 * 1024, `${gzipped} bytes gzipped`);
  const html = readFileSync(path.join(page, 'index.html'), 'utf8');
  assert.doesNotMatch(
    html,
    /<script(?![^>]*\bsrc=)[^>]*>|<style|https?:\/\//,
    'no inline script or style, no absolute URL',
  );
});

describe('the call log', () => {
  const call = (callId: number, argsJson = '{}') =>
    ({ callId, kind: 'mutation', path: 'notes:add', argsJson, headersJson: '{}' }) as FunctionCall;

  test('counts a conflicting mutation run again as a retry of one call, and keeps the newest entries', () => {
    const log = new CallLog(3);
    log.observe(call(1))?.({ ok: true, committed: false });
    assert.equal(log.recent()[0]?.code, 'NOT_COMMITTED');
    log.observe(call(2))?.({ ok: true, committed: true });
    const [entry] = log.recent();
    assert.equal(log.recent().length, 1, 'the retry joined the first attempt');
    assert.equal(entry?.status, 'ok');
    assert.equal(entry?.retries, 1);
    assert.equal(entry?.code, undefined);
    // Other args: another call.
    log.observe(call(3, '{"x":1}'))?.({ ok: false, error: { code: 'INVALID_ARGS', message: 'no' } });
    assert.deepEqual(
      log.recent().map((logged) => [logged.status, logged.code]),
      [
        ['ok', undefined],
        ['error', 'INVALID_ARGS'],
      ],
    );
    for (let id = 4; id < 8; id++) log.observe(call(id, `{"n":${id}}`))?.({ ok: true });
    assert.deepEqual(
      log.recent().map((logged) => logged.args),
      ['{"n":5}', '{"n":6}', '{"n":7}'],
      'bounded: the oldest go first',
    );
  });
});
