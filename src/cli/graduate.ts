/**
 * `convoy graduate <table>` (GRADUATION.md § convoy graduate). `--check` is the conformance
 * report, which changes nothing and exits 1 when any document does not fit, 0 when all do. The
 * bare command runs the graduation online (refusing while the report fails), `--dry-run` writes
 * its plan, `--status` says where it is, `--complete` and `--abort` end it (`graduation.ts`).
 * Anything that keeps a step from running exits 2, so that exit 1 always means "documents fail".
 */
import path from 'node:path';
import pc from 'picocolors';
import { type ConformanceReport, checkConformance, inspect, type Read } from '../graduation/conformance.js';
import { formatReport } from '../graduation/report.js';
import { describeSchema, type SchemaDefinition, type TableDefinition } from '../schema.js';
import { type Engine, readForTool } from '../server/native.js';
import { explain, loadForMigrate } from './commands.js';
import { connectToolDatabase } from './database.js';
import * as graduation from './graduation.js';
import { progress } from './progress.js';
import { fail, resolveAppDir } from './project.js';

export interface GraduateOptions {
  dir?: string;
  check?: boolean;
  json?: boolean;
  dryRun?: boolean;
  status?: boolean;
  abort?: boolean;
  complete?: boolean;
  batchSize?: number | string;
  maxRowsPerSecond?: number | string;
}

/** The exit code of a check that could not run (a usage or environment error). */
const CANNOT_CHECK = 2;

/** Why the check cannot run; thrown so that the database is closed before the command exits. */
class CannotCheck extends Error {}

export async function graduate(tableName: string, options: GraduateOptions): Promise<void> {
  const steps = (['check', 'dryRun', 'status', 'abort', 'complete'] as const).filter((flag) => options[flag]);
  if (steps.length > 1) {
    fail(`choose one of --check, --dry-run, --status, --abort, --complete (not ${steps.length})`, CANNOT_CHECK);
  }
  const maxRowsPerSecond = options.maxRowsPerSecond === undefined ? undefined : Number(options.maxRowsPerSecond);
  if (maxRowsPerSecond !== undefined && !(maxRowsPerSecond > 0)) {
    fail(`--max-rows-per-second must be a positive number, not ${options.maxRowsPerSecond}`, CANNOT_CHECK);
  }
  const batchSize = options.batchSize === undefined ? undefined : Number(options.batchSize);
  if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize > 0)) {
    fail(`--batch-size must be a positive integer, not ${options.batchSize}`, CANNOT_CHECK);
  }
  // With --json, stdout carries the JSON alone; everything else goes to stderr.
  const log = (line: string) => (options.json ? console.error : console.log)(`${pc.cyan('convoy')} ${line}`);
  const appDir = resolveAppDir(options.dir, CANNOT_CHECK);

  let exitCode = CANNOT_CHECK;
  try {
    const { app, from } = await loadForMigrate(appDir, { log, exitCode: CANNOT_CHECK });
    const table = app.schema.tables[tableName];
    if (!table) {
      const names = Object.keys(app.schema.tables);
      throw new CannotCheck(
        `the schema (${from}) has no table ${tableName}; its tables: ${names.join(', ') || '(none)'}`,
      );
    }
    if (table.isUnmanaged) {
      throw new CannotCheck(
        `${tableName} is declared .unmanaged(): its shape is yours (Drizzle, Prisma, SQL), and Convoy has nothing to graduate`,
      );
    }
    const database = await connectToolDatabase(appDir, log);
    try {
      if (!options.check) {
        exitCode = await change(
          database.engine,
          tableName,
          table as TableDefinition,
          app.schema,
          { ...options, maxRowsPerSecond },
          appDir,
          log,
        );
        await database.close();
        process.exit(exitCode);
      }
      const read: Read = (statements) => readForTool(database.engine, statements);
      const { state, target } = await inspect(read, tableName, table, app.schema);
      if (!state.exists) {
        throw new CannotCheck(
          `the database has no table ${tableName} yet: \`npx convoy migrate\` (or \`convoy dev\`) creates it`,
        );
      }
      if (!state.documents) {
        throw new CannotCheck(
          `${tableName} is not a table of documents (id uuid, data jsonb) in the database: it has graduated already, ` +
            `or it is not Convoy's (its columns: ${Object.keys(state.columns).join(', ')})`,
        );
      }
      log(`checking ${tableName} against the schema of ${from}`);
      let bar: ReturnType<typeof progress> | undefined;
      const report = await checkConformance(read, target, {
        ...(batchSize === undefined ? {} : { batchSize }),
        onFastPass: (fast) => {
          // A bar for big tables only: a small one is checked before a bar could be read.
          if (fast.documents > (batchSize ?? 5000) * 2) bar = progress(fast.documents, `documents of ${tableName}`);
        },
        onProgress: (checked) => bar?.update(checked),
      });
      bar?.stop();
      if (options.json) console.log(JSON.stringify(report, null, 2));
      else for (const line of formatReport(report)) console.log(line);
      exitCode = report.conforms ? 0 : 1;
    } finally {
      await database.close();
    }
  } catch (error) {
    fail(error instanceof CannotCheck ? error.message : explain(error), CANNOT_CHECK);
  }
  process.exit(exitCode);
}

/** The conformance report, or why it cannot be made. */
async function conformance(
  engine: Engine,
  tableName: string,
  table: TableDefinition,
  schema: SchemaDefinition,
  log: (line: string) => void,
): Promise<ConformanceReport> {
  const read: Read = (statements) => readForTool(engine, statements);
  const { state, target } = await inspect(read, tableName, table, schema);
  if (!state.exists) {
    throw new CannotCheck(
      `the database has no table ${tableName} yet: \`npx convoy migrate\` (or \`convoy dev\`) creates it`,
    );
  }
  log(`checking ${tableName} against the schema first`);
  let bar: ReturnType<typeof progress> | undefined;
  const report = await checkConformance(read, target, {
    onFastPass: (fast) => {
      if (fast.documents > 10_000) bar = progress(fast.documents, `documents of ${tableName}`);
    },
    onProgress: (checked) => bar?.update(checked),
  });
  bar?.stop();
  return report;
}

/** Every step but --check; returns the exit code. */
async function change(
  engine: Engine,
  tableName: string,
  table: TableDefinition,
  schema: SchemaDefinition,
  options: GraduateOptions & { maxRowsPerSecond?: number },
  appDir: string,
  log: (line: string) => void,
): Promise<number> {
  await engine.setSchema(JSON.stringify(describeSchema(schema)));
  const before = await graduation.status(engine, tableName);
  if (options.status) {
    if (options.json) console.log(JSON.stringify(before, null, 2));
    else for (const line of graduation.describe(before)) console.log(line);
    return 0;
  }
  if (options.abort) {
    const after = JSON.parse(await engine.abortGraduation(tableName)) as graduation.GraduationStatus;
    log(`aborted: ${tableName} is ${after.stage} again, exactly as before the graduation (its data untouched)`);
    return 0;
  }
  if (options.complete) {
    await engine.completeGraduation(tableName);
    log(`${tableName} is relational: its columns are the truth, and the table is what .relational() creates`);
    if (table.storage !== 'relational') {
      log(`declare it so in the schema: ${tableName}: defineTable({...}).relational()`);
    }
    return 0;
  }
  if (before.stage === 'relational') throw new CannotCheck(`${tableName} is relational already: nothing to graduate`);
  // A new graduation starts only on documents that all fit; a resumed one was checked already.
  const report = before.stage === 'documents' ? await conformance(engine, tableName, table, schema, log) : undefined;
  const steps = graduation.plan(engine, tableName);
  // A run writes its plan once, beside the report it started from; a dry run always writes one.
  if (options.dryRun || (report?.conforms && !(await graduation.hasPlan(appDir, tableName)))) {
    const dir = await graduation.writePlan(appDir, tableName, steps, report);
    log(`the plan: ${path.relative(appDir, dir)}/ (up.sql, down.sql, plan.json${report ? ', report.txt' : ''})`);
  }
  if (report && !report.conforms) {
    for (const line of formatReport(report)) console.log(line);
    log(pc.red(`${tableName} cannot graduate while documents do not fit the schema: fix them first (above)`));
  }
  if (options.dryRun) {
    console.log(graduation.upSql(tableName, steps));
    log('dry run: nothing was changed');
    return report && !report.conforms ? 1 : 0;
  }
  if (report && !report.conforms) return 1;
  log(before.stage === 'graduating' ? `resuming the graduation of ${tableName}` : `graduating ${tableName}`);
  if (table.storage !== 'relational') {
    log(
      pc.yellow(
        `${tableName} is not declared .relational() in the schema: once it is complete, declare it so (defineTable({...}).relational())`,
      ),
    );
  }
  const stop = () => {
    log(`stopped; every batch done so far is kept: run \`npx convoy graduate ${tableName}\` again to go on`);
    process.exit(130);
  };
  process.once('SIGINT', stop);
  try {
    const after = await graduation.run(
      engine,
      tableName,
      options.maxRowsPerSecond ? { maxRowsPerSecond: options.maxRowsPerSecond } : {},
      log,
    );
    for (const line of graduation.describe(after)) log(line);
    log(`next: \`npx convoy graduate ${tableName} --complete\` makes it final, \`--abort\` undoes it`);
  } finally {
    process.off('SIGINT', stop);
  }
  return 0;
}
