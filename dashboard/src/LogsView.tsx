/**
 * Logs: the app's calls as they happen (the dashboard's server keeps the newest 1,000), newest
 * first, filtered by function, kind and status; a failed call shows its error, and in dev its stack.
 */
import { useEffect, useId, useMemo, useState } from 'react';
import { api } from './api.js';
import { type LiveState, subscribeEvents } from './live.js';
import type { LogEntry } from './types.js';

const KEEP = 1_000;

function upsert(entries: LogEntry[], entry: LogEntry): LogEntry[] {
  const at = entries.findIndex((existing) => existing.id === entry.id);
  if (at >= 0) return entries.map((existing, position) => (position === at ? entry : existing));
  const next = [...entries, entry];
  return next.length > KEEP ? next.slice(next.length - KEEP) : next;
}

/** The local time of day, to the millisecond. */
const timeOf = (ms: number) =>
  `${new Date(ms).toLocaleTimeString('en-GB', { hour12: false })}.${String(ms % 1000).padStart(3, '0')}`;

export function LogsView() {
  const [entries, setEntries] = useState<LogEntry[]>([]);
  const [state, setState] = useState<LiveState>('connecting');
  const [text, setText] = useState('');
  const [kind, setKind] = useState('');
  const [status, setStatus] = useState('');
  const [paused, setPaused] = useState(false);
  const ids = { text: useId(), kind: useId(), status: useId() };

  useEffect(() => {
    if (paused) return;
    let alive = true;
    const stop = subscribeEvents(
      'logs/live',
      (_name, data) => setEntries((all) => upsert(all, data as LogEntry)),
      (next) => {
        setState(next);
        // The stream carries what happens from now on; what happened before comes from the list.
        if (next === 'live') {
          api<LogEntry[]>('logs').then(
            (recent) => alive && setEntries((all) => recent.reduce(upsert, all)),
            () => {},
          );
        }
      },
    );
    return () => {
      alive = false;
      stop();
    };
  }, [paused]);

  const shown = useMemo(() => {
    const needle = text.trim().toLowerCase();
    return entries
      .filter(
        (entry) =>
          (!needle || entry.path.toLowerCase().includes(needle) || entry.code?.toLowerCase().includes(needle)) &&
          (!kind || entry.kind === kind) &&
          (!status || entry.status === status),
      )
      .reverse();
  }, [entries, text, kind, status]);

  return (
    <section className="content wide" aria-labelledby="logs-title">
      <div className="heading">
        <h2 id="logs-title">Logs</h2>
        <span className={`live-dot ${paused ? 'paused' : state}`}>{paused ? 'paused' : state}</span>
      </div>
      <form className="toolbar" aria-label="Filter the log" onSubmit={(event) => event.preventDefault()}>
        <label htmlFor={ids.text}>
          Function or code
          <input id={ids.text} type="search" value={text} onChange={(event) => setText(event.target.value)} />
        </label>
        <label htmlFor={ids.kind}>
          Kind
          <select id={ids.kind} value={kind} onChange={(event) => setKind(event.target.value)}>
            <option value="">all</option>
            <option value="query">query</option>
            <option value="mutation">mutation</option>
          </select>
        </label>
        <label htmlFor={ids.status}>
          Status
          <select id={ids.status} value={status} onChange={(event) => setStatus(event.target.value)}>
            <option value="">all</option>
            <option value="ok">ok</option>
            <option value="error">error</option>
            <option value="running">running</option>
          </select>
        </label>
        <button type="button" className="secondary" aria-pressed={paused} onClick={() => setPaused((last) => !last)}>
          {paused ? 'Resume' : 'Pause'}
        </button>
        <button type="button" className="secondary" onClick={() => setEntries([])}>
          Clear
        </button>
      </form>
      <div className="scroll">
        <table className="log stack-on-phone" data-testid="log">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Function</th>
              <th scope="col">Kind</th>
              <th scope="col">Status</th>
              <th scope="col">Duration</th>
              <th scope="col">Retries</th>
              <th scope="col">Args and error</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((entry) => (
              <tr key={entry.id} className={entry.status === 'error' ? 'failed' : undefined}>
                <td data-label="Time" className="mono">
                  {timeOf(entry.time)}
                </td>
                <td data-label="Function" className="mono">
                  {entry.path}
                </td>
                <td data-label="Kind">{entry.kind}</td>
                <td data-label="Status">
                  <span className={`badge status-${entry.status}`}>
                    {entry.status === 'error' ? entry.code : entry.status}
                  </span>
                </td>
                <td data-label="Duration" className="mono">
                  {entry.ms === undefined ? '' : `${entry.ms} ms`}
                </td>
                <td data-label="Retries">{entry.retries || ''}</td>
                <td data-label="Args">
                  <details>
                    <summary>{entry.message ?? entry.args}</summary>
                    <pre className="code">{entry.args}</pre>
                    {entry.stack ? <pre className="code">{entry.stack}</pre> : null}
                  </details>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {shown.length === 0 ? <p className="muted">No calls yet{entries.length > 0 ? ' match' : ''}.</p> : null}
      </div>
    </section>
  );
}
