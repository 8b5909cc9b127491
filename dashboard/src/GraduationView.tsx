/**
 * Graduation (GRADUATION.md): each table's stage, its conformance report on demand (what
 * `convoy graduate <table> --check` prints), the progress of a graduation under way (read from
 * the database every two seconds: the run is the CLI's), and the commands to run next.
 */
import { useCallback, useEffect, useState } from 'react';
import { api, type ErrorShape, shapeOf } from './api.js';
import type { ConformanceReport, GraduationProgress, TableInfo } from './types.js';

function commandsFor(table: TableInfo, underWay: boolean): Array<{ command: string; does: string }> {
  const run = (flags: string) => `npx convoy graduate ${table.name}${flags}`;
  if (table.stage === 'unmanaged') return [];
  if (table.stage === 'relational') return [];
  if (underWay || table.stage === 'graduating') {
    return [
      { command: run(''), does: 'resume the run where it stopped' },
      { command: run(' --status'), does: 'stage, step, rows done of total, rate' },
      { command: run(' --complete'), does: 'make the columns the truth (final)' },
      { command: run(' --abort'), does: 'undo it: the table exactly as before' },
    ];
  }
  return [
    { command: run(' --check'), does: 'the conformance report (exit 1 if a row fails)' },
    { command: run(' --dry-run'), does: 'write and print the plan: up.sql, down.sql' },
    { command: run(''), does: 'run it online, resumably' },
  ];
}

export function GraduationView() {
  const [tables, setTables] = useState<TableInfo[] | undefined>();
  const [progress, setProgress] = useState<GraduationProgress[]>([]);
  const [error, setError] = useState<string | undefined>();

  const poll = useCallback(() => {
    Promise.all([api<TableInfo[]>('tables'), api<GraduationProgress[]>('graduation')]).then(
      ([loadedTables, loadedProgress]) => {
        setTables(loadedTables);
        setProgress(loadedProgress);
      },
      (failure) => setError(shapeOf(failure).message),
    );
  }, []);
  useEffect(() => {
    poll();
    const timer = setInterval(poll, 2_000);
    return () => clearInterval(timer);
  }, [poll]);

  return (
    <section className="content wide" aria-labelledby="graduation-title">
      <div className="heading">
        <h2 id="graduation-title">Graduation</h2>
      </div>
      <p className="muted">
        From JSONB documents to relational columns, online. The dashboard reads; the commands run the steps.
      </p>
      {error ? <p className="error">{error}</p> : null}
      <div className="cards">
        {tables?.map((table) => (
          <TableGraduation key={table.name} table={table} progress={progress.find((p) => p.table === table.name)} />
        ))}
      </div>
    </section>
  );
}

function TableGraduation({ table, progress }: { table: TableInfo; progress: GraduationProgress | undefined }) {
  const [report, setReport] = useState<ConformanceReport | undefined>();
  const [failure, setFailure] = useState<ErrorShape | undefined>();
  const [checking, setChecking] = useState(false);
  const check = async () => {
    setChecking(true);
    setFailure(undefined);
    try {
      setReport(
        await api<ConformanceReport>(`graduation/${encodeURIComponent(table.name)}/report`, { method: 'POST' }),
      );
    } catch (error) {
      setFailure(shapeOf(error));
    } finally {
      setChecking(false);
    }
  };
  const commands = commandsFor(table, progress !== undefined);
  const percent = progress && progress.rowsTotal > 0 ? Math.round((progress.rowsDone / progress.rowsTotal) * 100) : 0;
  return (
    <article className="card" aria-labelledby={`graduation-${table.name}`}>
      <h3 id={`graduation-${table.name}`}>
        {table.name} <span className={`badge stage-${table.stage}`}>{table.stage}</span>
      </h3>
      {table.stage !== table.declared ? (
        <p className="muted">
          Declared {table.declared} in the schema; the database holds it as {table.stage}.
        </p>
      ) : null}
      {progress ? (
        <div className="progress-block">
          <label htmlFor={`progress-${table.name}`}>
            {progress.step}: {progress.rowsDone.toLocaleString('en-US')} of {progress.rowsTotal.toLocaleString('en-US')}{' '}
            rows · {Math.round(progress.rate).toLocaleString('en-US')} rows/s
          </label>
          <progress id={`progress-${table.name}`} max={100} value={percent}>
            {percent}%
          </progress>
        </div>
      ) : null}
      {table.stage === 'documents' ? (
        <button type="button" onClick={() => void check()} disabled={checking}>
          {checking ? 'Checking…' : 'Check conformance'}
        </button>
      ) : null}
      {failure ? (
        <p role="alert" className="error">
          <code>{failure.code}</code> {failure.message}
        </p>
      ) : null}
      {report ? <Report report={report} /> : null}
      {commands.length > 0 ? (
        <>
          <h4>Commands</h4>
          <ul className="commands">
            {commands.map(({ command, does }) => (
              <li key={command}>
                <code>{command}</code> <span className="muted">{does}</span>
              </li>
            ))}
          </ul>
        </>
      ) : table.stage === 'relational' ? (
        <p className="muted">Relational: Postgres enforces its shape. Nothing left to graduate.</p>
      ) : (
        <p className="muted">Unmanaged: its shape is yours (Drizzle, Prisma, SQL).</p>
      )}
    </article>
  );
}

function Report({ report }: { report: ConformanceReport }) {
  return (
    <div className="report" role="status" data-testid={`report-${report.table}`}>
      <p className={report.conforms ? 'ok' : 'error'}>
        {report.conforms
          ? `All ${report.documents.toLocaleString('en-US')} documents fit the schema and their refs.`
          : `${report.failingDocuments.toLocaleString('en-US')} of ${report.documents.toLocaleString('en-US')} documents do not fit the schema.`}
      </p>
      {report.failures.length > 0 ? (
        <ul>
          {report.failures.map((group) => (
            <li key={`${group.field}-${group.reason}`}>
              <strong>{group.field}</strong>: {group.rule} — {group.count} documents
              {group.sampleIds.length > 0 ? <span className="muted mono"> ({group.sampleIds.join(', ')})</span> : null}
              <div>
                fix ({group.fix.kind}): {group.fix.text}
              </div>
              {group.fix.sql ? <pre className="code">{group.fix.sql}</pre> : null}
            </li>
          ))}
        </ul>
      ) : null}
      {report.warnings.map((warning) => (
        <p key={warning.message} className="muted">
          warning: {warning.message}
        </p>
      ))}
      <p className="muted">
        fast pass {report.fast.ms} ms · exact pass {report.exact.ms} ms in {report.exact.batches} batches
      </p>
    </div>
  );
}
