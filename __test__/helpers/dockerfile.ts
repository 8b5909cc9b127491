/**
 * Enough of the Dockerfile format to do what a Dockerfile says without Docker: its stages and
 * instructions, the exec form of CMD and HEALTHCHECK, COPY's flags, and the build context that a
 * .dockerignore leaves. Tests follow the file itself, so they break when it changes.
 */
import { cp, readFile } from 'node:fs/promises';
import path from 'node:path';

export interface Instruction {
  /** Upper case: `RUN`, `COPY`, … */
  keyword: string;
  /** The rest of the instruction, continuation lines joined. */
  args: string;
}

export interface Stage {
  /** The image it starts from, as written (`node:${NODE_VERSION}-slim`). */
  from: string;
  /** `AS <name>`, if any. */
  name: string | undefined;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM. */
  globalArgs: Instruction[];
  stages: Stage[];
}

export async function readDockerfile(file: string): Promise<Dockerfile> {
  return parseDockerfile(await readFile(file, 'utf8'));
}

export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  let pending = '';
  for (const line of text.split('\n')) {
    // A comment is a line that starts with `#`; inside a continued instruction it is skipped.
    if (/^\s*#/.test(line)) continue;
    if (line.trim() === '' && pending === '') continue;
    const continued = /\\\s*$/.test(line);
    pending += `${continued ? line.replace(/\\\s*$/, '') : line} `;
    if (continued) continue;
    const match = /^\s*(\S+)\s*(.*)$/s.exec(pending.trim());
    pending = '';
    if (match) instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim() });
  }
  const dockerfile: Dockerfile = { globalArgs: [], stages: [] };
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [from, as, name] = instruction.args.split(/\s+/).filter((word) => !word.startsWith('--'));
      dockerfile.stages.push({
        from: from!,
        name: as?.toUpperCase() === 'AS' ? name : undefined,
        instructions: [],
      });
    } else if (dockerfile.stages.length === 0) {
      if (instruction.keyword === 'ARG') dockerfile.globalArgs.push(instruction);
    } else {
      dockerfile.stages.at(-1)!.instructions.push(instruction);
    }
  }
  return dockerfile;
}

export function stageNamed(dockerfile: Dockerfile, name: string): Stage {
  const stage = dockerfile.stages.find((candidate) => candidate.name === name);
  if (!stage) throw new Error(`the Dockerfile has no stage named ${name}`);
  return stage;
}

/** The stage `docker build` builds by default: the last. */
export function finalStage(dockerfile: Dockerfile): Stage {
  const stage = dockerfile.stages.at(-1);
  if (!stage) throw new Error('the Dockerfile has no FROM');
  return stage;
}

export function instructionsOf(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((instruction) => instruction.keyword === keyword);
}

/** A command as Docker runs it: the exec form (a JSON array) as is, the shell form under `sh -c`. */
export function commandOf(args: string): string[] {
  if (args.startsWith('[')) return JSON.parse(args);
  return ['/bin/sh', '-c', args];
}

/** `HEALTHCHECK [--interval=… …] CMD …`: the options and the command. */
export function healthcheckOf(args: string): { options: Record<string, string>; command: string[] } {
  const match = /^((?:--\S+\s+)*)CMD\s+(.*)$/is.exec(args);
  if (!match) throw new Error(`not a HEALTHCHECK CMD: ${args}`);
  const options = Object.fromEntries(
    match[1]!
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map((flag) => flag.replace(/^--/, '').split('=') as [string, string]),
  );
  return { options, command: commandOf(match[2]!.trim()) };
}

/** `COPY [--from=stage] [--chown=…] <source>… <destination>`. */
export function copyOf(args: string): { from: string | undefined; sources: string[]; destination: string } {
  const words = args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  const flags = words.filter((word) => word.startsWith('--'));
  const paths = words.filter((word) => !word.startsWith('--'));
  const from = flags.find((flag) => flag.startsWith('--from='))?.slice('--from='.length);
  return { from, sources: paths.slice(0, -1), destination: paths.at(-1)! };
}

/** The `WORKDIR` a stage ends with (Docker's default is `/`). */
export function workdirOf(stage: Stage): string {
  let workdir = '/';
  for (const instruction of instructionsOf(stage, 'WORKDIR')) workdir = path.posix.resolve(workdir, instruction.args);
  return workdir;
}

/** `ENV` and `ARG` defaults of a stage, as `KEY=value` pairs (the forms without `=` included). */
export function variablesOf(instructions: Instruction[]): Record<string, string> {
  const variables: Record<string, string> = {};
  for (const { keyword, args } of instructions) {
    if (keyword !== 'ENV' && keyword !== 'ARG') continue;
    if (keyword === 'ENV' && !args.includes('=')) {
      const [key, ...value] = args.split(/\s+/);
      variables[key!] = value.join(' ');
      continue;
    }
    for (const pair of args.split(/\s+/)) {
      const [key, ...value] = pair.split('=');
      // An ARG without a default stays unset unless a --build-arg gives it a value.
      if (value.length > 0) variables[key!] = value.join('=').replace(/^"(.*)"$/, '$1');
    }
  }
  return variables;
}

/**
 * Copies `source` to `destination` as the build context Docker would send: without what the
 * `.dockerignore` beside it excludes (its patterns as paths from the context's root, `*` within
 * one name; a pattern also excludes what is under it). Symlinks are copied as links.
 */
export async function copyBuildContext(source: string, destination: string): Promise<void> {
  const ignoreFile = await readFile(path.join(source, '.dockerignore'), 'utf8').catch(() => '');
  const patterns = ignoreFile
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((pattern) => {
      const body = pattern
        .replace(/^\/+|\/+$/g, '')
        .split('/')
        .map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*'))
        .join('/');
      return new RegExp(`^${body}(/.*)?$`);
    });
  await cp(source, destination, {
    recursive: true,
    verbatimSymlinks: true,
    filter: (file) => {
      const relative = path.relative(source, file).split(path.sep).join('/');
      return relative === '' || !patterns.some((pattern) => pattern.test(relative));
    },
  });
}
