/**
 * The conformance report as a person reads it: one line per field and reason with the count and
 * the first ids, the fix under it, then the warnings. (`--json` prints the report object itself.)
 */
import pc from 'picocolors';
import type { ConformanceReport, FailureGroup } from './conformance.js';

const count = (n: number) => n.toLocaleString('en-US');
const plural = (n: number, word: string) => `${count(n)} ${word}${n === 1 ? '' : 's'}`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;

function groupLines(group: FailureGroup): string[] {
  const samples = group.sampleIds.join(', ');
  const more = group.count > group.sampleIds.length ? ', …' : '';
  const lines = [
    `  ${pc.bold(group.field)}: ${group.rule} — ${plural(group.count, 'document')}` +
      `${samples ? `: ${samples}${more}` : ''} ${pc.dim(`(${group.foundBy.join(' and ')})`)}`,
    `    ${pc.cyan(`fix (${group.fix.kind}):`)} ${group.fix.text}`,
  ];
  if (group.fix.sql) lines.push(`      ${group.fix.sql}`);
  return lines;
}

/** The report's lines, as `convoy graduate <table> --check` prints them. */
export function formatReport(report: ConformanceReport): string[] {
  const lines: string[] = [];
  const { fast, exact } = report;
  if (report.conforms) {
    lines.push(pc.green(`${report.table}: all ${plural(report.documents, 'document')} fit the schema and their refs`));
  } else {
    lines.push(
      pc.red(
        `${report.table}: ${count(report.failingDocuments)} of ${plural(report.documents, 'document')} do not fit the schema`,
      ),
    );
  }
  lines.push(
    pc.dim(
      `  fast pass (SQL, one snapshot, ${seconds(fast.ms)}): ${count(fast.failingDocuments)} of ${count(fast.documents)} break a rule SQL sees`,
    ),
    pc.dim(
      `  exact pass (SQL and Zod, ${count(exact.batches)} batch${exact.batches === 1 ? '' : 'es'}, ${seconds(exact.ms)}): ` +
        `${count(report.failingDocuments)} of ${count(exact.documents)} fail`,
    ),
  );
  if (report.failures.length > 0) {
    lines.push('');
    for (const group of report.failures) lines.push(...groupLines(group));
  }
  if (report.zodOnly.length > 0) {
    lines.push(
      '',
      `  rules only Zod checks (the exact pass ran them): ${report.zodOnly
        .map(({ field, rules }) => `${field} (${rules.join(', ')})`)
        .join('; ')}`,
    );
  }
  for (const note of report.notes) lines.push(pc.yellow(`  note: ${note}`));
  if (report.warnings.length > 0) {
    lines.push('');
    for (const warning of report.warnings) lines.push(pc.yellow(`  warning: ${warning.message}`));
  }
  return lines;
}
