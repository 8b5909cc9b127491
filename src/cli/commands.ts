/** `convoy migrate`, `convoy build` and `convoy codegen`. */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import pc from 'picocolors';
import { writeGenerated, writeStaticFiles } from '../codegen/index.js';
import { describeSchema } from '../schema.js';
import { buildApp, distDir, findSources, type LoadedApp, loadApp, loadBuiltApp } from '../server/app.js';
import { connectEngine } from '../server/native.js';
import { setAppSchema, syncApp } from '../server/prepare.js';
import { isConvoyError } from '../values/errors.js';
import { databaseOf } from './databaseUrl.js';
import { warnAboutModuleType } from './moduleType.js';
import { fail, info, resolveAppDir } from './project.js';

export function explain(error: unknown): string {
  return isConvoyError(error) ? error.message : ((error as Error)?.stack ?? String(error));
}

/**
 * The app from its sources when `convoy/schema.ts` is there, or else from the bundle of
 * `convoy build` (a runtime image holds only `.convoy/dist/` and `convoy/_generated/`).
 */
export async function loadForMigrate(
  appDir: string,
  { log = info, exitCode = 1 }: { log?: (line: string) => void; exitCode?: number } = {},
): Promise<{ app: LoadedApp; from: string }> {
  if (findSources(appDir)) {
    await writeStaticFiles(appDir);
    return { app: await loadApp(appDir), from: 'convoy/' };
  }
  if (existsSync(distDir(appDir))) {
    const { app, manifest, stale } = await loadBuiltApp(appDir);
    for (const reason of stale) log(pc.yellow(`the bundle is stale: ${reason}`));
    return { app, from: `.convoy/dist/ (built ${manifest.builtAt})` };
  }
  return fail(
    `No convoy/schema.ts and no .convoy/dist/ in ${appDir}: the schema is read from the sources, ` +
      'or from the bundle that `npx convoy build` writes.',
    exitCode,
  );
}

/** The tables whose change triggers are missing or out of date. */
async function untriggered(engine: Awaited<ReturnType<typeof connectEngine>>, app: LoadedApp): Promise<string[]> {
  await setAppSchema(engine, app);
  return engine.tablesWithoutChangeTrigger();
}

/** A statement as psql takes it: ending with one `;`. */
const printStatement = (statement: string) =>
  console.log(statement.trimEnd().endsWith(';') ? statement : `${statement};`);

/**
 * The same schema sync as `convoy dev`, for production, and the one step that changes the
 * schema: says what it will do, does it, and prints each statement it ran. It also installs the
 * change triggers where they are missing or out of date, unless `CONVOY_CHANGE_TRIGGER=0`
 * (docs/postgres.md § Writes you make yourself).
 */
export async function migrate(options: { dir?: string; dryRun?: boolean }): Promise<void> {
  const appDir = resolveAppDir(options.dir);
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) fail('DATABASE_URL is not set; migrate syncs the schema of the database it names.');
  const changeTrigger = process.env.CONVOY_CHANGE_TRIGGER !== '0';
  try {
    const { app, from } = await loadForMigrate(appDir);
    info(`the schema of ${from}, the database ${databaseOf(databaseUrl)}`);
    const engine = await connectEngine(databaseUrl, 1);
    try {
      const plan = await syncApp(engine, app, true);
      const changes = plan.statements;
      const triggerTables = describeSchema(app.schema)
        .tables.filter((table) => table.managed)
        .map((table) => table.name);
      if (options.dryRun) {
        if (changes.length === 0) info('the database already matches the schema; nothing to do');
        else {
          info('would run:');
          for (const statement of plan.statements) printStatement(statement);
        }
        for (const note of plan.notes) info(pc.yellow(note));
        if (changeTrigger) {
          // Only a database whose tables exist can say whether their triggers do.
          const missing = changes.length === 0 ? await untriggered(engine, app) : triggerTables;
          if (missing.length > 0) info(`would install the change triggers on ${missing.join(', ')}`);
        }
        info('dry run: nothing was changed');
        return;
      }

      let ran = 0;
      if (changes.length === 0) {
        info('the database already matches the schema; nothing to do');
        for (const note of plan.notes) info(pc.yellow(note));
      } else {
        // The same plan again, now run; its report lists what actually ran.
        const report = await syncApp(engine, app, false);
        info(`ran ${report.statements.length} statement${report.statements.length === 1 ? '' : 's'}:`);
        for (const statement of report.statements) printStatement(statement);
        for (const note of report.notes) info(pc.yellow(note));
        ran += report.statements.length;
      }
      if (changeTrigger && (await untriggered(engine, app)).length > 0) {
        const statements = await engine.installChangeTrigger();
        info(
          'installed the change triggers (writes made outside Convoy reach live queries; CONVOY_CHANGE_TRIGGER=0 turns them off):',
        );
        for (const statement of statements) printStatement(statement);
        ran += statements.length;
      }
      if (ran > 0) info(pc.green(`done: ${ran} statement${ran === 1 ? '' : 's'} run`));
    } finally {
      await engine.close();
    }
  } catch (error) {
    fail(explain(error));
  }
}

/**
 * `convoy build`: bundles `convoy/` once into `.convoy/dist/` for the production server, and says
 * what it wrote.
 */
export async function build(options: { dir?: string }): Promise<void> {
  const appDir = resolveAppDir(options.dir);
  try {
    await writeStaticFiles(appDir);
    const built = await buildApp(appDir);
    const where = path.relative(process.cwd(), built.dir) || '.';
    const size = async (file: string) => `${((await stat(path.join(built.dir, file))).size / 1024).toFixed(1)} KiB`;
    info(`wrote ${where}/ (${built.files.length} files):`);
    for (const file of built.files) {
      if (file.endsWith('.map')) continue;
      const map = built.files.includes(`${file}.map`)
        ? ` + ${file.split('/').at(-1)}.map ${await size(`${file}.map`)}`
        : '';
      console.log(`  ${file} ${pc.dim(`${await size(file)}${map}`)}`);
    }
    const names = [...built.app.functions.keys()];
    info(`${names.length} function${names.length === 1 ? '' : 's'}: ${names.join(', ') || '(none)'}`);
    info(
      `Convoy ${built.manifest.convoy}, sources ${built.manifest.sourceHash.slice(0, 19)}…; ` +
        'start it with `node convoy/_generated/http.js` (after `npx convoy migrate`)',
    );
  } catch (error) {
    fail(explain(error));
  }
}

export async function codegen(options: { dir?: string }): Promise<void> {
  const appDir = resolveAppDir(options.dir);
  warnAboutModuleType(appDir);
  try {
    await writeStaticFiles(appDir);
    const app = await loadApp(appDir);
    const written = await writeGenerated(appDir, app.files);
    info(written.length > 0 ? `wrote convoy/_generated/: ${written.join(', ')}` : 'convoy/_generated/ is up to date');
  } catch (error) {
    fail(explain(error));
  }
}
