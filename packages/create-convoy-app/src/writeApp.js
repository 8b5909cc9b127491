/** Writes the template into the target folder, with the app's name and its package manager's commands. */
import { cp, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { appPackageJson } from './appPackageJson.js';
import { commandsOf } from './packageManager.js';

export const templateDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'template');

// npm leaves a package's .gitignore files out of its tarball, so the template's is `_gitignore`.
const renamed = { _gitignore: '.gitignore' };

// The template's files that name the app or the commands to type: `{{name}}`, `{{install}}`, `{{dev}}`.
const filled = ['README.md', 'fly.toml', 'index.html'];

export async function writeApp({ target, name, convoyVersion, packageManager }) {
  await mkdir(target, { recursive: true });
  await cp(templateDir, target, { recursive: true, force: true });
  for (const [from, to] of Object.entries(renamed)) {
    await rename(path.join(target, from), path.join(target, to));
  }
  const commands = commandsOf(packageManager);
  const values = { name, install: commands.install, dev: commands.run('dev') };
  for (const file of filled) {
    const filePath = path.join(target, file);
    const text = await readFile(filePath, 'utf8');
    await writeFile(
      filePath,
      text.replace(/\{\{(\w+)\}\}/g, (whole, key) => values[key] ?? whole),
    );
  }
  await writeFile(
    path.join(target, 'package.json'),
    `${JSON.stringify(appPackageJson({ name, convoyVersion }), null, 2)}\n`,
  );
}

/** True when `folder` does not exist or holds nothing but what a new repository or editor leaves. */
export async function isEmptyFolder(folder) {
  let entries;
  try {
    entries = await readdir(folder);
  } catch (error) {
    if (error.code === 'ENOENT') return true;
    throw error;
  }
  return entries.every((entry) => entry === '.git' || entry === '.DS_Store');
}
