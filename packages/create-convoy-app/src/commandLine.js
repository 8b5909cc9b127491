/** What `create-convoy-app [folder] [options]` was asked to do. */
import { parseArgs } from 'node:util';
import { packageManagers } from './packageManager.js';

export const usage = `Usage: create-convoy-app [folder] [options]

Writes a Convoy app into folder (asked for on a terminal; my-convoy-app otherwise):
a schema, functions, and a live React page that run together with \`npm run dev\`.

Options:
  -y, --yes                   Take every default, ask nothing (also without a terminal, or with CI=true)
  --no-install                Write the files only; install the dependencies yourself
  -f, --force                 Write into a folder that is not empty (files of the same name are replaced)
  --package-manager <name>    npm, pnpm, yarn or bun (default: the one that ran this command)
  -h, --help                  Print this help
  -v, --version               Print the version
`;

/**
 * The parsed command line, or an `error` sentence for the user. Node 20's parseArgs has no
 * negated options, so `--no-install` is an option of its own.
 */
export function parseCommandLine(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        yes: { type: 'boolean', short: 'y' },
        'no-install': { type: 'boolean' },
        install: { type: 'boolean' },
        force: { type: 'boolean', short: 'f' },
        'package-manager': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (error) {
    // parseArgs goes on about positionals that start with '-': not what a typo needs.
    return { error: error.message.replace(/\. To specify a positional argument.*$/s, '') };
  }
  const { values, positionals } = parsed;
  if (positionals.length > 1)
    return { error: `one folder at most, not ${positionals.length}: ${positionals.join(' ')}` };
  const packageManager = values['package-manager'];
  if (packageManager !== undefined && !packageManagers.includes(packageManager)) {
    return { error: `--package-manager takes npm, pnpm, yarn or bun, not ${packageManager}` };
  }
  return {
    folder: positionals[0],
    yes: values.yes === true,
    // Unsaid, it is asked on a terminal and taken as yes otherwise.
    install: values['no-install'] ? false : values.install ? true : undefined,
    force: values.force === true,
    packageManager,
    help: values.help === true,
    version: values.version === true,
  };
}
