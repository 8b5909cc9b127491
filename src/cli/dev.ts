/**
 * `convoy dev`: sync the schema, write `_generated/`, serve, and reload in place when `convoy/`
 * changes. With no DATABASE_URL it runs an embedded Postgres whose data lives in `.convoy/`.
 */
import { watch } from 'node:fs';
import path from 'node:path';
import pc from 'picocolors';
import { writeGenerated, writeStaticFiles } from '../codegen/index.js';
import { describeNotice, tighteningNotices } from '../graduation/tightening.js';
import type { SchemaDefinition } from '../schema.js';
import { convoyDir } from '../server/app.js';
import { limitsFromEnv } from '../server/options.js';
import { type ConvoyServer, startConvoy } from '../server/runtime.js';
import { isConvoyError } from '../values/errors.js';
import { type EmbeddedDatabase, startEmbedded } from './embedded.js';
import { fail, info, resolveAppDir } from './project.js';

export interface DevOptions {
  port?: number | string;
  dir?: string;
}

function explain(error: unknown): string {
  return isConvoyError(error) ? error.message : ((error as Error)?.stack ?? String(error));
}

export async function dev(options: DevOptions): Promise<void> {
  const appDir = resolveAppDir(options.dir);
  const port = Number(options.port ?? process.env.PORT ?? 3737);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be a port number, not ${options.port}`);

  let embedded: EmbeddedDatabase | undefined;
  let server: ConvoyServer | undefined;
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await server?.stop().catch(() => {});
    await embedded?.stop().catch(() => {});
    info(embedded ? 'stopped (the embedded Postgres too; its data stays in .convoy/)' : 'stopped');
    process.exit(code);
  };
  process.once('SIGINT', () => void shutdown(0));
  process.once('SIGTERM', () => void shutdown(0));

  try {
    let databaseUrl = process.env.DATABASE_URL;
    if (!databaseUrl) {
      embedded = await startEmbedded(appDir, info);
      databaseUrl = embedded.url;
      info(`no DATABASE_URL: using an embedded Postgres, data in ${path.relative(appDir, embedded.dataDir) || '.'}`);
    }
    await writeStaticFiles(appDir);
    server = await startConvoy({ appDir, databaseUrl, port, dev: true, ...limitsFromEnv() });
    await writeGenerated(appDir, server.app.files);
  } catch (error) {
    console.error(`${pc.red('convoy:')} ${explain(error)}`);
    await shutdown(1);
    return;
  }
  report(server);
  info(`serving ${pc.bold(server.url)} — watching convoy/ for changes`);

  let timer: NodeJS.Timeout | undefined;
  let reloading = Promise.resolve();
  watch(convoyDir(appDir), { recursive: true }, (_event, file) => {
    if (!file || file.startsWith('_generated') || path.basename(file).startsWith('.')) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      reloading = reloading.then(async () => {
        if (!server || stopping) return;
        try {
          const before = server.app.schema;
          await server.reload();
          await writeGenerated(appDir, server.app.files);
          report(server);
          info('reloaded');
          noticeTightening(server, before);
        } catch (error) {
          // Keep serving the last version that loaded; say what is wrong with this one.
          console.error(
            `${pc.red('convoy:')} ${explain(error)}\n${pc.dim('still serving the last version that loaded')}`,
          );
        }
      });
    }, 100);
  });
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
    if (/^(CREATE|DROP)/.test(statement)) info(pc.dim(statement.split('\n')[0]!));
  }
  for (const note of server.lastSync.notes) info(pc.yellow(note));
  const names = [...server.app.functions.keys()];
  info(`${names.length} function${names.length === 1 ? '' : 's'}: ${names.join(', ') || '(none yet)'}`);
}
