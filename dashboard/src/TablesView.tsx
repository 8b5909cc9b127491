/**
 * Tables: each table with its stage, row count and indexes; a table's documents one keyset page at
 * a time, live (a write anywhere shows without a reload), filtered by a field, ordered by an index;
 * insert, edit and delete through the app's own write path.
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { api, encodeArgs, shapeOf } from './api.js';
import { DocumentEditor, type EditorTarget } from './DocumentEditor.js';
import { useLiveValue } from './live.js';
import type { Doc, Page, TableInfo } from './types.js';

const OPS = [
  { op: 'eq', label: '=' },
  { op: 'neq', label: '≠' },
  { op: 'lt', label: '<' },
  { op: 'lte', label: '≤' },
  { op: 'gt', label: '>' },
  { op: 'gte', label: '≥' },
] as const;

interface Query {
  index: string | null;
  order: 'asc' | 'desc';
  filter: { field: string; op: string; value: unknown } | null;
  numItems: number;
}

/** What was typed as a filter value: JSON when it reads as JSON (42, true, "x"), else the text. */
function filterValueOf(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function cell(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

export function TablesView() {
  const [tables, setTables] = useState<TableInfo[] | undefined>();
  const [selected, setSelected] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();

  const refresh = useCallback(() => {
    api<TableInfo[]>('tables').then(
      (loaded) => {
        setTables(loaded);
        setSelected((current) => current ?? loaded[0]?.name);
      },
      (failure) => setError(shapeOf(failure).message),
    );
  }, []);
  useEffect(refresh, [refresh]);

  const table = tables?.find((candidate) => candidate.name === selected);
  return (
    <div className="split">
      <aside aria-label="Tables">
        <h2>Tables</h2>
        {error ? <p className="error">{error}</p> : null}
        <ul className="list" data-testid="tables">
          {tables?.map((item) => (
            <li key={item.name}>
              <button
                type="button"
                aria-current={item.name === selected ? 'true' : undefined}
                onClick={() => setSelected(item.name)}
              >
                <span className="name">{item.name}</span>
                <span className={`badge stage-${item.stage}`}>{item.stage}</span>
                <span className="muted count">
                  {item.rows === null
                    ? 'not in the database'
                    : `${item.rows.toLocaleString('en-US')}${item.rowsAtLeast ? '+' : ''} ${item.rows === 1 && !item.rowsAtLeast ? 'row' : 'rows'}`}
                </span>
              </button>
            </li>
          ))}
        </ul>
      </aside>
      {table ? <TableDocuments key={table.name} table={table} onChanged={refresh} /> : null}
    </div>
  );
}

function TableDocuments({ table, onChanged }: { table: TableInfo; onChanged: () => void }) {
  const fields = useMemo(() => Object.keys(table.fields.properties ?? {}), [table.fields]);
  const [query, setQuery] = useState<Query>({ index: null, order: 'desc', filter: null, numItems: 25 });
  const [cursors, setCursors] = useState<string[]>([]);
  const [editing, setEditing] = useState<EditorTarget | undefined>();
  const [notice, setNotice] = useState<string | undefined>();
  const [filterField, setFilterField] = useState(fields[0] ?? '_id');
  const [filterOp, setFilterOp] = useState('eq');
  const [filterText, setFilterText] = useState('');

  const cursor = cursors.at(-1) ?? null;
  const path = useMemo(
    () => `tables/${encodeURIComponent(table.name)}/documents/live?args=${encodeArgs({ ...query, cursor })}`,
    [table.name, query, cursor],
  );
  const live = useLiveValue<Page>(path);
  const columns = useMemo(() => ['_id', ...fields, '_creationTime'], [fields]);

  // Row counts follow the documents: each new value of the page asks for the list again.
  useEffect(() => {
    if (live.value) onChanged();
  }, [live.value, onChanged]);

  const change = (next: Partial<Query>) => {
    setCursors([]);
    setQuery((last) => ({ ...last, ...next }));
  };

  const remove = async (document: Doc) => {
    if (!window.confirm(`Delete ${document._id} from ${table.name}?`)) return;
    try {
      await api(`tables/${encodeURIComponent(table.name)}/documents/${encodeURIComponent(String(document._id))}`, {
        method: 'DELETE',
      });
      setNotice(`Deleted ${document._id}`);
    } catch (error) {
      const shape = shapeOf(error);
      setNotice(`Not deleted: ${shape.code} ${shape.message}`);
    }
  };

  return (
    <section className="content" aria-labelledby="table-title">
      <div className="heading">
        <h2 id="table-title">{table.name}</h2>
        <span className={`badge stage-${table.stage}`}>{table.stage}</span>
        {table.stage !== table.declared ? (
          <span className="muted">declared {table.declared}: see Graduation</span>
        ) : null}
        <span className={`live-dot ${live.state}`} title={`stream ${live.state}`}>
          {live.state === 'live' ? 'live' : live.state}
        </span>
      </div>
      <p className="muted">
        Indexes:{' '}
        {table.indexes.length === 0
          ? 'none'
          : table.indexes.map((index) => `${index.name} (${index.fields.join(', ')})`).join(', ')}
      </p>

      <form
        className="toolbar"
        aria-label="Filter and order"
        onSubmit={(event) => {
          event.preventDefault();
          change({
            filter: filterText === '' ? null : { field: filterField, op: filterOp, value: filterValueOf(filterText) },
          });
        }}
      >
        <label>
          Field
          <select value={filterField} onChange={(event) => setFilterField(event.target.value)}>
            {columns.map((name) => (
              <option key={name}>{name}</option>
            ))}
          </select>
        </label>
        <label>
          Comparison
          <select value={filterOp} onChange={(event) => setFilterOp(event.target.value)}>
            {OPS.map(({ op, label }) => (
              <option key={op} value={op}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Value
          <input
            value={filterText}
            placeholder='"text", 42, true'
            onChange={(event) => setFilterText(event.target.value)}
          />
        </label>
        <button type="submit">Filter</button>
        {query.filter ? (
          <button
            type="button"
            className="secondary"
            onClick={() => {
              setFilterText('');
              change({ filter: null });
            }}
          >
            Clear
          </button>
        ) : null}
        <label>
          Order by
          <select
            value={query.index ?? ''}
            onChange={(event) => change({ index: event.target.value === '' ? null : event.target.value })}
          >
            <option value="">_creationTime</option>
            {table.indexes.map((index) => (
              <option key={index.name} value={index.name}>
                {index.name} ({index.fields.join(', ')})
              </option>
            ))}
          </select>
        </label>
        <label>
          Direction
          <select value={query.order} onChange={(event) => change({ order: event.target.value as 'asc' | 'desc' })}>
            <option value="desc">newest first (desc)</option>
            <option value="asc">oldest first (asc)</option>
          </select>
        </label>
        <button type="button" onClick={() => setEditing({ mode: 'insert' })}>
          Insert document
        </button>
      </form>

      {notice ? (
        <p role="status" className="notice">
          {notice}
        </p>
      ) : null}
      {editing ? (
        <DocumentEditor
          key={editing.mode === 'edit' ? String(editing.document._id) : 'insert'}
          table={table.name}
          schema={table.fields}
          target={editing}
          onDone={(message) => {
            setEditing(undefined);
            if (message) setNotice(message);
          }}
        />
      ) : null}
      {live.error ? (
        <p role="alert" className="error">
          <code>{live.error.code}</code> {live.error.message}
        </p>
      ) : null}

      <div className="scroll">
        <table className="documents stack-on-phone" data-testid="documents">
          <thead>
            <tr>
              {columns.map((name) => (
                <th key={name} scope="col">
                  {name}
                </th>
              ))}
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {live.value?.page.map((document) => (
              <tr key={String(document._id)}>
                {columns.map((name) => (
                  <td key={name} data-label={name} className={name.startsWith('_') ? 'mono muted' : undefined}>
                    {name === '_creationTime' && typeof document[name] === 'number'
                      ? new Date(document[name] as number).toISOString().replace('T', ' ').slice(0, 19)
                      : cell(document[name])}
                  </td>
                ))}
                <td className="row-actions">
                  <button
                    type="button"
                    className="secondary"
                    aria-label={`Edit ${document._id}`}
                    onClick={() => setEditing({ mode: 'edit', document })}
                  >
                    Edit
                  </button>
                  <button
                    type="button"
                    className="danger"
                    aria-label={`Delete ${document._id}`}
                    onClick={() => void remove(document)}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {live.value === undefined && !live.error ? <p className="muted">Loading…</p> : null}
        {live.value && live.value.page.length === 0 ? (
          <p className="muted">{query.filter ? 'No documents match.' : 'No documents.'}</p>
        ) : null}
      </div>
      <nav className="pager" aria-label="Pages">
        <button type="button" disabled={cursors.length === 0} onClick={() => setCursors((all) => all.slice(0, -1))}>
          Previous page
        </button>
        <span className="muted">page {cursors.length + 1}</span>
        <button
          type="button"
          disabled={!live.value || live.value.isDone}
          onClick={() => live.value && setCursors((all) => [...all, live.value!.continueCursor])}
        >
          Next page
        </button>
        <label>
          Per page
          <select value={query.numItems} onChange={(event) => change({ numItems: Number(event.target.value) })}>
            {[10, 25, 50, 100].map((count) => (
              <option key={count}>{count}</option>
            ))}
          </select>
        </label>
      </nav>
    </section>
  );
}
