/**
 * The app's package.json must say `"type": "module"`: `convoy/` and `convoy/_generated/` are ES
 * modules, and in a package that is CommonJS (`npm init -y` writes `"type": "commonjs"`, and no
 * `type` means the same) TypeScript under `module: nodenext` with `verbatimModuleSyntax` (both set
 * by `tsc --init`) refuses every `import` and `export` in them. Convoy's own bundling does not
 * mind, so this is a warning, said once by `convoy dev` and `convoy codegen` (docs/typescript.md).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pc from 'picocolors';

/** The package.json that decides what `convoy/*.ts` are to TypeScript and Node: the nearest one. */
function nearestPackageJson(appDir: string): string | undefined {
  let dir = path.join(appDir, 'convoy');
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The one line to print when the app's package.json makes `convoy/` CommonJS, or null. */
export function moduleTypeWarning(appDir: string): string | null {
  const file = nearestPackageJson(appDir);
  if (!file) return null;
  let type: unknown;
  try {
    type = (JSON.parse(readFileSync(file, 'utf8')) as { type?: unknown }).type;
  } catch {
    return null;
  }
  if (type === 'module') return null;
  const where = path.relative(process.cwd(), file) || 'package.json';
  const says = type === undefined ? 'has no "type"' : `says "type": ${JSON.stringify(type)}`;
  return (
    `${where} ${says}: convoy/ is ES modules, which TypeScript refuses in a CommonJS package under ` +
    `verbatimModuleSyntax (tsc --init sets it); add "type": "module" to ${where} (docs/typescript.md)`
  );
}

export function warnAboutModuleType(dir: string | undefined): void {
  const warning = moduleTypeWarning(path.resolve(dir ?? '.'));
  if (warning) console.warn(`${pc.yellow('convoy:')} ${warning}`);
}
