/**
 * Function files where Convoy does not look. Convex keeps functions directly in `convex/`
 * (`convex/tasks.ts`); Convoy serves only `convoy/functions/`, so a file such as `convoy/tasks.ts`
 * would be ignored without a word. This finds them, to say where to move them.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const SOURCE = /\.(ts|tsx|mts|js|mjs|jsx)$/;
// `export const list = query({`, `mutation(`, and the internal kinds Convex users write.
const DEFINES_FUNCTION = /export\s+(const|let)\s+\w+\s*=\s*(query|mutation|action|internal\w+)\s*\(/;

/** `[file, where it belongs]` for each misplaced function file, both relative to the app. */
export function misplacedFunctionFiles(appDir: string): Array<{ file: string; moveTo: string }> {
  const convoy = path.join(appDir, 'convoy');
  const found: Array<{ file: string; moveTo: string }> = [];
  const visit = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      if (name.startsWith('_') || name.startsWith('.') || name === 'node_modules') continue;
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) {
        if (full !== path.join(convoy, 'functions')) visit(full);
        continue;
      }
      const relative = path.relative(convoy, full);
      if (!SOURCE.test(name) || name.endsWith('.d.ts') || /\.(test|spec)\.[a-z]+$/.test(name)) continue;
      if (/^(schema|server)\.[a-z]+$/.test(relative)) continue;
      if (!DEFINES_FUNCTION.test(readFileSync(full, 'utf8'))) continue;
      const slash = (file: string) => file.split(path.sep).join('/');
      found.push({ file: `convoy/${slash(relative)}`, moveTo: `convoy/functions/${slash(relative)}` });
    }
  };
  if (existsSync(convoy)) visit(convoy);
  return found;
}
