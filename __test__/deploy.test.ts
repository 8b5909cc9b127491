/**
 * examples/app's Dockerfile, done without Docker (which cannot pull images everywhere the tests
 * run): the build stage's RUN lines in a copy of the build context, with the packed package
 * standing in for the registry; then a folder holding only what the runtime stage COPYs, where
 * the image's CMD runs against a fresh database — as the image's unprivileged user when the test
 * runs as root. The steps are read from the Dockerfile, fly.toml and railway.json themselves, so
 * this breaks when they change. docs/deploy.md describes what is checked here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  commandOf,
  copyBuildContext,
  copyOf,
  type Dockerfile,
  finalStage,
  healthcheckOf,
  instructionsOf,
  readDockerfile,
  stageNamed,
  variablesOf,
  workdirOf,
} from './helpers/dockerfile.js';
import { packMain, packPlatform, root } from './helpers/pack.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';
import { freePort, type Running, run, start, waitForHealth } from './helpers/process.js';

const example = path.join(root, 'examples', 'app');
/** The image's USER stands for someone who owns none of its files: as root, play `nobody`. */
const unprivileged = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

/** A YAML or TOML file as JSON, parsed by Python's yaml and tomllib. */
function parseConfig(file: string): any {
  const script = [
    'import json, sys',
    'path = sys.argv[1]',
    'if path.endswith(".toml"):',
    '    import tomllib',
    '    data = tomllib.load(open(path, "rb"))',
    'else:',
    '    import yaml',
    '    data = yaml.safe_load(open(path))',
    'print(json.dumps(data))',
  ].join('\n');
  const parsed = spawnSync('python3', ['-c', script, file], { encoding: 'utf8' });
  assert.equal(parsed.status, 0, `python3 (with yaml and tomllib) could not parse ${file}:\n${parsed.stderr}`);
  return JSON.parse(parsed.stdout);
}

/**
 * npm writes into the lockfile only the optional dependencies it could fetch, and the other
 * platforms' packages of this version are not on the registry (nor, on some mirrors, every
 * optional package of the web page's tools), so `npm ci` would call the lockfile out of date.
 * A lockfile made against the full registry lists them as packages for other platforms, which
 * `npm ci` skips; here they are dropped from the lockfile instead, the one departure from a real
 * install.
 */
async function dropUnfetchedOptionals(lockfile: string): Promise<void> {
  const lock = JSON.parse(await readFile(lockfile, 'utf8'));
  const packages: Record<string, { optionalDependencies?: Record<string, string> }> = lock.packages;
  // Where npm would find `name` for the package at `from`: its own node_modules, then its parents'.
  const locked = (from: string, name: string) => {
    for (let dir = from; ; ) {
      if (`${dir ? `${dir}/` : ''}node_modules/${name}` in packages) return true;
      if (dir === '') return false;
      const parent = dir.lastIndexOf('/node_modules/');
      dir = parent < 0 ? '' : dir.slice(0, parent);
    }
  };
  for (const [key, entry] of Object.entries(packages)) {
    for (const name of Object.keys(entry.optionalDependencies ?? {})) {
      if (!locked(key, name)) delete entry.optionalDependencies![name];
    }
  }
  await writeFile(lockfile, JSON.stringify(lock, null, 2));
}

const exposedPort = (dockerfile: Dockerfile) => Number(instructionsOf(finalStage(dockerfile), 'EXPOSE')[0]?.args);

describe('the deploy templates', () => {
  test('the Dockerfile: a build stage, and a runtime as an unprivileged user that stops on SIGTERM', async () => {
    const dockerfile = await readDockerfile(path.join(example, 'Dockerfile'));
    const build = stageNamed(dockerfile, 'build');
    const runs = instructionsOf(build, 'RUN').map((instruction) => instruction.args);
    for (const step of ['npm ci', 'npx convoy build', 'npm prune --omit=dev']) {
      assert.ok(runs.includes(step), `the build stage runs ${step}`);
    }
    const runtime = finalStage(dockerfile);
    assert.match(runtime.from, /^node:\$\{NODE_VERSION\}-(slim|alpine)$/);
    assert.match(variablesOf(dockerfile.globalArgs).NODE_VERSION ?? '', /^2\d/);
    const user = instructionsOf(runtime, 'USER').at(-1)?.args;
    assert.ok(user && user !== 'root' && user !== '0', `the runtime runs as ${user}, not root`);
    assert.equal(exposedPort(dockerfile), 3737);
    assert.equal(instructionsOf(runtime, 'STOPSIGNAL')[0]?.args, 'SIGTERM');
    assert.deepEqual(healthcheckOf(instructionsOf(runtime, 'HEALTHCHECK')[0]!.args).command, [
      'node',
      'deploy/healthcheck.mjs',
    ]);
    const copies = instructionsOf(runtime, 'COPY').map((instruction) => copyOf(instruction.args));
    assert.ok(
      copies.every((copy) => copy.from === 'build'),
      'the runtime takes everything from the build stage',
    );
    assert.deepEqual(copies.flatMap((copy) => copy.sources).sort(), [
      '/app/.convoy/dist',
      '/app/convoy/_generated',
      '/app/deploy',
      '/app/node_modules',
      '/app/package.json',
    ]);
  });

  test('compose.yaml: Postgres with a health check and a volume, the app waiting for it', async () => {
    const compose = parseConfig(path.join(example, 'compose.yaml'));
    const { db, app } = compose.services;
    assert.match(db.image, /^postgres:1[56]/);
    assert.ok(db.healthcheck.test.join(' ').includes('pg_isready'));
    const volume = db.volumes[0].split(':')[0];
    assert.ok(volume in compose.volumes, `the database's data is in the named volume ${volume}`);
    assert.equal(app.build, '.');
    assert.match(app.environment.DATABASE_URL, /^postgresql:\/\/convoy:.*@db:5432\/app/);
    assert.deepEqual(app.depends_on, { db: { condition: 'service_healthy' } });
    const dockerfile = await readDockerfile(path.join(example, 'Dockerfile'));
    assert.deepEqual(app.ports, [`${exposedPort(dockerfile)}:${exposedPort(dockerfile)}`]);
    assert.ok(Number.parseInt(app.stop_grace_period, 10) > 10, 'more than the 10 s Convoy drains for');
  });

  test('fly.toml: migrate as the release command, /health checks, SIGTERM with time to drain', async () => {
    const fly = parseConfig(path.join(example, 'fly.toml'));
    assert.equal(fly.deploy.release_command, 'npx convoy migrate');
    assert.equal(fly.env.CONVOY_MIGRATE_ON_START, 'false', 'machines do not migrate again as they start');
    assert.equal(fly.kill_signal, 'SIGTERM');
    assert.ok(fly.kill_timeout > 10);
    const dockerfile = await readDockerfile(path.join(example, 'Dockerfile'));
    assert.equal(fly.http_service.internal_port, exposedPort(dockerfile));
    assert.deepEqual(
      fly.http_service.checks.map((check: any) => [check.method, check.path]),
      [['GET', '/health']],
    );
    assert.ok(fly.http_service.concurrency.hard_limit > 25, "above Fly's default, which open streams count against");
  });

  test('railway.json: migrate before each deploy, /health, time to drain, one replica', async () => {
    const railway = JSON.parse(await readFile(path.join(example, 'railway.json'), 'utf8'));
    assert.equal(railway.build.builder, 'DOCKERFILE');
    assert.deepEqual(railway.deploy.preDeployCommand, ['npx convoy migrate']);
    assert.equal(railway.deploy.healthcheckPath, '/health');
    assert.ok(railway.deploy.drainingSeconds > 10);
    assert.equal(railway.deploy.numReplicas, 1, 'sync sessions are bound to a process (docs/deploy.md)');
  });
});

describe("the Dockerfile's steps, run without Docker", { timeout: 900_000 }, () => {
  let work: string;
  /** The build stage's WORKDIR: the build context with what the build made in it. */
  let context: string;
  /** The runtime stage's WORKDIR: only what its COPY lines put there. */
  let image: string;
  let imageEnv: NodeJS.ProcessEnv;
  let cmd: string[];
  let healthcheck: string[];
  const databases: TestDatabase[] = [];

  async function newDatabase() {
    const database = await createDatabase();
    databases.push(database);
    return database;
  }

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'convoy-deploy-'));
    // Readable by the unprivileged user, as an image's files are.
    await chmod(work, 0o755);
    const tarballs = [await packMain(work), await packPlatform(work)];
    const dockerfile = await readDockerfile(path.join(example, 'Dockerfile'));

    context = path.join(work, 'context');
    await copyBuildContext(example, context);
    assert.ok(!existsSync(path.join(context, 'node_modules')), '.dockerignore keeps node_modules out');
    // The registry, where @avvos/convoy and its platform package are published: npm records the
    // tarballs in package.json and package-lock.json, which `npm ci` then installs from.
    const installed = await run('npm', ['install', '--no-audit', '--no-fund', ...tarballs], { cwd: context });
    assert.equal(installed.code, 0, installed.output);
    await dropUnfetchedOptionals(path.join(context, 'package-lock.json'));
    await rm(path.join(context, 'node_modules'), { recursive: true });

    // Nothing of the test's own environment that the image would not have: no database at all
    // while it builds.
    const buildEnv: NodeJS.ProcessEnv = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !/^(DATABASE_|CONVOY_|PG)/.test(name)),
    );
    Object.assign(buildEnv, variablesOf(dockerfile.globalArgs));
    for (const instruction of stageNamed(dockerfile, 'build').instructions) {
      if (instruction.keyword === 'ENV' || instruction.keyword === 'ARG') {
        Object.assign(buildEnv, variablesOf([instruction]));
      } else if (instruction.keyword === 'COPY') {
        for (const source of copyOf(instruction.args).sources) {
          assert.ok(existsSync(path.join(context, source)), `COPY ${source}: the build context has it`);
        }
      } else if (instruction.keyword === 'RUN') {
        const [command, ...args] = commandOf(instruction.args);
        const ran = await run(command!, args, { cwd: context, env: buildEnv });
        assert.equal(ran.code, 0, `RUN ${instruction.args}:\n${ran.output}`);
      }
    }

    const runtime = finalStage(dockerfile);
    const buildDir = workdirOf(stageNamed(dockerfile, 'build'));
    const runtimeDir = workdirOf(runtime);
    image = path.join(work, 'image');
    await mkdir(image);
    for (const instruction of instructionsOf(runtime, 'COPY')) {
      const copy = copyOf(instruction.args);
      assert.equal(copy.from, 'build', `COPY ${instruction.args}`);
      assert.equal(copy.sources.length, 1);
      const from = path.join(context, path.posix.relative(buildDir, copy.sources[0]!));
      const to = path.join(image, path.posix.relative(runtimeDir, path.posix.resolve(runtimeDir, copy.destination)));
      await mkdir(path.dirname(to), { recursive: true });
      // As Docker copies: symlinks (node_modules/.bin) stay the relative links they are.
      await cp(from, to, { recursive: true, verbatimSymlinks: true });
    }

    const home = path.join(work, 'home');
    await mkdir(home, { mode: 0o777 });
    await chmod(home, 0o777);
    imageEnv = { PATH: process.env.PATH, HOME: home, ...variablesOf(runtime.instructions) };
    cmd = commandOf(instructionsOf(runtime, 'CMD').at(-1)!.args);
    healthcheck = healthcheckOf(instructionsOf(runtime, 'HEALTHCHECK')[0]!.args).command;
  });

  after(async () => {
    for (const database of databases) await database.drop().catch(() => {});
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** The image's CMD on a port of its own. */
  async function startImage(env: NodeJS.ProcessEnv): Promise<{ running: Running; url: string; port: number }> {
    const port = await freePort();
    const running = start(cmd[0]!, cmd.slice(1), {
      cwd: image,
      env: { ...imageEnv, PORT: String(port), ...env },
      ...unprivileged,
    });
    return { running, url: `http://127.0.0.1:${port}`, port };
  }

  /** SIGTERM to the process the container runtime started, alone (not its group), as `docker stop` sends it. */
  async function dockerStop(running: Running) {
    const { child } = running;
    if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    process.kill(child.pid!, 'SIGTERM');
    return exited;
  }

  async function call(url: string, kind: 'query' | 'mutation', name: string, args: object) {
    const response = await fetch(`${url}/api/${kind}`, { method: 'POST', body: JSON.stringify({ path: name, args }) });
    const body = (await response.json()) as any;
    assert.equal(response.status, 200, JSON.stringify(body));
    return body.value;
  }

  async function tables(database: TestDatabase): Promise<string[]> {
    const rows = await database.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
    return rows.map((row) => row.tablename);
  }

  test('the runtime holds no TypeScript sources, only the bundle', () => {
    assert.ok(existsSync(path.join(image, '.convoy', 'dist')));
    assert.ok(existsSync(path.join(image, 'convoy', '_generated', 'http.js')));
    assert.ok(!existsSync(path.join(image, 'convoy', 'schema.ts')));
    assert.ok(!existsSync(path.join(image, 'convoy', 'functions')));
    assert.ok(!existsSync(path.join(image, 'node_modules', 'vite')), 'devDependencies are pruned');
  });

  test('the CMD migrates a fresh database, serves it, and exits 0 on SIGTERM with streams closed', async () => {
    const database = await newDatabase();
    const { running, url, port } = await startImage({ DATABASE_URL: database.url });
    try {
      await waitForHealth(url, running);
      assert.deepEqual(await tables(database), ['projects', 'users']);
      assert.match(running.output(), /CREATE TABLE/, 'the entry ran convoy migrate first');

      const checked = await run(healthcheck[0]!, healthcheck.slice(1), {
        cwd: image,
        env: { ...imageEnv, PORT: String(port) },
        ...unprivileged,
      });
      assert.equal(checked.code, 0, `the HEALTHCHECK fails:\n${checked.output}`);

      const userId = await call(url, 'mutation', 'users:createUser', { name: 'Ada', email: 'ada@example.com' });
      await call(url, 'mutation', 'projects:createProject', { userId, name: 'Rocket' });
      const projects = await call(url, 'query', 'projects:listProjects', { userId });
      assert.deepEqual(
        projects.map((project: any) => project.name),
        ['Rocket'],
      );

      // A live query on a sync stream, which SIGTERM must end with its closing event.
      const stream = await fetch(`${url}/api/sync`, { headers: { accept: 'text/event-stream' } });
      assert.equal(stream.status, 200);
      const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
      let events = '';
      // Reads the stream until `pattern` shows up, it ends, or 20 s pass (a server that kept
      // running after SIGTERM keeps the stream open).
      const readUntil = async (pattern: RegExp) => {
        const deadline = Date.now() + 20_000;
        while (!pattern.test(events) && Date.now() < deadline) {
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise<{ done: true; value: undefined }>((resolve) => {
            timer = setTimeout(() => resolve({ done: true, value: undefined }), deadline - Date.now());
          });
          const { done, value } = await Promise.race([reader.read(), timeout]);
          clearTimeout(timer);
          if (done) break;
          events += value;
        }
        return pattern.test(events);
      };
      assert.ok(await readUntil(/"session":"[^"]+"/), events);
      const session = /"session":"([^"]+)"/.exec(events)![1];
      const subscribed = await fetch(`${url}/api/sync/${session}`, {
        method: 'POST',
        body: JSON.stringify({ add: [{ id: 'users', path: 'users:listUsers', args: {} }] }),
      });
      assert.equal(subscribed.status, 200);
      assert.ok(await readUntil(/"id":"users","value":\[.*"Ada"/), events);

      const exit = dockerStop(running);
      assert.ok(await readUntil(/event: close\ndata: \{"reason":"shutdown"\}/), `no closing event:\n${events}`);
      assert.deepEqual(await exit, { code: 0, signal: null }, running.output());
    } finally {
      await running.stop('SIGKILL');
    }
  });

  test("the release step: fly.toml's and railway.json's migrate, then machines that start straight away", async () => {
    const database = await newDatabase();
    const skip = { DATABASE_URL: database.url, CONVOY_MIGRATE_ON_START: 'false' };

    // Before the release step: the server refuses an unmigrated database and names the step.
    const early = await startImage(skip);
    const refused = await new Promise<number | null>((resolve) => {
      early.running.child.once('exit', resolve);
      setTimeout(() => resolve(null), 60_000).unref();
    });
    await early.running.stop('SIGKILL');
    assert.ok(refused !== null && refused !== 0, `the server should refuse to start:\n${early.running.output()}`);
    assert.match(early.running.output(), /convoy migrate/);
    assert.deepEqual(await tables(database), [], 'the server created nothing');

    const fly = parseConfig(path.join(example, 'fly.toml'));
    const railway = JSON.parse(await readFile(path.join(example, 'railway.json'), 'utf8'));
    const env = { ...imageEnv, ...fly.env, DATABASE_URL: database.url };
    const release = await run('/bin/sh', ['-c', fly.deploy.release_command], { cwd: image, env, ...unprivileged });
    assert.equal(release.code, 0, release.output);
    assert.deepEqual(await tables(database), ['projects', 'users']);
    for (const command of railway.deploy.preDeployCommand) {
      const again = await run('/bin/sh', ['-c', command], { cwd: image, env, ...unprivileged });
      assert.equal(again.code, 0, again.output);
      assert.match(again.output, /nothing to do/);
    }

    const machine = await startImage({ ...fly.env, ...skip });
    try {
      await waitForHealth(machine.url, machine.running);
      assert.doesNotMatch(machine.running.output(), /nothing to do|CREATE TABLE/, 'the machine did not migrate');
      assert.deepEqual(await call(machine.url, 'query', 'users:listUsers', {}), []);
      assert.deepEqual(await dockerStop(machine.running), { code: 0, signal: null }, machine.running.output());
    } finally {
      await machine.running.stop('SIGKILL');
    }
  });
});
