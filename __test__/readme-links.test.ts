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

test("every docs/ file the README links to is in the package's tarball", () => {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const linked = new Set([...readme.matchAll(/\]\((docs\/[^)#\s]+)/g)].map((match) => match[1] as string));
  assert.ok(linked.size > 0, 'the README links into docs/');
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' }),
  ) as Array<{ files: Array<{ path: string }> }>;
  const files = new Set(packed[0]?.files.map((file) => file.path));
  for (const link of linked) assert.ok(files.has(link), `${link} is linked from the README but not packed`);
});
