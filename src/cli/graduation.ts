/**
 * The steps of `convoy graduate <table>` that change the database (GRADUATION.md § convoy
 * graduate): the plan (`--dry-run`), the online run with its progress, `--status`, `--complete`
 * and `--abort`. The work itself is the core's (crates/convoy_core/src/graduate/); this side
 * writes the plan files for review and shows where the run is.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ConformanceReport } from '../graduation/conformance.js';
import { formatReport } from '../graduation/report.js';
import type { Engine } from '../server/native.js';
import { progress } from './progress.js';

/** Where a graduation is (the core's `GraduationStatus`). */
export interface GraduationStatus {
  table: string;
  stage: 'documents' | 'graduating' | 'relational';
  step: 'expand' | 'backfill' | 'validate' | 'columns' | null;
  rowsDone: number;
  rowsTotal: number;
  batchSize: number;
  seconds: number;
}

/** What a graduation runs, step by step (the core's `GraduationPlan`). */
export interface GraduationPlan {
  expand: string[];
  backfill: string;
  validate: string[];
  indexes: string[];
  complete: string[];
  abort: string[];
}

export interface RunOptions {
  maxRowsPerSecond?: number;
  batchMillis?: number;
}

const STEPS: Record<NonNullable<GraduationStatus['step']>, string> = {
  expand: 'expand: adding the columns, the trigger that keeps them equal to data, the constraints (not valid yet)',
  backfill: 'backfill: filling the columns of the rows already there, in batches',
  validate: 'validate: checking the constraints and building the indexes, without blocking writers',
  columns:
    'served from the columns; data is still the truth (--complete makes the columns the truth, --abort undoes it)',
};

export async function status(engine: Engine, table: string): Promise<GraduationStatus> {
  return JSON.parse(await engine.graduationStatus(table)) as GraduationStatus;
}

export function plan(engine: Engine, table: string): GraduationPlan {
  return JSON.parse(engine.graduationPlan(table)) as GraduationPlan;
}

const statement = (sql: string) => (sql.trimEnd().endsWith(';') ? sql : `${sql};`);

/** `up.sql`: every statement of the run, in order, as psql would take them. */
export function upSql(table: string, steps: GraduationPlan): string {
  return [
    `-- convoy graduate ${table}: what the run does, step by step (GRADUATION.md § Running it online).`,
    '-- Each DDL statement runs with a short lock_timeout and is retried with backoff.',
    '',
    '-- 1. expand',
    ...steps.expand.map(statement),
    '',
    '-- 2. backfill, in keyset batches; $1 is the last id done (recorded in convoy.graduations), $2 the batch size',
    statement(steps.backfill),
    '',
    '-- 3. validate and index',
    ...steps.validate.map(statement),
    ...steps.indexes.map(statement),
    '',
    '-- 4. served from the columns; then `convoy graduate --complete`:',
    'BEGIN;',
    ...steps.complete.map(statement),
    'COMMIT;',
    '',
  ].join('\n');
}

/** `down.sql`: what `--abort` runs, which leaves the table exactly as it was. */
export function downSql(table: string, steps: GraduationPlan): string {
  return [
    `-- convoy graduate ${table} --abort: undoes a graduation that is not complete; data is untouched.`,
    'BEGIN;',
    ...steps.abort.map(statement),
    'COMMIT;',
    '',
  ].join('\n');
}

/**
 * Writes the plan for review and commit: `convoy/graduations/<stamp>_<table>/` with `up.sql`,
 * `down.sql`, `plan.json` and the conformance report. Returns the folder.
 */
export async function writePlan(
  appDir: string,
  table: string,
  steps: GraduationPlan,
  report: ConformanceReport | undefined,
  now = new Date(),
): Promise<string> {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '');
  const dir = path.join(appDir, 'convoy', 'graduations', `${stamp}_${table}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'up.sql'), upSql(table, steps));
  await writeFile(path.join(dir, 'down.sql'), downSql(table, steps));
  await writeFile(path.join(dir, 'plan.json'), `${JSON.stringify({ table, ...steps }, null, 2)}\n`);
  if (report) await writeFile(path.join(dir, 'report.txt'), `${formatReport(report).join('\n')}\n`);
  return dir;
}

/** Whether a plan of `table` was written before (`convoy/graduations/<stamp>_<table>/`). */
export async function hasPlan(appDir: string, table: string): Promise<boolean> {
  const names = await readdir(path.join(appDir, 'convoy', 'graduations')).catch(() => [] as string[]);
  return names.some((name) => name.endsWith(`_${table}`));
}

export function describe(current: GraduationStatus): string[] {
  if (current.stage !== 'graduating') return [`${current.table}: ${current.stage}, no graduation under way`];
  const lines = [`${current.table}: graduating, ${current.step ? STEPS[current.step] : 'starting'}`];
  if (current.rowsTotal > 0 || current.rowsDone > 0) {
    const rate = current.seconds > 0 ? current.rowsDone / current.seconds : 0;
    lines.push(
      `  rows backfilled: ${current.rowsDone.toLocaleString('en-US')} of ${current.rowsTotal.toLocaleString('en-US')}` +
        (rate > 0 ? ` (${Math.round(rate).toLocaleString('en-US')}/s over ${Math.round(current.seconds)} s)` : '') +
        (current.batchSize > 0 ? `, batches of ${current.batchSize.toLocaleString('en-US')}` : ''),
    );
  }
  return lines;
}

/**
 * Runs the graduation (or resumes it) up to serving from the columns, showing the backfill's
 * progress read from Convoy's bookkeeping, as `--status` reads it from another terminal.
 */
export async function run(
  engine: Engine,
  table: string,
  options: RunOptions,
  log: (line: string) => void,
): Promise<GraduationStatus> {
  const running = engine.graduate(table, JSON.stringify(options));
  let bar: ReturnType<typeof progress> | undefined;
  let step: GraduationStatus['step'] = null;
  const poll = setInterval(async () => {
    const current = await status(engine, table).catch(() => undefined);
    if (!current) return;
    if (current.step !== step) {
      bar?.stop();
      bar = undefined;
      step = current.step;
      if (step) log(STEPS[step]);
      if (step === 'backfill' && current.rowsTotal > 0) {
        bar = progress(current.rowsTotal, `rows of ${table}`, process.stderr, {
          doing: 'backfilling',
          done: 'backfilled',
        });
      }
    }
    bar?.update(current.rowsDone);
  }, 250);
  try {
    return JSON.parse(await running) as GraduationStatus;
  } finally {
    clearInterval(poll);
    bar?.stop();
  }
}
