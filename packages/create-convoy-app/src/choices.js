/**
 * Where the app goes and whether to install: asked on a terminal (@clack/prompts), taken from the
 * command line and the defaults otherwise, so that scripts and CI never wait on a question.
 */
import * as prompts from '@clack/prompts';
import { isEmptyFolder } from './writeApp.js';

export const defaultFolder = 'my-convoy-app';

/** Whether a person can answer: a terminal both ways, not CI, and not told `--yes`. */
export function canAsk(options, { stdin = process.stdin, stdout = process.stdout, env = process.env } = {}) {
  const ci = env.CI !== undefined && env.CI !== '' && env.CI !== '0' && env.CI !== 'false';
  return !options.yes && !ci && Boolean(stdin.isTTY) && Boolean(stdout.isTTY);
}

/** `{ folder, install }`, or `{ error }` when the app cannot be written without a question answered. */
export async function chooseWithoutAsking(options) {
  const folder = options.folder ?? defaultFolder;
  if (!options.force && !(await isEmptyFolder(folder))) {
    return { error: `${folder} is not empty: name another folder, or pass --force to write the app into it` };
  }
  return { folder, install: options.install ?? true };
}

/** `{ folder, install }`, or `{ cancelled: true }` when the user stops (Ctrl-C, or no to a non-empty folder). */
export async function ask(options, packageManager) {
  let folder = options.folder;
  if (folder === undefined) {
    const answer = await prompts.text({
      message: 'Where should the app go?',
      placeholder: defaultFolder,
      defaultValue: defaultFolder,
      validate: (value) => (value?.includes('\0') ? 'That is not a folder name' : undefined),
    });
    if (prompts.isCancel(answer)) return { cancelled: true };
    folder = answer.trim() || defaultFolder;
  }
  if (!options.force && !(await isEmptyFolder(folder))) {
    const writeAnyway = await prompts.confirm({
      message: `${folder} is not empty. Write the app into it anyway? Files of the same name are replaced.`,
      initialValue: false,
    });
    if (prompts.isCancel(writeAnyway) || !writeAnyway) return { cancelled: true };
  }
  let install = options.install;
  if (install === undefined) {
    const answer = await prompts.confirm({
      message: `Install the dependencies with ${packageManager}?`,
      initialValue: true,
    });
    if (prompts.isCancel(answer)) return { cancelled: true };
    install = answer;
  }
  return { folder, install };
}
