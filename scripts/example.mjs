#!/usr/bin/env node
/**
 * `npm run example`: the PRODUCT.md app on the embedded database — `convoy dev` in examples/app
 * (API on :3737) and its React page under Vite (on :5173). Ctrl-C stops both.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'vite';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const app = path.join(root, 'examples', 'app');

const convoy = spawn(process.execPath, [path.join(root, 'dist', 'cli', 'bin.js'), 'dev'], {
  cwd: app,
  stdio: 'inherit',
});
const web = await createServer({ configFile: path.join(app, 'vite.config.ts') });
await web.listen();
console.log('');
web.printUrls();
console.log('  ➜  Open it in two windows, add a project in one, and watch the other.\n');

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await web.close();
  if (convoy.exitCode === null) convoy.kill('SIGINT');
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
convoy.on('exit', async (code) => {
  await stop();
  process.exit(code ?? 0);
});
