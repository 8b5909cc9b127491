/**
 * `convoy graduate <table>` (GRADUATION.md § convoy graduate). `--check` is built: the
 * conformance report, which changes nothing and exits 1 when any document does not fit, 0 when
 * all do. The other steps are not built yet and say so (exit 2); so does anything that keeps the
 * check from running, so that exit 1 always means "documents fail".
 */
import pc from 'picocolors';
import { checkConformance, inspect, type Read } from '../graduation/conformance.js';
import { formatReport } from '../graduation/report.js';
import { readForTool } from '../server/native.js';
import { explain, loadForMigrate } from './commands.js';
import { connectToolDatabase } from './database.js';
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
}

/** The exit code of a check that could not run (a usage or environment error). */
const CANNOT_CHECK = 2;

/** Why the check cannot run; thrown so that the database is closed before the command exits. */
class CannotCheck extends Error {}

const NOT_BUILT = [
  ['dryRun', '--dry-run', 'writing the plan: up.sql, down.sql, plan.json'],
  ['status', '--status', "a graduation's progress"],
  ['abort', '--abort', 'undoing a graduation'],
  ['complete', '--complete', 'completing a graduation'],
] as const;

export async function graduate(tableName: string, options: GraduateOptions): Promise<void> {
  const unbuilt = NOT_BUILT.find(([flag]) => options[flag]);
  if (unbuilt || !options.check) {
    const [, flag, what] = unbuilt ?? [undefined, '(without a flag)', 'running a graduation'];
    fail(
      `convoy graduate ${flag} (${what}) is not built yet; only \`convoy graduate ${tableName} --check\`, the ` +
        'conformance report, is. Nothing was changed.',
      CANNOT_CHECK,
    );
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
