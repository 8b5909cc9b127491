/**
 * What the database and the core are given before a server serves an app: the schema (synced, as
 * `convoy dev` does, or checked, as the production server does), the change trigger, and the
 * table of the app's functions.
 */
import { describeSchema } from '../schema.js';
import { ConvoyError } from '../values/errors.js';
import type { AnyFunction, LoadedApp } from './app.js';
import type { Engine } from './native.js';

export interface SyncReport {
  statements: string[];
  notes: string[];
  applied: boolean;
}

export async function syncApp(engine: Engine, app: LoadedApp, dryRun: boolean): Promise<SyncReport> {
  const schemaJson = JSON.stringify(describeSchema(app.schema));
  const report = JSON.parse(await engine.syncSchema(schemaJson, dryRun)) as SyncReport;
  if (!dryRun) await engine.setSchema(schemaJson);
  return report;
}

/** Gives the engine the app's schema (it reads the unmanaged tables' columns), changing nothing. */
export async function setAppSchema(engine: Engine, app: LoadedApp): Promise<void> {
  await engine.setSchema(JSON.stringify(describeSchema(app.schema)));
}

/**
 * The production server's check: a dry run of sync. When the database does not match the schema
 * it refuses, naming `convoy migrate` and what it would run; the database is left as it is.
 */
export async function checkApp(engine: Engine, app: LoadedApp): Promise<SyncReport> {
  // Sync lists its own records (`INSERT INTO convoy.…`) only when missing or different, so every
  // statement of the dry run is a difference.
  const report = await syncApp(engine, app, true);
  const changes = report.statements;
  if (changes.length > 0) {
    const lines = changes.map((statement) => {
      const [first, ...rest] = statement.trim().split('\n');
      return `  ${first}${rest.length > 0 ? ' …' : ''}`;
    });
    throw new ConvoyError(
      'INVALID_ARGS',
      'the database does not match the schema, and the production server never changes it. ' +
        'Run `npx convoy migrate` with this DATABASE_URL first (`npx convoy migrate --dry-run` prints the plan). ' +
        `It would run:\n${lines.join('\n')}` +
        report.notes.map((note) => `\n  (${note})`).join(''),
    );
  }
  await setAppSchema(engine, app);
  return report;
}

/**
 * Syncs the schema, or with `syncSchema: false` (production) checks that the database matches
 * it. With `changeTrigger`, a sync installs the trigger that makes writes made with psql show up
 * live too (docs/protocol.md § Live queries).
 */
export async function prepareSchema(
  engine: Engine,
  app: LoadedApp,
  { syncSchema, changeTrigger }: { syncSchema: boolean; changeTrigger: boolean },
): Promise<SyncReport> {
  if (!syncSchema) return checkApp(engine, app);
  const report = await syncApp(engine, app, false);
  if (changeTrigger) await engine.installChangeTrigger();
  return report;
}

/** The production server never installs the change triggers (migrate does), so it checks that they are there, and current. */
export async function requireChangeTrigger(engine: Engine): Promise<void> {
  const missing = await engine.tablesWithoutChangeTrigger();
  if (missing.length > 0) {
    throw new ConvoyError(
      'INVALID_ARGS',
      `the change triggers (which tell live queries of writes made outside Convoy) are missing or out of date on ${missing.join(', ')}. ` +
        'Run `npx convoy migrate` first: it installs them, and the production server never changes the schema. ' +
        '(CONVOY_CHANGE_TRIGGER=0 turns them off, for migrate and for the server.)',
    );
  }
}

/**
 * Tells the core the app's functions (and a tool's internal ones, `extensions.ts`), their timeouts,
 * and whether streams authenticate.
 */
export function installFunctions(
  engine: Engine,
  app: LoadedApp,
  internal: ReadonlyMap<string, AnyFunction> = new Map(),
): void {
  const functions = [...app.functions, ...internal].map(([path, fn]) => ({
    path,
    kind: fn.kind,
    ...(fn.timeoutMs !== undefined ? { timeoutMs: fn.timeoutMs } : {}),
  }));
  engine.setFunctions(JSON.stringify({ functions, authenticates: app.createContext !== undefined }));
}
