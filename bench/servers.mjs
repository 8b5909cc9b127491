/** The servers under test, as child processes on loopback: started, waited for, always stopped. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const exampleApp = path.join(root, 'examples', 'app');
export const benchApp = path.join(root, 'bench', 'app');
// Every managed table of the app declared `.relational()` (src/schema.ts): what `convoy migrate`
// creates, and what the server then serves (a table's recorded stage wins: one created as
// documents stays documents).
const RELATIONAL = { CONVOY_TEST_STORAGE: 'relational' };

export const SERVERS = {
  handwritten: {
    label: 'hand-written (node:http + pg)',
    cwd: root,
    args: ['bench/handwritten-server.mjs'],
  },
  convoy: {
    label: 'Convoy',
    cwd: exampleApp,
    args: ['convoy/_generated/http.js'],
    prepare: (databaseUrl) => prepareConvoyServer(exampleApp, databaseUrl),
  },
  // The example's functions plus a read-modify-write, for bench/mutations.mjs.
  'convoy-bench-app': {
    label: 'Convoy',
    cwd: benchApp,
    args: ['convoy/_generated/http.js'],
    prepare: (databaseUrl) => prepareConvoyServer(benchApp, databaseUrl),
  },
  // The same app with every table relational, for bench/relational.mjs: it needs a database whose
  // tables `convoy migrate` created relational (bench/seed.mjs, `storage: 'relational'`).
  'convoy-bench-app-relational': {
    label: 'Convoy, relational',
    cwd: benchApp,
    args: ['convoy/_generated/http.js'],
    env: RELATIONAL,
    prepare: (databaseUrl) => prepareConvoyServer(benchApp, databaseUrl, RELATIONAL),
  },
};

/**
 * What a deploy does before the production server starts: `convoy build` (the bundle it loads, and
 * `convoy/_generated/http.js` if this checkout has none yet) and `convoy migrate` (it never
 * changes the schema itself).
 */
function prepareConvoyServer(app, databaseUrl, env = {}) {
  for (const command of ['build', 'migrate']) convoyCli(app, command, databaseUrl, env);
}

/** Runs `convoy <command>` in `app` on `databaseUrl`, as a deploy does; throws with its output if it fails. */
export function convoyCli(app, command, databaseUrl, env = {}) {
  const cli = path.join(root, 'dist', 'cli', 'bin.js');
  if (!existsSync(cli)) {
    throw new Error(
      `Convoy's CLI is not built (dist/cli/bin.js); run \`npm run build\`, or measure the hand-written server alone with \`--only handwritten\``,
    );
  }
  const result = spawnSync(process.execPath, [cli, command], {
    cwd: app,
    encoding: 'utf8',
    env: { ...process.env, ...env, DATABASE_URL: databaseUrl },
  });
  if (result.status !== 0) {
    throw new Error(`\`convoy ${command}\` failed in ${app}:\n${result.stdout}${result.stderr}`);
  }
  return result.stdout;
}

/** Starts one of SERVERS on a free loopback port and resolves once its /health answers 200. */
export async function startServer(name, databaseUrl) {
  const server = SERVERS[name];
  server.prepare?.(databaseUrl);
  const port = await freePort();
  const child = spawn(process.execPath, server.args, {
    cwd: server.cwd,
    env: {
      ...process.env,
      ...server.env,
      NODE_ENV: 'production',
      DATABASE_URL: databaseUrl,
      HOST: '127.0.0.1',
      PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The last 64 KiB of what it printed, for errors: Convoy logs a line per request.
  let output = '';
  const collect = (chunk) => {
    output = (output + chunk).slice(-65_536);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  stopOnExit.add(child);

  const running = {
    name,
    label: server.label,
    pid: child.pid,
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    async stop() {
      stopOnExit.delete(child);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
  try {
    await waitForHealth(running, child);
  } catch (error) {
    await running.stop();
    throw error;
  }
  return running;
}

async function waitForHealth(running, child, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`${running.label} exited (code ${child.exitCode}) before it was healthy:\n${running.output()}`);
    }
    try {
      if ((await fetch(`${running.url}/health`)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(
    `${running.label}: ${running.url}/health did not answer within ${timeoutMs / 1000} s:\n${running.output()}`,
  );
}

// Children still running when the benchmark ends early (an error, Ctrl-C) are stopped with it.
const stopOnExit = new Set();
process.once('exit', () => {
  for (const child of stopOnExit) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => process.exit(130));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}
