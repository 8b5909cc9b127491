/**
 * The database a tool of the CLI reads (`convoy graduate --check`): DATABASE_URL's, or, as in
 * `convoy dev`, the embedded Postgres of the app's `.convoy/` — shared with a `convoy dev` that
 * is running it, or started for the command and stopped after it.
 */
import path from 'node:path';
import { connectEngine, type Engine } from '../server/native.js';
import { runningEmbeddedUrl, startEmbedded } from './embedded.js';

export interface ToolDatabase {
  engine: Engine;
  close(): Promise<void>;
}

export async function connectToolDatabase(appDir: string, log: (line: string) => void): Promise<ToolDatabase> {
  const databaseUrl = process.env.DATABASE_URL;
  if (databaseUrl) {
    const engine = await connectEngine(databaseUrl, 2);
    return { engine, close: () => engine.close() };
  }
  const running = runningEmbeddedUrl(appDir);
  if (running) {
    const engine = await connectEngine(running, 2).catch(() => undefined);
    if (engine) {
      log('no DATABASE_URL: using the embedded Postgres that convoy dev is running');
      return { engine, close: () => engine.close() };
    }
  }
  const embedded = await startEmbedded(appDir, log);
  log(`no DATABASE_URL: started the embedded Postgres, data in ${path.relative(appDir, embedded.dataDir) || '.'}`);
  try {
    const engine = await connectEngine(embedded.url, 2);
    return {
      engine,
      async close() {
        await engine.close();
        await embedded.stop();
      },
    };
  } catch (error) {
    await embedded.stop();
    throw error;
  }
}
