/**
 * The conformance report's benchmark (docs/benchmarks.md § Conformance report): `convoy graduate
 * projects --check` as a user runs it, on 100,000 and 1,000,000 documents seeded by SQL, 1.5 % of
 * them failing one rule each (the kinds of __test__/conformance.test.ts). Times the whole command
 * and each pass; writes bench/results/conformance.json.
 *
 *   node bench/conformance.mjs [--sizes 100000,1000000]
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { seedSql } from '../__test__/fixtures/graduation-app/seed.mjs';
import { postgresUrl } from './seed.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const cli = path.join(root, 'dist', 'cli', 'bin.js');
const { values: options } = parseArgs({ options: { sizes: { type: 'string', default: '100000,1000000' } } });
const sizes = options.sizes.split(',').map(Number);
const log = (message) => console.log(`bench: ${message}`);

// The test's app: users, projects with one rule of each kind, tasks that refer to projects.
const app = mkdtempSync(path.join(os.tmpdir(), 'convoy-bench-conformance-'));
cpSync(path.join(root, '__test__', 'fixtures', 'graduation-app', 'convoy'), path.join(app, 'convoy'), {
  recursive: true,
});
mkdirSync(path.join(app, 'node_modules', '@avvos'), { recursive: true });
symlinkSync(root, path.join(app, 'node_modules', '@avvos', 'convoy'), 'dir');
symlinkSync(path.join(root, 'node_modules', 'zod'), path.join(app, 'node_modules', 'zod'), 'dir');

const admin = new pg.Client({ connectionString: postgresUrl });
await admin.connect();
const results = {};
for (const documents of sizes) {
  const url = new URL(postgresUrl);
  url.pathname = '/convoy_bench_conformance';
  await admin.query('DROP DATABASE IF EXISTS convoy_bench_conformance WITH (FORCE)');
  await admin.query('CREATE DATABASE convoy_bench_conformance');
  const env = { ...process.env, DATABASE_URL: url.toString() };
  execFileSync('node', [cli, 'migrate'], { cwd: app, env, stdio: 'ignore' });
  log(`seeding ${documents.toLocaleString('en-US')} documents`);
  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
  const seeded = performance.now();
  await db.query(seedSql({ documents, users: 1000 }));
  // No autovacuum in the middle of a measurement (bench/seed.mjs does the same).
  await db.query('VACUUM (FREEZE, ANALYZE) projects');
  await db.query('VACUUM (FREEZE, ANALYZE) users');
  const size = (await db.query("SELECT pg_size_pretty(pg_total_relation_size('projects')) AS size")).rows[0].size;
  await db.end();
  log(`seeded in ${((performance.now() - seeded) / 1000).toFixed(1)} s (${size}); checking`);

  const runs = [];
  for (let run = 0; run < 3; run++) {
    const started = performance.now();
    let stdout;
    try {
      stdout = execFileSync('node', [cli, 'graduate', 'projects', '--check', '--json'], {
        cwd: app,
        env,
        stdio: ['ignore', 'pipe', 'ignore'],
        maxBuffer: 64 * 1024 * 1024,
      });
    } catch (error) {
      // Exit 1: documents fail, as seeded.
      if (error.status !== 1) throw error;
      stdout = error.stdout;
    }
    const wallMs = Math.round(performance.now() - started);
    const report = JSON.parse(stdout.toString());
    if (report.failingDocuments !== Math.floor(documents / 1000) * 15 + Math.min(documents % 1000, 15)) {
      throw new Error(`unexpected failing count ${report.failingDocuments}`);
    }
    runs.push({ wallMs, fastMs: report.fast.ms, exactMs: report.exact.ms, batches: report.exact.batches });
    log(`run ${run + 1}: ${wallMs} ms (fast pass ${report.fast.ms} ms, exact pass ${report.exact.ms} ms)`);
  }
  const median = (key) => runs.map((run) => run[key]).sort((a, b) => a - b)[1];
  results[documents] = {
    tableSize: size,
    wallMs: median('wallMs'),
    fastPassMs: median('fastMs'),
    exactPassMs: median('exactMs'),
    batches: runs[0].batches,
    exactDocumentsPerSecond: Math.round(documents / (median('exactMs') / 1000)),
    fastDocumentsPerSecond: Math.round(documents / (median('fastMs') / 1000)),
    runs,
  };
}
await admin.query('DROP DATABASE IF EXISTS convoy_bench_conformance WITH (FORCE)');
await admin.end();

const report = {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, node: process.version },
  batchSize: 5000,
  results,
};
mkdirSync(path.join(here, 'results'), { recursive: true });
const file = path.join(here, 'results', 'conformance.json');
writeFileSync(`${file}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
renameSync(`${file}.tmp`, file);
console.log('\nconvoy graduate projects --check (median of 3 runs)');
console.table(
  Object.fromEntries(
    Object.entries(results).map(([documents, result]) => [
      Number(documents).toLocaleString('en-US'),
      {
        'whole command (s)': result.wallMs / 1000,
        'fast pass (s)': result.fastPassMs / 1000,
        'exact pass (s)': result.exactPassMs / 1000,
        'exact docs/s': result.exactDocumentsPerSecond,
      },
    ]),
  ),
);
