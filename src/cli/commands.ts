/** `convoy migrate` and `convoy codegen`. */
import pc from 'picocolors';
import { writeGenerated, writeStaticFiles } from '../codegen/index.js';
import { loadApp } from '../server/app.js';
import { connectEngine } from '../server/native.js';
import { syncApp } from '../server/runtime.js';
import { isConvoyError } from '../values/errors.js';
import { fail, info, resolveAppDir } from './project.js';

function explain(error: unknown): string {
  return isConvoyError(error) ? error.message : ((error as Error)?.stack ?? String(error));
}

/** The same schema sync as `convoy dev`, for production: says what it will do, then does it. */
export async function migrate(options: { dir?: string; dryRun?: boolean }): Promise<void> {
  const appDir = resolveAppDir(options.dir);
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) fail('DATABASE_URL is not set; migrate syncs the schema of the database it names.');
  try {
    await writeStaticFiles(appDir);
    const app = await loadApp(appDir);
    const engine = await connectEngine(databaseUrl, 1);
    try {
      const plan = await syncApp(engine, app, true);
      const changes = plan.statements.filter((statement) => !statement.startsWith('INSERT INTO convoy.'));
      if (changes.length === 0) info('the database already matches the schema; nothing to do');
      else {
        info(`${options.dryRun ? 'would run' : 'will run'}:`);
        for (const statement of plan.statements) console.log(`${statement};`);
      }
      for (const note of plan.notes) info(pc.yellow(note));
      if (!options.dryRun && plan.statements.length > 0) {
        await syncApp(engine, app, false);
        info(pc.green('done'));
      }
    } finally {
      await engine.close();
    }
  } catch (error) {
    fail(explain(error));
  }
}

export async function codegen(options: { dir?: string }): Promise<void> {
  const appDir = resolveAppDir(options.dir);
  try {
    await writeStaticFiles(appDir);
    const app = await loadApp(appDir);
    const written = await writeGenerated(appDir, app.files);
    info(written.length > 0 ? `wrote convoy/_generated/: ${written.join(', ')}` : 'convoy/_generated/ is up to date');
  } catch (error) {
    fail(explain(error));
  }
}
