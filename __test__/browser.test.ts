/**
 * The example's React app in a real browser (Debian's Chromium through playwright-core): two
 * pages on one user's projects; a project added in one shows in the other without a reload;
 * with the server stopped the page says its data is stale, and when the server is back it
 * recovers by itself.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { type ConvoyServer, startConvoy } from '../dist/server/index.js';
import { launchChromium, noChromium } from './helpers/chromium.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const appDir = path.join(root, 'examples', 'app');
const skip = noChromium;

let database: TestDatabase;
let convoy: ConvoyServer | undefined;
let port: number;
let web: ViteDevServer;
let browser: Browser;

async function startApi() {
  convoy = await startConvoy({ appDir, databaseUrl: database.url, port, dev: true, log: () => {} });
  port = Number(new URL(convoy.url).port);
}

before(async () => {
  if (skip) return;
  database = await createDatabase();
  port = 0;
  await startApi();
  process.env.VITE_CONVOY_URL = convoy!.url;
  web = await createServer({
    configFile: path.join(appDir, 'vite.config.ts'),
    server: { port: 0, host: '127.0.0.1' },
    logLevel: 'silent',
  });
  await web.listen();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await web?.close();
  await convoy?.stop();
  await database?.drop();
});

async function open(userId: string): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  await page.goto(`${web.resolvedUrls!.local[0]}?user=${userId}`);
  await page.getByTestId('projects').waitFor({ state: 'attached', timeout: 20_000 });
  return page;
}

test('two pages stay in sync, and a page rides out a server restart', { skip, timeout: 120_000 }, async () => {
  const created = await fetch(`${convoy!.url}/api/mutation`, {
    method: 'POST',
    body: JSON.stringify({ path: 'users:createUser', args: { name: 'Ada', email: 'ada@example.com' } }),
  });
  const userId = (await created.json()).value;
  const [writer, watcher] = [await open(userId), await open(userId)];

  await writer.getByLabel("New project's name").fill('Rocket');
  await writer.getByRole('button', { name: 'Add project' }).click();
  await watcher.getByTestId('projects').getByText('Rocket').waitFor({ timeout: 10_000 });

  await convoy!.stop();
  convoy = undefined;
  await watcher.getByText('offline: showing the last data seen').waitFor({ timeout: 15_000 });
  assert.ok(await watcher.getByTestId('projects').getByText('Rocket').isVisible(), 'the last data stays');

  await startApi();
  await watcher.getByText('live (open)').waitFor({ timeout: 20_000 });
  await writer.getByText('live (open)').waitFor({ timeout: 20_000 });
  await writer.getByLabel("New project's name").fill('Second stage');
  await writer.getByRole('button', { name: 'Add project' }).click();
  await watcher.getByTestId('projects').getByText('Second stage').waitFor({ timeout: 10_000 });
  const names = await watcher.getByTestId('projects').locator('li').allTextContents();
  assert.deepEqual(
    names.map((name) => name.replace(/\s*draft$/, '')),
    ['Second stage', 'Rocket'],
    'newest first, each once',
  );

  // usePaginatedQuery: three at a time, every loaded page live, no item twice or lost when a
  // write moves the pages' boundaries.
  const recent = watcher.getByTestId('recent').locator('li');
  const recentNames = async () => (await recent.allTextContents()).join(',');
  for (const name of ['third', 'fourth', 'fifth']) await addProject(userId, name);
  await waitUntil(async () => (await recentNames()) === 'fifth,fourth,third', 'the first page');
  await watcher.getByRole('button', { name: 'Load more' }).click();
  await waitUntil(async () => (await recentNames()) === 'fifth,fourth,third,Second stage,Rocket', 'two pages');
  await watcher.getByText('That is all of them.').waitFor({ timeout: 10_000 });
  await addProject(userId, 'sixth');
  await waitUntil(
    async () => (await recentNames()) === 'sixth,fifth,fourth,third,Second stage,Rocket',
    'the new project on top, the rest shifted down a page',
  );
});

test('projects added while the server is down show at once and are saved once each, in order, when it is back', {
  skip,
  timeout: 120_000,
}, async () => {
  const created = await fetch(`${convoy!.url}/api/mutation`, {
    method: 'POST',
    body: JSON.stringify({ path: 'users:createUser', args: { name: 'Grace', email: 'grace@example.com' } }),
  });
  const userId = (await created.json()).value;
  const page = await open(userId);
  await page.getByText('live (open)').waitFor({ timeout: 20_000 });

  await convoy!.stop();
  convoy = undefined;
  await page.getByText('offline: showing the last data seen').waitFor({ timeout: 15_000 });
  for (const name of ['Offline one', 'Offline two']) {
    await page.getByLabel("New project's name").fill(name);
    await page.getByRole('button', { name: 'Add project' }).click();
  }
  // Shown at once, newest first, marked as not saved yet.
  const items = page.getByTestId('projects').locator('li');
  await waitUntil(
    async () => (await items.allTextContents()).join(',') === 'Offline two saving…,Offline one saving…',
    'both projects shown as saving',
  );

  await startApi();
  await waitUntil(
    async () => (await items.allTextContents()).join(',') === 'Offline two draft,Offline one draft',
    'both saved, each once',
    async () => (await items.allTextContents()).join(','),
  );
  const listed = await fetch(`${convoy!.url}/api/query`, {
    method: 'POST',
    body: JSON.stringify({ path: 'projects:listProjects', args: { userId } }),
  });
  const projects: Array<{ name: string; _creationTime: number }> = (await listed.json()).value;
  assert.deepEqual(
    projects.map((project) => project.name),
    ['Offline two', 'Offline one'],
    'in the database once each',
  );
  assert.ok(projects[1]!._creationTime <= projects[0]!._creationTime, 'the first one made was saved first');
  await page.close();
});

async function addProject(userId: string, name: string) {
  const response = await fetch(`${convoy!.url}/api/mutation`, {
    method: 'POST',
    body: JSON.stringify({ path: 'projects:createProject', args: { userId, name } }),
  });
  assert.equal(response.status, 200);
}

async function waitUntil(condition: () => Promise<boolean>, what: string, seen?: () => Promise<string>) {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${seen ? `; seen: ${await seen()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
