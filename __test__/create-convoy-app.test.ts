/**
 * `npm create convoy-app` as a new user meets it, from the packed tarballs: the scaffolder run by
 * `npm exec` (what `npm create` does) without a terminal, the app it writes installed with the
 * packed @avvos/convoy and its platform package, type-checked on TypeScript 5.9 (the app's own)
 * and 7 (this repository's `typescript7`), and its `npm run dev` — Convoy on the embedded Postgres
 * in the app's .convoy/, and Vite — driven in Chromium: live in two pages, an item shown
 * optimistically before the server has it, and taken away again when the server refuses it.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stripVTControlCharacters } from 'node:util';
import type { Browser, Page, Route } from 'playwright-core';
import { launchChromium, noChromium } from './helpers/chromium.js';
import { copyOf, instructionsOf, readDockerfile, stageNamed, workdirOf } from './helpers/dockerfile.js';
import { pack, packMain, packPlatform, root } from './helpers/pack.js';
import { freePort, type Running, run, start, waitForHealth } from './helpers/process.js';

const scaffolderDir = path.join(root, 'packages', 'create-convoy-app');
// A terminal for the prompts' test: `script` from util-linux (Debian's bsdutils).
const noPty =
  spawnSync('script', ['--version']).status === 0 ? false : 'no `script` (util-linux) to give it a terminal';

let work: string;
let scaffolderTarball: string;
let scaffolded: { code: number | null; output: string };
let app: string;
let dev: Running | undefined;
let browser: Browser | undefined;

/** The environment of a user's shell with no database named: `convoy dev` starts its embedded one. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true', ...extra };
  delete env.DATABASE_URL;
  return env;
}

/** The scaffolder's bin from its tarball, as `npm create convoy-app` runs it. */
function createConvoyApp(args: string[], env = userEnv()) {
  return run('npm', ['exec', '--yes', `--package=${scaffolderTarball}`, '--', 'create-convoy-app', ...args], {
    cwd: work,
    env,
  });
}

async function waitForPage(url: string, running: Running, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (running.child.exitCode !== null) throw new Error(`npm run dev exited:\n${running.output()}`);
    const response = await fetch(url).catch(() => undefined);
    if (response?.ok) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms:\n${running.output()}`);
}

describe('create-convoy-app from its tarball', { timeout: 900_000 }, () => {
  let tarballs: string[];

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'convoy-create-'));
    const [scaffolder, platform, main] = await Promise.all([
      pack(scaffolderDir, work, 'scaffolder'),
      packPlatform(work),
      packMain(work),
    ]);
    scaffolderTarball = scaffolder;
    tarballs = [platform, main];
    // No terminal (run() gives the child pipes) and CI=true: nothing may be asked.
    scaffolded = await createConvoyApp(['my-app', '--no-install']);
    app = path.join(work, 'my-app');
  });

  after(async () => {
    await browser?.close();
    await dev?.stop('SIGINT');
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('is published at the version of @avvos/convoy, which the app it writes depends on', async () => {
    const own = JSON.parse(await readFile(path.join(scaffolderDir, 'package.json'), 'utf8'));
    const convoy = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
    assert.equal(own.version, convoy.version, 'packages/create-convoy-app/package.json and the root share a version');
    assert.equal(scaffolded.code, 0, scaffolded.output);
    const written = JSON.parse(await readFile(path.join(app, 'package.json'), 'utf8'));
    assert.equal(written.dependencies['@avvos/convoy'], convoy.version);
  });

  test('without a terminal it writes the whole app and prints the next commands for npm', async () => {
    assert.equal(scaffolded.code, 0, scaffolded.output);
    assert.match(scaffolded.output, /cd my-app\b/);
    assert.match(scaffolded.output, /npm install/, 'not installed (--no-install): says to install');
    assert.match(scaffolded.output, /npm run dev/);
    for (const file of [
      'convoy/schema.ts',
      'convoy/functions/items.ts',
      'index.html',
      'src/main.tsx',
      'src/styles.css',
      'vite.config.ts',
      'tsconfig.json',
      'Dockerfile',
      '.dockerignore',
      'compose.yaml',
      'fly.toml',
      'railway.json',
      'deploy/start.sh',
      'deploy/healthcheck.mjs',
    ]) {
      assert.ok(existsSync(path.join(app, file)), `${file} is written`);
    }
    const packageJson = JSON.parse(await readFile(path.join(app, 'package.json'), 'utf8'));
    assert.equal(packageJson.name, 'my-app');
    assert.equal(packageJson.type, 'module');
    for (const script of ['dev', 'build', 'start']) assert.ok(packageJson.scripts[script], `a ${script} script`);
    const gitignore = (await readFile(path.join(app, '.gitignore'), 'utf8')).split('\n');
    for (const entry of ['.convoy/', 'node_modules/', 'dist/']) assert.ok(gitignore.includes(entry), entry);
    const readme = await readFile(path.join(app, 'README.md'), 'utf8');
    assert.match(readme, /^npm install\nnpm run dev$/m, 'the README has the two commands');
    assert.match(await readFile(path.join(app, 'fly.toml'), 'utf8'), /^app = "my-app"$/m);
    assert.match(await readFile(path.join(app, 'index.html'), 'utf8'), /<title>my-app<\/title>/);
    // The deploy files that deploy.test.ts runs in examples/app, the same here.
    for (const file of ['deploy/start.sh', 'deploy/healthcheck.mjs', 'compose.yaml', 'railway.json']) {
      const example = await readFile(path.join(root, 'examples', 'app', file), 'utf8');
      assert.equal(await readFile(path.join(app, file), 'utf8'), example, `${file} is examples/app's`);
    }
  });

  test('says what it takes (--help, --version) and refuses what it does not know', async () => {
    const help = await createConvoyApp(['--help']);
    assert.equal(help.code, 0, help.output);
    assert.match(help.output, /^Usage: create-convoy-app \[folder\] \[options\]/m);
    assert.equal(help.output.match(/Usage:/g)?.length, 1, 'printed once');
    const version = await createConvoyApp(['--version']);
    assert.equal(
      version.output.trim(),
      JSON.parse(await readFile(path.join(scaffolderDir, 'package.json'), 'utf8')).version,
    );
    const unknown = await createConvoyApp(['my-other-app', '--typescript']);
    assert.equal(unknown.code, 1, unknown.output);
    assert.match(unknown.output, /create-convoy-app: Unknown option '--typescript'/);
    assert.ok(!existsSync(path.join(work, 'my-other-app')), 'nothing written');
  });

  test('names the package after its folder, made a valid npm name', async () => {
    const result = await createConvoyApp(['My Shiny App', '--no-install']);
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /cd "My Shiny App"/, 'a folder with spaces is quoted in the next steps');
    const written = JSON.parse(await readFile(path.join(work, 'My Shiny App', 'package.json'), 'utf8'));
    assert.equal(written.name, 'my-shiny-app');
  });

  test('on a terminal it asks where the app goes and whether to install', { skip: noPty }, async () => {
    // util-linux's `script` gives the scaffolder a terminal; the answers are typed once each question shows.
    const env = userEnv({ TERM: 'xterm-256color' });
    delete env.CI;
    const command = `stty cols 100 rows 40; npm exec --yes --package=${scaffolderTarball} -- create-convoy-app`;
    const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: work, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    // Without the colours and cursor moves: what the terminal shows.
    const shown = () => stripVTControlCharacters(output);
    try {
      await waitUntil(
        async () => shown().includes('Where should the app go?'),
        'the first question (npm exec starting)',
        60_000,
      );
      child.stdin.write('asked-app\r');
      await waitUntil(async () => shown().includes('Install the dependencies with npm?'), 'the second question');
      child.stdin.write('n');
      child.stdin.write('\r');
      assert.equal(await exited, 0, shown());
    } catch (error) {
      throw new Error(`${(error as Error).message}; the terminal showed:\n${shown()}`);
    } finally {
      child.stdin.end();
      child.kill('SIGKILL');
    }
    assert.match(shown(), /cd asked-app\b/);
    assert.match(shown(), /npm install/, 'told no: says to install');
    assert.ok(existsSync(path.join(work, 'asked-app', 'convoy', 'schema.ts')));
    assert.ok(!existsSync(path.join(work, 'asked-app', 'node_modules')), 'nothing installed');
  });

  test('refuses a folder that is not empty unless --force', async () => {
    const refused = await createConvoyApp(['my-app', '--no-install']);
    assert.equal(refused.code, 1, refused.output);
    assert.match(refused.output, /my-app is not empty: name another folder, or pass --force/);
    const other = path.join(work, 'taken');
    await mkdir(other);
    await writeFile(path.join(other, 'notes.txt'), 'mine\n');
    const forced = await createConvoyApp(['taken', '--no-install', '--force']);
    assert.equal(forced.code, 0, forced.output);
    assert.equal(await readFile(path.join(other, 'notes.txt'), 'utf8'), 'mine\n', "the user's own files stay");
    assert.ok(existsSync(path.join(other, 'convoy', 'schema.ts')));
  });

  test('prints the commands of the package manager that ran it', async () => {
    const expected = {
      'pnpm/9.15.0 npm/? node/v20.19.0 linux x64': ['pnpm install', 'pnpm dev'],
      'yarn/1.22.22 npm/? node/v20.19.0 linux x64': ['yarn\n', 'yarn dev'],
      'bun/1.2.0 npm/? node/v20.19.0 linux x64': ['bun install', 'bun run dev'],
    };
    for (const [userAgent, [install, runDev]] of Object.entries(expected)) {
      const folder = `by-${userAgent.split('/')[0]}`;
      // npm reads its `user-agent` setting from npm_config_user_agent and hands it on to the bin it
      // runs: the way to play another manager's `create`.
      const result = await createConvoyApp([folder, '--no-install'], userEnv({ npm_config_user_agent: userAgent }));
      assert.equal(result.code, 0, result.output);
      assert.ok(result.output.includes(install!), `${install} in:\n${result.output}`);
      assert.ok(result.output.includes(runDev!), `${runDev} in:\n${result.output}`);
      assert.ok((await readFile(path.join(work, folder, 'README.md'), 'utf8')).includes(runDev!));
    }
  });

  test('the app installs from the packed tarballs and type-checks on TypeScript 5.9 and 7', async () => {
    const installed = await run('npm', ['install', '--no-audit', '--no-fund', ...tarballs], { cwd: app });
    assert.equal(installed.code, 0, installed.output);
    assert.doesNotMatch(
      installed.output,
      /install scripts not yet covered/,
      'the first install says nothing to review',
    );
    // What create-convoy-app runs after installing: the editor knows `api` before the first `npm run dev`.
    const generated = await run('npm', ['run', 'codegen'], { cwd: app });
    assert.equal(generated.code, 0, generated.output);

    const ownVersion = await run('npx', ['tsc', '--version'], { cwd: app });
    assert.match(ownVersion.output, /Version 5\.9\./, "the app's own TypeScript");
    const onFive = await run('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: app });
    assert.equal(onFive.code, 0, `TypeScript 5.9:\n${onFive.output}`);
    const seven = path.join(root, 'node_modules', 'typescript7', 'bin', 'tsc');
    const sevenVersion = await run(seven, ['--version'], { cwd: app });
    assert.match(sevenVersion.output, /Version 7\./);
    const onSeven = await run(seven, ['-p', 'tsconfig.json'], { cwd: app });
    assert.equal(onSeven.code, 0, `TypeScript 7:\n${onSeven.output}`);
  });

  test('`npm run build` bundles the functions and the page: all the Dockerfile copies', async () => {
    const built = await run('npm', ['run', 'build'], { cwd: app });
    assert.equal(built.code, 0, built.output);
    assert.ok(existsSync(path.join(app, '.convoy', 'dist')), 'convoy build wrote .convoy/dist/');
    assert.match(await readFile(path.join(app, 'dist', 'index.html'), 'utf8'), /<script type="module"/);
    // What the Dockerfile's later stages copy out of its build stage (which runs `npm run build`
    // in WORKDIR /app) is all there.
    const dockerfile = await readDockerfile(path.join(app, 'Dockerfile'));
    const buildDir = workdirOf(stageNamed(dockerfile, 'build'));
    const copied = dockerfile.stages
      .flatMap((stage) => instructionsOf(stage, 'COPY').map((instruction) => copyOf(instruction.args)))
      .filter((copy) => copy.from === 'build')
      .flatMap((copy) => copy.sources);
    assert.ok(copied.includes(`${buildDir}/dist`), `the web stage copies the page: ${copied.join(', ')}`);
    for (const source of copied) {
      assert.ok(existsSync(path.join(app, path.posix.relative(buildDir, source))), `${source} exists after the build`);
    }
  });

  test('`npm run dev`: live in two pages, optimistic before the server answers, rolled back when it refuses', {
    skip: noChromium,
  }, async () => {
    const convoyPort = await freePort();
    const webPort = await freePort();
    dev = start('npm', ['run', 'dev'], {
      cwd: app,
      env: userEnv({ PORT: String(convoyPort), WEB_PORT: String(webPort) }),
    });
    const convoyUrl = `http://127.0.0.1:${convoyPort}`;
    const pageUrl = `http://localhost:${webPort}/`;
    await waitForHealth(convoyUrl, dev, 180_000);
    await waitForPage(pageUrl, dev);
    assert.match(stripVTControlCharacters(dev.output()), /embedded Postgres/, 'Convoy runs on the embedded Postgres');

    browser = await launchChromium();
    const open = async (): Promise<Page> => {
      const page = await browser!.newPage();
      page.on('pageerror', (error) => console.error('page error:', error));
      await page.goto(pageUrl);
      await page.locator('[data-testid="connection"][data-state="open"]').waitFor({ timeout: 30_000 });
      assert.equal(await page.getByTestId('connection').textContent(), 'Live');
      return page;
    };
    const [writer, watcher] = [await open(), await open()];
    await writer.getByText('Nothing here yet').waitFor();

    const input = writer.getByLabel('New item');
    const addButton = writer.getByRole('button', { name: /^(Add|Adding…)$/ });
    const latest = (page: Page) => page.getByTestId('latest');

    // Each mutation is held until the test lets it go, so that what the page shows before the
    // server answers can be seen.
    const arrived: Route[] = [];
    await writer.route('**/api/mutation', async (route) => {
      arrived.push(route);
    });
    const nextMutation = async (): Promise<Route> => {
      const deadline = Date.now() + 10_000;
      while (arrived.length === 0) {
        if (Date.now() > deadline) throw new Error('no mutation reached the server');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return arrived.shift()!;
    };

    // Optimistic: in the writer's list at once, marked as saving, while the server has nothing.
    await input.fill('First item');
    await addButton.click();
    const first = await nextMutation();
    const optimistic = latest(writer).locator('li[data-pending="true"]', { hasText: 'First item' });
    await optimistic.waitFor({ timeout: 5_000 });
    await waitUntil(async () => (await addButton.textContent()) === 'Adding…', 'the button to show it pending');
    assert.equal(await watcher.getByTestId('latest').count(), 0, 'the other page has nothing yet');
    await first.continue();
    // The server's item replaces it, and reaches the other page.
    await latest(writer).locator('li[data-pending="false"]', { hasText: 'First item' }).waitFor({ timeout: 10_000 });
    await latest(watcher).getByText('First item').waitFor({ timeout: 10_000 });
    await watcher.getByTestId('all').getByText('First item').waitFor({ timeout: 10_000 });
    await waitUntil(async () => (await addButton.textContent()) === 'Add', 'the button to be done');

    // Rolled back: the item shows, then the server refuses it (its text sent blank, which the
    // mutation throws a ConvoyError for) and it goes; the page says why and gives the text back.
    await input.fill('Doomed item');
    await addButton.click();
    const doomed = await nextMutation();
    await latest(writer).locator('li[data-pending="true"]', { hasText: 'Doomed item' }).waitFor({ timeout: 5_000 });
    const body = doomed.request().postDataJSON();
    assert.equal(body.path, 'items:add');
    await doomed.continue({ postData: JSON.stringify({ ...body, args: { text: '   ' } }) });
    await writer.getByRole('alert').getByText('Not added: Write something first.').waitFor({ timeout: 10_000 });
    await latest(writer).getByText('Doomed item').waitFor({ state: 'detached', timeout: 2_000 });
    await waitUntil(async () => (await input.inputValue()) === 'Doomed item', 'the text back in the input');
    assert.deepEqual(await latest(writer).locator('li').allTextContents().then(names), ['First item']);
    assert.equal(await latest(watcher).getByText('Doomed item').count(), 0);
    await writer.unroute('**/api/mutation');

    // usePaginatedQuery: five at a time, oldest first, live in the other page.
    for (const text of ['two', 'three', 'four', 'five', 'six']) {
      const response = await fetch(`${convoyUrl}/api/mutation`, {
        method: 'POST',
        body: JSON.stringify({ path: 'items:add', args: { text } }),
      });
      assert.equal(response.status, 200, await response.text());
    }
    const all = watcher.getByTestId('all').locator('li');
    await waitUntil(async () => (await all.count()) === 5, 'the first page of five');
    assert.deepEqual(names(await all.allTextContents()), ['First item', 'two', 'three', 'four', 'five']);
    await watcher.getByRole('button', { name: 'Load more' }).click();
    await watcher.getByText('That is all of them.').waitFor({ timeout: 10_000 });
    assert.deepEqual(names(await all.allTextContents()), ['First item', 'two', 'three', 'four', 'five', 'six']);

    // Ctrl-C: both stop, and Convoy stops its embedded Postgres.
    const stopped = await dev.stop('SIGINT');
    const output = stripVTControlCharacters(dev.output());
    dev = undefined;
    assert.ok(stopped.code === 0 || stopped.signal === 'SIGINT', `exit ${stopped.code}, signal ${stopped.signal}`);
    assert.match(output, /\[api\] convoy stopped/, `convoy dev did not shut down cleanly:\n${output}`);
    await assert.rejects(fetch(`${convoyUrl}/health`), 'Convoy still answers after Ctrl-C');
  });
});

/** An item row's text without its time. */
function names(rows: string[]): string[] {
  return rows.map((row) => row.replace(/\d{1,2}:\d{2}\s*(AM|PM)?$|saving…$/i, '').trim());
}

async function waitUntil(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
