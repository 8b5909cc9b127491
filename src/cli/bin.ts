#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { cac } from 'cac';
import { build, codegen, migrate } from './commands.js';
import { dev } from './dev.js';
import { graduate } from './graduate.js';
import { warnAboutModuleType } from './moduleType.js';
import { nearestCommand } from './suggest.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
const cli = cac('convoy');

cli
  .command('dev', 'Sync the schema, write convoy/_generated/, serve, and reload on change')
  .option('--port <port>', 'Port to serve on (default: PORT or 3737)')
  .option('--dashboard-port <port>', "Port of the dashboard, /_dashboard/ (default: Convoy's port + 1)")
  .option('--dir <dir>', 'The folder that holds convoy/ (default: .)')
  .option(
    '--typecheck <mode>',
    "enable (default): type-check convoy/ with the app's TypeScript beside each load; a version with type errors is not served (at start: nothing is, until a save type-checks); disable: never check",
  )
  .example('convoy dev --port 4000')
  .example('convoy dev --typecheck disable')
  .action((options: Parameters<typeof dev>[0]) => {
    warnAboutModuleType(options.dir);
    return dev(options);
  });

cli
  .command(
    'migrate',
    'Sync the schema of DATABASE_URL: creates tables and indexes, rebuilds changed ones, never drops a table or data',
  )
  .option('--dry-run', 'Print the SQL without running it')
  .option('--dir <dir>', 'The folder that holds convoy/ (default: .)')
  .action(migrate);

cli
  .command('build', 'Bundle convoy/ into .convoy/dist/ for the production server (node convoy/_generated/http.js)')
  .option('--dir <dir>', 'The folder that holds convoy/ (default: .)')
  .action(build);

cli
  .command('codegen', 'Write convoy/_generated/ only')
  .option('--dir <dir>', 'The folder that holds convoy/ (default: .)')
  .action(codegen);

cli
  .command('graduate <table>', 'Move a table of documents to typed columns, online (GRADUATION.md)')
  .option('--check', 'Conformance report: every document checked against the schema and its refs; exit 1 if any fails')
  .option('--json', 'With --check: print the report as JSON on stdout')
  .option('--batch-size <n>', 'With --check: documents per batch of the exact pass (default 5000)')
  .option('--dry-run', 'Write the plan to convoy/graduations/ (up.sql, down.sql, plan.json) and print it')
  .option('--status', "A graduation's step and progress")
  .option('--abort', 'Undo a graduation that is not complete: the table exactly as before')
  .option('--complete', 'Make a graduation final: the columns become the truth, data goes')
  .option('--max-rows-per-second <n>', 'A ceiling on the backfill rate')
  .option('--dir <dir>', 'The folder that holds convoy/ (default: .)')
  .action(graduate);

cli.help();
cli.version(version);
const commandNames = cli.commands.map((command) => command.name.split(' ')[0]!).filter(Boolean);
function unknownCommand(typed: string): never {
  const nearest = nearestCommand(typed, commandNames);
  console.error(`convoy: unknown command ${typed}${nearest ? ` — did you mean ${nearest}?` : ''} (see convoy --help)`);
  process.exit(1);
}
// Before cac parses: with `--help` after an unknown command it would print the global help and exit 0.
const typed = process.argv[2];
if (typed !== undefined && !typed.startsWith('-') && !commandNames.includes(typed)) unknownCommand(typed);
try {
  cli.parse(process.argv, { run: false });
  // cac has printed the help or the version already: once is enough.
  if (cli.options.help || cli.options.version) process.exit(0);
  if (!cli.matchedCommand) {
    if (cli.args.length > 0) unknownCommand(String(cli.args[0]));
    // `convoy --bogus`: cac takes any option when no command is named.
    if (Object.keys(cli.options).some((name) => name !== '--')) {
      const typedOption = process.argv.slice(2).find((arg) => arg.startsWith('-')) ?? '';
      console.error(`convoy: unknown option ${typedOption.split('=')[0]} (see convoy --help)`);
      process.exit(1);
    }
    cli.outputHelp();
    process.exit(0);
  }
  await cli.runMatchedCommand();
} catch (error) {
  // A missing argument or an unknown option: cac's message, not its stack.
  if ((error as Error)?.name === 'CACError') {
    console.error(`convoy: ${(error as Error).message} (see convoy --help)`);
    process.exit(1);
  }
  throw error;
}
