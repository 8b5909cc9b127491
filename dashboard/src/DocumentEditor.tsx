/**
 * A document in a JSON editor: the fields as JSON text, saved through the dashboard's API (the
 * table's Zod schema decides, on the server). What the schema refuses is shown in place: each
 * issue under the editor with its field and the line the field is on, and the editor marked
 * invalid; nothing is written.
 */
import { useEffect, useId, useRef, useState } from 'react';
import { ApiError, api, type ErrorShape, shapeOf } from './api.js';
import { templateOf } from './template.js';
import type { Doc, JsonSchema } from './types.js';

interface Issue {
  path: Array<string | number>;
  message: string;
}

export type EditorTarget = { mode: 'insert' } | { mode: 'edit'; document: Doc };

function fieldsOf(document: Doc): Record<string, unknown> {
  const { _id, _creationTime, ...fields } = document;
  return fields;
}

/** The line of the editor's text where `path`'s first field is written, if it is. */
function lineOf(text: string, path: Array<string | number>): number | undefined {
  const [field] = path;
  if (typeof field !== 'string') return undefined;
  const at = text.search(new RegExp(`"${field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"\\s*:`));
  return at < 0 ? undefined : text.slice(0, at).split('\n').length;
}

export function DocumentEditor({
  table,
  schema,
  target,
  onDone,
}: {
  table: string;
  schema: JsonSchema;
  target: EditorTarget;
  onDone: (message: string) => void;
}) {
  const initial = target.mode === 'insert' ? templateOf(schema) : fieldsOf(target.document);
  const [text, setText] = useState(() => JSON.stringify(initial, null, 2));
  const [issues, setIssues] = useState<Issue[]>([]);
  const [failure, setFailure] = useState<ErrorShape | undefined>();
  const [saving, setSaving] = useState(false);
  const area = useRef<HTMLTextAreaElement>(null);
  const errorsId = useId();
  const editorId = useId();

  useEffect(() => area.current?.focus(), []);

  const save = async () => {
    setIssues([]);
    setFailure(undefined);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      setFailure({ code: 'INVALID_JSON', message: (error as Error).message });
      return;
    }
    setSaving(true);
    try {
      const base = `tables/${encodeURIComponent(table)}/documents`;
      if (target.mode === 'insert') {
        const { value: id } = await api<{ value: string }>(base, { method: 'POST', body: { value } });
        onDone(`Inserted ${id}`);
      } else {
        await api(`${base}/${encodeURIComponent(String(target.document._id))}`, { method: 'PUT', body: { value } });
        onDone(`Saved ${target.document._id}`);
      }
    } catch (error) {
      const shape = shapeOf(error);
      const found = (shape.data as { issues?: Issue[] } | undefined)?.issues;
      if (error instanceof ApiError && Array.isArray(found) && found.length > 0) setIssues(found);
      setFailure(shape);
    } finally {
      setSaving(false);
    }
  };

  const invalid = issues.length > 0 || failure !== undefined;
  const title = target.mode === 'insert' ? `Insert into ${table}` : `Edit ${target.document._id}`;
  return (
    <section
      className="editor"
      aria-label={title}
      onKeyDown={(event) => {
        if (event.key === 'Escape') onDone('');
        if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) void save();
      }}
    >
      <h3>{title}</h3>
      <label htmlFor={editorId}>Document (JSON, without _id and _creationTime)</label>
      <textarea
        id={editorId}
        ref={area}
        className="code"
        spellCheck={false}
        rows={Math.min(20, Math.max(6, text.split('\n').length + 1))}
        value={text}
        aria-invalid={invalid}
        aria-describedby={invalid ? errorsId : undefined}
        onChange={(event) => setText(event.target.value)}
      />
      <div id={errorsId} role="alert" className="issues">
        {issues.length > 0 ? (
          <ul aria-label="Validation errors">
            {issues.map((issue) => {
              const line = lineOf(text, issue.path);
              return (
                <li key={`${issue.path.join('.')}: ${issue.message}`}>
                  <strong>{issue.path.length > 0 ? issue.path.join('.') : '(document)'}</strong>
                  {line === undefined ? '' : <span className="muted"> line {line}</span>}: {issue.message}
                </li>
              );
            })}
          </ul>
        ) : failure ? (
          <p className="error">
            <code>{failure.code}</code> {failure.message}
          </p>
        ) : null}
      </div>
      <div className="actions">
        <button type="button" onClick={() => void save()} disabled={saving}>
          {target.mode === 'insert' ? 'Insert' : 'Save'}
        </button>
        <button type="button" className="secondary" onClick={() => onDone('')}>
          Cancel
        </button>
        <span className="muted">Ctrl+Enter saves, Escape cancels</span>
      </div>
    </section>
  );
}
