/**
 * The embedded Postgres of `convoy dev` recovers from what a killed or doubled `convoy dev`
 * leaves (issue 16): a real `convoy dev` process (dist/), a real Postgres from node_modules. One
 * app folder goes through the steps in order, so its cluster is initialised once.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isAlive } from '../src/cli/processes.js';
import { callOk } from './helpers/call.js';
import { devEnv, makeDevApp, startDev, waitForOutput } from './helpers/devApp.js';
import { type Running, run, start } from './helpers/process.js';
import { cliPath } from './helpers/production.js';

let app: string;
const running: Running[] = [];

const postmasterPid = () =>
  Number(readFileSync(path.join(app, '.convoy', 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
const savedPort = () => JSON.parse(readFileSync(path.join(app, '.convoy', 'embedded.json'), 'utf8')).port as number;

async function dev() {
  const started = await startDev(app);
  running.push(started.running);
  return started;
}

describe('the embedded Postgres of convoy dev', { timeout: 120_000 }, () => {
  before(async () => {
    app = await makeDevApp({}, { typescript: false });
  });
  after(async () => {
    for (const child of running) await child.stop('SIGKILL');
    // Whatever a failed step left: the cluster too.
    try {
      process.kill(postmasterPid(), 'SIGKILL');
    } catch {}
    await rm(app, { recursive: true, force: true });
  });

  test('.convoy/ keeps itself out of git, and says so when it is created', async () => {
    const first = await dev();
    assert.match(first.running.output(), /created \.convoy\/ .*out of git/);
    assert.equal(spawnSync('git', ['init', '-q'], { cwd: app }).status, 0);
    const ignored = spawnSync('git', ['check-ignore', '.convoy/pg/PG_VERSION', '.convoy/embedded.json'], {
      cwd: app,
    });
    assert.equal(ignored.status, 0, 'git ignores what is in .convoy/');
    assert.equal(await callOk(first.url, 'query', 'notes:count', {}), 1);
  });

  test("a kill -9'd convoy dev leaves a postmaster the next start stops", async () => {
    const killed = running.pop()!;
    const orphan = postmasterPid();
    // The process alone, as `kill -9 <pid>` does: Postgres has a process group of its own.
    killed.child.kill('SIGKILL');
    await new Promise((resolve) => killed.child.once('exit', resolve));
    assert.ok(isAlive(orphan), 'the postmaster outlived convoy dev');

    const next = await dev();
    assert.match(next.running.output(), new RegExp(`Postgres \\(pid ${orphan}\\) left running .*stopping it`));
    assert.doesNotMatch(next.running.output(), /postmaster\.pid|already exists|\n\s+at /);
    assert.ok(!isAlive(orphan), 'the stale postmaster is gone');
    assert.notEqual(postmasterPid(), orphan);
    assert.equal(await callOk(next.url, 'query', 'notes:count', {}), 1);
  });

  test('a second convoy dev in the same folder says where the first runs and exits non-zero', async () => {
    const first = running.at(-1)!;
    const startedAt = Date.now();
    const second = await run('node', [cliPath, 'dev', '--port', '0'], { cwd: app, env: devEnv() });
    assert.equal(second.code, 1, second.output);
    assert.ok(Date.now() - startedAt < 10_000, 'quickly, not after a Postgres timeout');
    assert.match(
      second.output,
      new RegExp(`already running .*pid ${first.child.pid}.*serving http://127\\.0\\.0\\.1:\\d+`),
    );
    assert.doesNotMatch(second.output, /postmaster\.pid|\n\s+at /);
    // The first is unharmed.
    assert.equal(first.child.exitCode, null);
  });

  test('another command while convoy dev runs shares its Postgres and leaves it running', async () => {
    const serving = running.at(-1)!;
    const postgres = postmasterPid();
    const check = await run('node', [cliPath, 'graduate', 'notes', '--check'], { cwd: app, env: devEnv() });
    assert.equal(check.code, 0, check.output);
    assert.match(check.output, /using the embedded Postgres that convoy dev is running/);
    assert.equal(postmasterPid(), postgres, 'the same cluster');
    assert.ok(isAlive(postgres), 'still running for convoy dev');
    const url = /serving (http:\/\/\S+)/.exec(serving.output())![1]!;
    assert.equal(await callOk(url, 'query', 'notes:count', {}), 1);
  });

  test('a command through a symlinked app folder shares the running Postgres: no second postmaster on its data', async () => {
    const serving = running.at(-1)!;
    const postgres = postmasterPid();
    const pidFile = readFileSync(path.join(app, '.convoy', 'pg', 'postmaster.pid'), 'utf8');
    const link = `${app}-link`;
    await symlink(app, link);
    try {
      const check = await run('node', [cliPath, 'graduate', 'notes', '--check', '--dir', link], {
        cwd: path.dirname(app),
        env: devEnv(),
      });
      assert.equal(check.code, 0, check.output);
      assert.match(check.output, /using the embedded Postgres that convoy dev is running/);
    } finally {
      await rm(link, { force: true });
    }
    assert.equal(
      readFileSync(path.join(app, '.convoy', 'pg', 'postmaster.pid'), 'utf8'),
      pidFile,
      'the lock file intact',
    );
    assert.ok(isAlive(postgres), 'still running for convoy dev');
    const postmasters = spawnSync('pgrep', ['-f', `postgres -D .*${path.basename(app)}`], { encoding: 'utf8' });
    assert.deepEqual(postmasters.stdout.trim().split('\n'), [String(postgres)], 'one postmaster on the data folder');
    const url = /serving (http:\/\/\S+)/.exec(serving.output())![1]!;
    assert.equal(await callOk(url, 'query', 'notes:count', {}), 1);
  });

  test('Ctrl-C stops quietly: no warning of the pool or the LISTEN connection, Postgres stopped', async () => {
    // Left in `running` until it stopped, so that a failure here leaves nothing behind.
    const serving = running.at(-1)!;
    const url = /serving (http:\/\/\S+)/.exec(serving.output())![1]!;
    // A live query, so that connections are busy when Ctrl-C comes.
    const stream = await fetch(`${url}/api/sync`);
    const reader = stream.body!.getReader();
    const session = /"session":"([^"]+)"/.exec(new TextDecoder().decode((await reader.read()).value))![1];
    await fetch(`${url}/api/sync/${session}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ add: [{ id: '1', path: 'notes:count', args: {} }] }),
    });
    await reader.read();
    const postgres = postmasterPid();
    // The cause, checked whatever the timing: a terminal's Ctrl-C signals its foreground process
    // group, and Postgres in it would shut down under Convoy's open connections.
    const groupOf = (pid: number) =>
      spawnSync('ps', ['-o', 'pgid=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();
    assert.equal(groupOf(serving.child.pid!), String(serving.child.pid), 'convoy dev leads its group');
    assert.notEqual(groupOf(postgres), String(serving.child.pid), 'Postgres is not in the group Ctrl-C reaches');
    const before = serving.output().length;
    // To the whole process group, as a terminal's Ctrl-C.
    const { code } = await serving.stop('SIGINT');
    running.pop();
    await reader.cancel().catch(() => {});
    const said = serving.output().slice(before);
    assert.equal(code, 0, said);
    assert.match(said, /stopped \(the embedded Postgres too/);
    assert.doesNotMatch(said, /WARN|deadpool|Connection error|terminating connection/i);
    assert.ok(!isAlive(postgres), 'the embedded Postgres stopped with it');
  });

  test('a postmaster.pid whose pid another program got since is no obstacle', async () => {
    // As after a reboot or in a container: the pid of the dead postmaster now runs this test.
    const lockFile = path.join(app, '.convoy', 'pg', 'postmaster.pid');
    await writeFile(lockFile, `${process.pid}\n${path.join(app, '.convoy', 'pg')}\n0\n${savedPort()}\n\n127.0.0.1\n`);
    const next = await dev();
    assert.doesNotMatch(next.running.output(), /already exists|stopping it/);
    assert.equal(await callOk(next.url, 'query', 'notes:count', {}), 1);
    await next.running.stop('SIGINT');
    running.pop();
  });

  test('a port saved in .convoy/embedded.json that another program took is replaced, in one line', async () => {
    const taken = savedPort();
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(taken, '127.0.0.1', resolve));
    try {
      const startedAt = Date.now();
      const moved = await dev();
      assert.ok(Date.now() - startedAt < 20_000, 'no wait for a Postgres that cannot listen');
      const line = await waitForOutput(moved.running, new RegExp(`port ${taken} .*taken.* moves to (\\d+)`));
      assert.equal(savedPort(), Number(line[1]), 'the new port is saved');
      assert.equal(await callOk(moved.url, 'query', 'notes:count', {}), 1, 'the same data, on the new port');
      await running.pop()!.stop('SIGINT');
    } finally {
      squatter.close();
    }
  });

  test('a pid file of a convoy dev that was killed is taken over, not obeyed, even when its pid was reused', async () => {
    const dead = start('node', ['-e', ''], { cwd: app, env: devEnv() });
    await dead.stop();
    // A dead pid, as a kill -9 leaves it; then a live pid (this test's) that another program got since.
    for (const holder of [
      { pid: dead.child.pid, url: 'http://127.0.0.1:1' },
      { pid: process.pid, command: 'node /elsewhere/convoy/dist/cli/bin.js dev', url: 'http://127.0.0.1:1' },
    ]) {
      await writeFile(path.join(app, '.convoy', 'dev.json'), JSON.stringify(holder));
      const next = await dev();
      assert.doesNotMatch(next.running.output(), /already running/);
      assert.equal(await callOk(next.url, 'query', 'notes:count', {}), 1);
      await running.pop()!.stop('SIGINT');
    }
  });
});
