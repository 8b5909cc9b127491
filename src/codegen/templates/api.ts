/**
 * `_generated/api.ts`: a typed reference to every function of `convoy/functions/`, by folder, file
 * and export (`api.admin.users.ban`), each typed by `typeof` the exported function.
 */
import type { FunctionFile } from '../../server/app.js';
import { HEADER, importSpecifier } from './common.js';

interface ApiTree {
  [key: string]: ApiTree | string;
}

function render(node: ApiTree, depth: number): string {
  const pad = '  '.repeat(depth + 1);
  const entries = Object.entries(node).map(([key, value]) => {
    const property = /^[A-Za-z_$][\w$]*$/.test(key) ? key : JSON.stringify(key);
    return `${pad}${property}: ${typeof value === 'string' ? value : render(value, depth + 1)},`;
  });
  return entries.length === 0 ? '{}' : `{\n${entries.join('\n')}\n${'  '.repeat(depth)}}`;
}

/** A folder or file whose name is also an export's (or the reverse) is an error: one would hide the other. */
export function apiTs(files: FunctionFile[]): string {
  const imports: string[] = [];
  const tree: ApiTree = {};
  files.forEach((file, index) => {
    if (file.exports.length === 0) return;
    const alias = `module${index}`;
    imports.push(`import type * as ${alias} from '${importSpecifier(file.fileName)}';`);
    let node = tree;
    const segments = file.modulePath.split('/');
    for (const segment of segments) {
      const next = node[segment] ?? {};
      if (typeof next === 'string') throw new Error(`convoy/functions: "${file.modulePath}" clashes with an export`);
      node[segment] = next;
      node = next;
    }
    for (const { name, kind } of file.exports) {
      if (name in node) throw new Error(`convoy/functions: ${file.modulePath}:${name} clashes with a folder`);
      node[name] =
        `{ path: '${file.modulePath}:${name}', kind: '${kind}' } as FunctionReferenceFor<typeof ${alias}.${name === 'default' ? 'default' : name}>`;
    }
  });
  return `${HEADER}
import type { FunctionReferenceFor } from '@avvos/convoy';
${imports.join('\n')}

/** A typed reference to every function: \`client.query(api.projects.listProjects, { userId })\`. */
export const api = ${render(tree, 0)};
`;
}
