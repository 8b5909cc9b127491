/**
 * Functions: every query and mutation of the app with its args' JSON Schema; run one with JSON
 * args (checked by the function's own Zod input on the server) and see its result or its
 * ConvoyError; keep a query live. Calls are made as any client makes them, with the headers given
 * here (an Authorization header for an app with createContext).
 */
import { useEffect, useId, useMemo, useState } from 'react';
import { api, type ErrorShape, encodeArgs, shapeOf } from './api.js';
import { useLiveValue } from './live.js';
import { templateOf } from './template.js';
import type { FunctionInfo } from './types.js';

interface RunResult {
  status: number;
  ms: number;
  value?: unknown;
  error?: ErrorShape;
}

const pretty = (value: unknown) => JSON.stringify(value, null, 2);

export function FunctionsView() {
  const [functions, setFunctions] = useState<FunctionInfo[] | undefined>();
  const [selected, setSelected] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    api<FunctionInfo[]>('functions').then(
      (loaded) => {
        setFunctions(loaded);
        setSelected((current) => current ?? loaded[0]?.path);
      },
      (failure) => setError(shapeOf(failure).message),
    );
  }, []);
  const fn = functions?.find((candidate) => candidate.path === selected);
  return (
    <div className="split">
      <aside aria-label="Functions">
        <h2>Functions</h2>
        {error ? <p className="error">{error}</p> : null}
        {functions?.length === 0 ? <p className="muted">No functions in convoy/functions/ yet.</p> : null}
        <ul className="list" data-testid="functions">
          {functions?.map((item) => (
            <li key={item.path}>
              <button
                type="button"
                aria-current={item.path === selected ? 'true' : undefined}
                onClick={() => setSelected(item.path)}
              >
                <span className="name mono">{item.path}</span>
                <span className={`badge kind-${item.kind}`}>{item.kind}</span>
              </button>
            </li>
          ))}
        </ul>
      </aside>
      {fn ? <FunctionForm key={fn.path} fn={fn} /> : null}
    </div>
  );
}

function FunctionForm({ fn }: { fn: FunctionInfo }) {
  const [argsText, setArgsText] = useState(() => pretty(templateOf(fn.args)));
  const [headersText, setHeadersText] = useState('{}');
  const [result, setResult] = useState<RunResult | undefined>();
  const [inputError, setInputError] = useState<string | undefined>();
  const [running, setRunning] = useState(false);
  const [livePath, setLivePath] = useState<string | null>(null);
  const live = useLiveValue<unknown>(livePath);
  const ids = { args: useId(), headers: useId() };

  const parsed = useMemo(() => {
    try {
      return { args: JSON.parse(argsText) as unknown, headers: JSON.parse(headersText) as unknown };
    } catch (error) {
      return { error: (error as Error).message };
    }
  }, [argsText, headersText]);

  const run = async () => {
    if ('error' in parsed) {
      setInputError(parsed.error);
      return;
    }
    setInputError(undefined);
    setRunning(true);
    try {
      setResult(await api<RunResult>('functions/run', { method: 'POST', body: { path: fn.path, ...parsed } }));
    } catch (error) {
      setResult({ status: 0, ms: 0, error: shapeOf(error) });
    } finally {
      setRunning(false);
    }
  };

  const toggleLive = () => {
    if (livePath !== null) return setLivePath(null);
    if ('error' in parsed) return setInputError(parsed.error);
    setInputError(undefined);
    setLivePath(
      `functions/live?path=${encodeURIComponent(fn.path)}&args=${encodeArgs(parsed.args)}&headers=${encodeArgs(parsed.headers)}`,
    );
  };

  return (
    <section className="content" aria-labelledby="function-title">
      <div className="heading">
        <h2 id="function-title" className="mono">
          {fn.path}
        </h2>
        <span className={`badge kind-${fn.kind}`}>{fn.kind}</span>
        {fn.timeoutMs ? <span className="muted">timeout {fn.timeoutMs} ms</span> : null}
      </div>
      <details>
        <summary>Args schema (JSON Schema)</summary>
        <pre className="code">{pretty(fn.args)}</pre>
      </details>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          void run();
        }}
      >
        <label htmlFor={ids.args}>Args (JSON)</label>
        <textarea
          id={ids.args}
          className="code"
          rows={Math.min(14, Math.max(4, argsText.split('\n').length + 1))}
          spellCheck={false}
          value={argsText}
          onChange={(event) => setArgsText(event.target.value)}
          onKeyDown={(event) => {
            if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) void run();
          }}
        />
        <details>
          <summary>Request headers</summary>
          <label htmlFor={ids.headers}>Headers (JSON), e.g. an Authorization for createContext</label>
          <textarea
            id={ids.headers}
            className="code"
            rows={3}
            spellCheck={false}
            value={headersText}
            onChange={(event) => setHeadersText(event.target.value)}
          />
        </details>
        {inputError ? (
          <p role="alert" className="error">
            Not JSON: {inputError}
          </p>
        ) : null}
        <div className="actions">
          <button type="submit" disabled={running}>
            Run {fn.kind}
          </button>
          {fn.kind === 'query' ? (
            <button type="button" className="secondary" aria-pressed={livePath !== null} onClick={toggleLive}>
              {livePath === null ? 'Keep live' : 'Stop live'}
            </button>
          ) : null}
          <span className="muted">Ctrl+Enter runs</span>
        </div>
      </form>
      {result ? (
        <section aria-label="Result" className="result" data-testid="result">
          {result.error ? (
            <>
              <h3>
                Error <code>{result.error.code}</code>{' '}
                <span className="muted">
                  HTTP {result.status} · {result.ms} ms
                </span>
              </h3>
              <p className="error">{result.error.message}</p>
              {result.error.data === undefined ? null : <pre className="code">{pretty(result.error.data)}</pre>}
            </>
          ) : (
            <>
              <h3>
                Result <span className="muted">{result.ms} ms</span>
              </h3>
              <pre className="code">{pretty(result.value)}</pre>
            </>
          )}
        </section>
      ) : null}
      {livePath !== null ? (
        <section aria-label="Live result" className="result" data-testid="live-result">
          <h3>
            Live <span className={`live-dot ${live.state}`}>{live.state}</span>
          </h3>
          {live.error ? (
            <p className="error">
              <code>{live.error.code}</code> {live.error.message}
            </p>
          ) : null}
          {live.value === undefined ? null : <pre className="code">{pretty(live.value)}</pre>}
        </section>
      ) : null}
    </section>
  );
}
