/** `create-convoy-app`: chooses, writes, installs, and says what to type next. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as prompts from '@clack/prompts';
import { ask, canAsk, chooseWithoutAsking } from './choices.js';
import { parseCommandLine, usage } from './commandLine.js';
import { installDependencies, writeGeneratedCode } from './install.js';
import { commandsOf, detectPackageManager } from './packageManager.js';
import { packageNameFor } from './packageName.js';
import { writeApp } from './writeApp.js';

// This package and @avvos/convoy are published together at one version.
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

/** Runs the command line `argv` (without node and the script); resolves to the exit code. */
export async function main(argv) {
  const options = parseCommandLine(argv);
  if (options.error) {
    console.error(`create-convoy-app: ${options.error} (see create-convoy-app --help)`);
    return 1;
  }
  if (options.help) {
    console.log(usage);
    return 0;
  }
  if (options.version) {
    console.log(version);
    return 0;
  }

  const packageManager = options.packageManager ?? detectPackageManager();
  const interactive = canAsk(options);
  if (interactive) prompts.intro('create-convoy-app');
  const chosen = interactive ? await ask(options, packageManager) : await chooseWithoutAsking(options);
  if (chosen.cancelled) {
    prompts.cancel('Stopped: nothing was written.');
    return 1;
  }
  if (chosen.error) {
    prompts.log.error(chosen.error);
    return 1;
  }

  const target = path.resolve(chosen.folder);
  const name = packageNameFor(path.basename(target));
  await writeApp({ target, name, convoyVersion: version, packageManager });
  prompts.log.success(`Wrote a Convoy app in ${target}`);

  const commands = commandsOf(packageManager);
  let installed = false;
  if (chosen.install) {
    prompts.log.step(`${commands.install} …`);
    installed = await installDependencies(target, packageManager);
    if (!installed) {
      prompts.log.warn(`${commands.install} failed (its output is above); run it again in ${chosen.folder}.`);
    } else if (!(await writeGeneratedCode(target, packageManager))) {
      prompts.log.warn(
        `${commands.run('codegen')} failed; ${commands.run('dev')} writes convoy/_generated/ as it starts.`,
      );
    }
  }

  // The folder as the user named it: `my-app`, or `/tmp/my-app` rather than `../../tmp/my-app`.
  const folder = chosen.folder;
  const next = [
    ...(target === process.cwd() ? [] : [`cd ${/\s/.test(folder) ? `"${folder}"` : folder}`]),
    ...(installed ? [] : [commands.install]),
    commands.run('dev'),
  ];
  prompts.note(`${next.join('\n')}\n\nThen open http://localhost:5173 in two windows and add an item in one.`, 'Next');
  if (interactive) prompts.outro('Convoy runs on an embedded Postgres in .convoy/ until you set DATABASE_URL.');
  // The app is written either way, but a script that asked for an install must hear it failed.
  return chosen.install && !installed ? 1 : 0;
}
