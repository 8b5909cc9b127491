/**
 * Issue 16: the README's links into docs/ work from npm — every file they name is in the packed
 * package, beside the README that links to it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

const packedFiles = (): Set<string> => {
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' }),
  ) as Array<{ files: Array<{ path: string }> }>;
  return new Set(packed[0]?.files.map((file) => file.path));
};

/** The relative links of a packed markdown file, as paths from the package's root. */
function relativeLinks(file: string): string[] {
  const text = readFileSync(path.join(root, file), 'utf8');
  return [...text.matchAll(/\]\(([^)#\s]+)(?:#[^)\s]*)?\)/g)]
    .map((match) => match[1] as string)
    .filter((link) => !/^[a-z]+:/i.test(link))
    .map((link) => path.posix.normalize(path.posix.join(path.posix.dirname(file), link)).replace(/\/$/, ''));
}

test("every docs/ file the README links to is in the package's tarball", () => {
  const linked = relativeLinks('README.md').filter((link) => link.startsWith('docs/'));
  assert.ok(linked.length > 0, 'the README links into docs/');
  const files = packedFiles();
  for (const link of linked) assert.ok(files.has(link), `${link} is linked from the README but not packed`);
});

test('every relative link of a packed doc names a packed file (the README links a clone to examples/ too)', () => {
  const files = packedFiles();
  const folders = new Set(
    [...files].flatMap((file) =>
      file
        .split('/')
        .slice(0, -1)
        .map((_, i, parts) => parts.slice(0, i + 1).join('/')),
    ),
  );
  for (const file of [...files].filter((name) => name.startsWith('docs/') && name.endsWith('.md'))) {
    for (const link of relativeLinks(file)) {
      assert.ok(files.has(link) || folders.has(link), `${file} links to ${link}, which is not in the package`);
    }
  }
});
