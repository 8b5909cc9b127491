/**
 * `convoy dev`: sync the schema, write `_generated/`, serve, and reload in place when `convoy/`
 * changes. With no DATABASE_URL it runs an embedded Postgres whose data lives in `.convoy/`.
 * Each version is type-checked beside loading it (`--typecheck`), and one with type errors is
 * not swapped in: the last good one keeps serving.
 */
import { watch } from 'node:fs';
import path from 'node:path';
import pc from 'picocolors';
import { writeGenerated, writeStaticFiles } from '../codegen/index.js';
import { devDashboard } from '../dashboard/dev.js';
import { describeNotice, tighteningNotices } from '../graduation/tightening.js';
import type { SchemaDefinition } from '../schema.js';
import { convoyDir } from '../server/app.js';
import { limitsFromEnv } from '../server/options.js';
import { type ConvoyServer, startConvoy } from '../server/runtime.js';
import { ensureStateDir } from '../server/stateDir.js';
import { explain } from './commands.js';
import { maskedDatabaseUrl } from './databaseUrl.js';
import { lockDev } from './devLock.js';
import { type EmbeddedDatabase, startEmbedded } from './embedded.js';
import { loadEnvFiles } from './envFiles.js';
import { misplacedFunctionFiles } from './misplacedFunctions.js';
import { fail, info, resolveAppDir } from './project.js';
import { splitImplicitAnys, type Typechecker, type TypecheckMode, TypeErrors, typecheckerFor } from './typecheck.js';

export interface DevOptions {
  port?: number | string;
  dir?: string;
  typecheck?: string;
  dashboardPort?: number | string;
}

const warn = (line: string) => info(pc.yellow(line));

function typecheckModeOf(value: string | undefined): TypecheckMode {
  if (value === undefined || value === 'enable' || value === 'disable') return value ?? 'enable';
  return fail(`--typecheck is enable or disable, not ${value}`);
}

/**
 * A promise of the check that rejects with `TypeErrors`, for `admit`. Implicit `any`s are said
 * but do not hold a version back (see `splitImplicitAnys`).
 */
async function typeChecked(checker: Typechecker): Promise<void> {
  const { untyped, blocking } = splitImplicitAnys(await checker.check());
  if (untyped.length > 0) {
    warn(
      `${untyped.length} implicit any${untyped.length === 1 ? '' : 's'} in convoy/ (served all the same; type them, ` +
        `or write createContext with defineContext from ./_generated/server.js):\n${untyped.join('\n')}`,
    );
  }
  if (blocking.length > 0) throw new TypeErrors(blocking);
}

function printTypeErrors(error: TypeErrors, consequence: string): void {
  console.error(`${pc.red('convoy:')} ${error.message}:\n${error.errors.join('\n')}\n${pc.dim(consequence)}`);
}

export async function dev(options: DevOptions): Promise<void> {
  const appDir = resolveAppDir(options.dir);
  const typecheck = typecheckModeOf(options.typecheck);
  // Before anything of the app is imported: stack traces of its handlers name convoy/ files
  // through the bundle's inline source maps, not the deleted bundle under .convoy/build/.
  process.setSourceMapsEnabled(true);

  const env = loadEnvFiles(appDir);
  if (env.unsupported) warn(env.unsupported);
  else if (env.read.length > 0) info(`read ${env.read.join(' and ')}`);
  const port = Number(options.port ?? process.env.PORT ?? 3737);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be a port number, not ${options.port}`);

  if (await ensureStateDir(appDir)) info('created .convoy/ for local state (it keeps itself out of git)');
  const lock = await lockDev(appDir);
  if ('heldBy' in lock) {
    const { pid, url } = lock.heldBy;
    fail(
      `convoy dev is already running in ${appDir} (pid ${pid}, ${url ? `serving ${url}` : 'starting'}); stop it first`,
    );
  }

  let embedded: EmbeddedDatabase | undefined;
  let server: ConvoyServer | undefined;
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    // The engine's connections close before Postgres stops, so neither logs the other going.
    await server?.stop().catch(() => {});
    await embedded?.stop().catch(() => {});
    info(embedded ? 'stopped (the embedded Postgres too; its data stays in .convoy/)' : 'stopped');
    process.exit(code);
  };
  // `on`, not `once`: a second Ctrl-C while stopping must not kill the process half-way.
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  const checker = typecheck === 'enable' ? typecheckerFor(appDir, warn) : undefined;
  const warned = new Set<string>();
  const warnMisplaced = () => {
    for (const { file, moveTo } of misplacedFunctionFiles(appDir)) {
      if (warned.has(file)) continue;
      warned.add(file);
      warn(`${file} defines functions, but Convoy serves only convoy/functions/: move it to ${moveTo}`);
    }
  };

  let databaseUrl = process.env.DATABASE_URL;
  const dashboard = devDashboard(options.dashboardPort, port);
  const start = async (admit: Promise<void> | undefined) => {
    const convoyOptions = { appDir, databaseUrl: databaseUrl!, port, dev: true, ...limitsFromEnv(), admit };
    server = await startConvoy(convoyOptions, dashboard.extensions);
    await writeGenerated(appDir, server.app.files);
    await lock.serving(server.url);
    report(server);
    info(`serving ${pc.bold(server.url)} — watching convoy/ for changes`);
    await dashboard.attach(server);
  };

  let timer: NodeJS.Timeout | undefined;
  let reloading: Promise<void> = Promise.resolve();
  const scheduleReload = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      reloading = reloading.then(async () => {
        if (stopping) return;
        warnMisplaced();
        const check = checker ? typeChecked(checker) : undefined;
        check?.catch(() => {});
        try {
          if (!server) {
            await start(check);
            return;
          }
          const before = server.app.schema;
          await server.reload(check);
          await writeGenerated(appDir, server.app.files);
          report(server);
          info('reloaded');
          noticeTightening(server, before);
        } catch (error) {
          const still = server ? 'still serving the last version that loaded and type-checked' : 'not serving yet';
          if (error instanceof TypeErrors) printTypeErrors(error, still);
          // Keep serving the last version that loaded; say what is wrong with this one.
          else console.error(`${pc.red('convoy:')} ${explain(error)}\n${pc.dim(still)}`);
        }
      });
    }, 100);
  };
  // Watching before the first start: a change made while it runs, or right after it says why it
  // does not serve, is not missed; a reload it causes waits for the start.
  watch(convoyDir(appDir), { recursive: true }, (_event, file) => {
    if (!file || file.startsWith('_generated') || path.basename(file).startsWith('.')) return;
    scheduleReload();
  });
  // What the type check reads besides convoy/: "type": "module" added, a tsconfig mended. The
  // folder, not the files, is watched: editors replace a file they save.
  watch(appDir, (_event, file) => {
    if (file === 'package.json' || file === 'tsconfig.json') scheduleReload();
  });

  reloading = (async () => {
    try {
      await writeStaticFiles(appDir);
      // The check runs while Postgres starts and the app loads; serving waits for it only at the end.
      const firstCheck = checker ? typeChecked(checker) : undefined;
      firstCheck?.catch(() => {});
      warnMisplaced();
      if (!databaseUrl) {
        embedded = await startEmbedded(appDir, info);
        databaseUrl = embedded.url;
        info(`database: an embedded Postgres, ${maskedDatabaseUrl(databaseUrl)}, data in .convoy/pg`);
      } else {
        const from = env.from.get('DATABASE_URL');
        info(`database: ${maskedDatabaseUrl(databaseUrl)} (DATABASE_URL${from ? ` from ${from}` : ''})`);
      }
      await start(firstCheck);
    } catch (error) {
      if (!(error instanceof TypeErrors)) {
        console.error(`${pc.red('convoy:')} ${explain(error)}`);
        await shutdown(1);
        return;
      }
      // No good version yet to serve: wait for a save that type-checks, as Convex's dev does.
      printTypeErrors(
        error,
        'not serving until convoy/ type-checks: fix the errors and save (or start with --typecheck disable)',
      );
    }
  })();
  await reloading;
}

/**
 * After a reload, says which tables' stored documents the new schema no longer fits. It runs
 * beside serving, never on the reload's path, and a failure of its own is only reported.
 */
function noticeTightening(server: ConvoyServer, before: SchemaDefinition): void {
  tighteningNotices(server.read, before, server.app.schema).then(
    (notices) => {
      for (const notice of notices) info(pc.yellow(describeNotice(notice)));
    },
    (error) => info(pc.yellow(`could not count the documents the new schema no longer fits: ${explain(error)}`)),
  );
}

function report(server: ConvoyServer): void {
  for (const statement of server.lastSync.statements) {
    // The first line of each, marked as cut when the statement goes on.
    const [first, ...rest] = statement.split('\n');
    if (/^(CREATE|DROP)/.test(statement)) info(pc.dim(rest.length > 0 ? `${first} …` : first!));
  }
  for (const note of server.lastSync.notes) info(pc.yellow(note));
  const names = [...server.app.functions.keys()];
  info(`${names.length} function${names.length === 1 ? '' : 's'}: ${names.join(', ') || '(none yet)'}`);
}
