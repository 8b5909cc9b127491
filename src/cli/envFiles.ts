/**
 * `.env` and `.env.local` of the app, as Vite and Next.js read them: the real environment wins,
 * then `.env.local` (a developer's own, never committed), then `.env`. Parsed by Node's own
 * `util.parseEnv` (Node 20.12 and later).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import util from 'node:util';

export interface EnvFiles {
  /** The files read, in the order they count: `['.env.local', '.env']`. */
  read: string[];
  /** Which file each variable that was set came from. */
  from: Map<string, string>;
  /** Set when files exist but this Node cannot parse them. */
  unsupported?: string;
}

export function loadEnvFiles(appDir: string): EnvFiles {
  const present = ['.env.local', '.env'].filter((name) => existsSync(path.join(appDir, name)));
  const from = new Map<string, string>();
  // Typed as always there; it is missing before Node 20.12, which `engines` still admits.
  const parseEnv = (util as { parseEnv?: typeof util.parseEnv }).parseEnv;
  if (present.length > 0 && !parseEnv) {
    return {
      read: [],
      from,
      unsupported: `Node ${process.version} cannot read ${present.join(' and ')} (Node 20.12 can)`,
    };
  }
  for (const name of present) {
    const values = parseEnv!(readFileSync(path.join(appDir, name), 'utf8'));
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined || key in process.env) continue;
      process.env[key] = value;
      from.set(key, name);
    }
  }
  return { read: present, from };
}
