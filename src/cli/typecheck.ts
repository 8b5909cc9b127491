/**
 * `convoy dev --typecheck`: `tsc --noEmit` with the app's own TypeScript and tsconfig, in a child
 * process so that serving never waits on it, as Convex's `npx convex dev --typecheck` does. Only
 * errors in `convoy/` count: the rest of the app (a React page) is its bundler's business.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { collectOutput } from './collectOutput.js';

export type TypecheckMode = 'enable' | 'disable';

/** The app's TypeScript compiler and the tsconfig it checks `convoy/` with. */
export interface Typechecker {
  version: string;
  tsconfig: string;
  /** The errors in `convoy/` now, as tsc prints them; empty when it type-checks. */
  check(): Promise<string[]>;
}

/** What a type check refused: the version is not swapped in. */
export class TypeErrors extends Error {
  constructor(readonly errors: string[]) {
    super(`${errors.length} type error${errors.length === 1 ? '' : 's'} in convoy/`);
  }
}

/** A tsconfig for `convoy/`: its own (`convoy/tsconfig.json`), or the app's. */
function findTsconfig(appDir: string): string | undefined {
  return [path.join(appDir, 'convoy', 'tsconfig.json'), path.join(appDir, 'tsconfig.json')].find((file) =>
    existsSync(file),
  );
}

/** `typescript` as the app would import it: from its own node_modules, never Convoy's. */
function findTypeScript(appDir: string): { tsc: string; version: string } | undefined {
  try {
    const manifest = createRequire(path.join(appDir, 'package.json')).resolve('typescript/package.json');
    const { version, bin } = JSON.parse(readFileSync(manifest, 'utf8')) as {
      version: string;
      bin?: string | Record<string, string>;
    };
    const tsc = typeof bin === 'string' ? bin : (bin?.tsc ?? 'bin/tsc');
    return { tsc: path.join(path.dirname(manifest), tsc), version };
  } catch {
    return undefined;
  }
}

// `convoy/functions/notes.ts(3,5): error TS2322: …`; the lines after it, indented, belong to it.
const DIAGNOSTIC = /^(.+?)\(\d+,\d+\): error TS\d+:/m;
const GLOBAL_DIAGNOSTIC = /^error TS\d+:/;

/** tsc's output as one entry per error that concerns `convoy/` (or the check as a whole). */
function errorsIn(output: string, appDir: string): string[] {
  const convoy = path.join(appDir, 'convoy');
  // `_generated/api.ts` names the function files of the version being served, and is written
  // anew only once the next is swapped in: its errors (a deleted file, a renamed export) are of
  // that stale state, and counting them would keep every later version out.
  const api = path.join(convoy, '_generated', 'api.ts');
  const counts = (file: string) => !path.relative(convoy, file).startsWith('..') && file !== api;
  const errors: string[] = [];
  let keeping = false;
  for (const line of output.split(/\r?\n/)) {
    const located = DIAGNOSTIC.exec(line);
    if (located || GLOBAL_DIAGNOSTIC.test(line)) {
      keeping = !located || counts(path.resolve(appDir, located[1]!));
      if (keeping) errors.push(line);
    } else if (keeping && /^\s+\S/.test(line)) {
      errors[errors.length - 1] += `\n${line}`;
    } else {
      keeping = false;
    }
  }
  return errors;
}

// `…(3,5): error TS7006: Parameter 'req' implicitly has an 'any' type.`, and the rest of TS7xxx.
const IMPLICIT_ANY = /\berror TS7\d{3}:/;

/**
 * The errors apart from implicit `any`s (TS7xxx: `noImplicitAny` under `strict`), which say the
 * code is untyped, not wrong — PRODUCT.md's `createContext(req, base)` is one.
 */
export function splitImplicitAnys(errors: string[]): { untyped: string[]; blocking: string[] } {
  return {
    untyped: errors.filter((error) => IMPLICIT_ANY.test(error)),
    blocking: errors.filter((error) => !IMPLICIT_ANY.test(error)),
  };
}

/**
 * The app's type checker, or undefined when it has none: `says` gets one line saying why the
 * check is skipped (no TypeScript installed, no tsconfig.json).
 */
export function typecheckerFor(appDir: string, says: (line: string) => void): Typechecker | undefined {
  const typescript = findTypeScript(appDir);
  if (!typescript) {
    says(
      "no typescript in the app's node_modules: not type-checking (npm install -D typescript, or --typecheck disable)",
    );
    return undefined;
  }
  const tsconfig = findTsconfig(appDir);
  if (!tsconfig) {
    says('no tsconfig.json in the app or in convoy/: not type-checking (--typecheck disable says nothing)');
    return undefined;
  }
  const tsc = (flags: string[]) =>
    collectOutput(process.execPath, [typescript.tsc, '--noEmit', '--pretty', 'false', '-p', tsconfig, ...flags], {
      cwd: appDir,
    });
  // Incremental: a save re-checks what changed, not the whole program (about half the time). A
  // tsconfig that refuses it (an option error, TS5xxx) is checked whole from then on.
  let incremental = ['--incremental', '--tsBuildInfoFile', path.join(appDir, '.convoy', 'typecheck.tsbuildinfo')];
  return {
    version: typescript.version,
    tsconfig,
    async check() {
      let { code, output } = await tsc(incremental);
      if (code !== 0 && incremental.length > 0 && /^error TS5\d{3}:/m.test(output) && !DIAGNOSTIC.test(output)) {
        incremental = [];
        ({ code, output } = await tsc(incremental));
      }
      const errors = errorsIn(output, appDir);
      // tsc failed in a way that names no file (a crash, an unreadable tsconfig): say what it said.
      if (code !== 0 && errors.length === 0 && !DIAGNOSTIC.test(output)) errors.push(output.trim());
      return errors;
    },
  };
}
