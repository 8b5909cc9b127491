/**
 * The dashboard's frame: the login form when the server asks for the admin key, then the four
 * views, chosen by the URL's hash (#tables, #functions, #logs, #graduation) so that each has an
 * address and the browser's back button works.
 */
import { useCallback, useEffect, useState } from 'react';
import { ApiError, adminKey, api, onUnauthorized, shapeOf } from './api.js';
import { FunctionsView } from './FunctionsView.js';
import { GraduationView } from './GraduationView.js';
import { Login } from './Login.js';
import { LogsView } from './LogsView.js';
import { TablesView } from './TablesView.js';
import type { Info } from './types.js';

const VIEWS = [
  { id: 'tables', label: 'Tables' },
  { id: 'functions', label: 'Functions' },
  { id: 'logs', label: 'Logs' },
  { id: 'graduation', label: 'Graduation' },
] as const;
type ViewId = (typeof VIEWS)[number]['id'];

function viewOfHash(): ViewId {
  const id = window.location.hash.replace(/^#\/?/, '').split('/')[0];
  return VIEWS.find((view) => view.id === id)?.id ?? 'tables';
}

export function App() {
  const [view, setView] = useState<ViewId>(viewOfHash);
  const [info, setInfo] = useState<Info | undefined>();
  const [needsKey, setNeedsKey] = useState(false);
  const [refused, setRefused] = useState(false);
  const [failure, setFailure] = useState<string | undefined>();

  const load = useCallback(() => {
    api<Info>('info').then(
      (loaded) => {
        setInfo(loaded);
        setNeedsKey(false);
        setFailure(undefined);
      },
      (error) => {
        if (error instanceof ApiError && error.status === 401) {
          setNeedsKey(true);
          setRefused(adminKey.get() !== null);
        } else setFailure(shapeOf(error).message);
      },
    );
  }, []);

  useEffect(() => {
    load();
    const onHash = () => setView(viewOfHash());
    window.addEventListener('hashchange', onHash);
    const stop = onUnauthorized(() => setNeedsKey(true));
    return () => {
      window.removeEventListener('hashchange', onHash);
      stop();
    };
  }, [load]);

  if (needsKey) {
    return (
      <Login
        onKey={(key) => {
          adminKey.set(key);
          load();
        }}
        refused={refused}
      />
    );
  }

  return (
    <div className="frame">
      <header className="top">
        <span className="brand">Convoy</span>
        <nav aria-label="Views">
          {VIEWS.map((item) => (
            <a key={item.id} href={`#${item.id}`} aria-current={view === item.id ? 'page' : undefined}>
              {item.label}
            </a>
          ))}
        </nav>
        <span className="server" title="The app's server">
          {info ? `${info.dev ? 'dev' : 'production'} · ${info.serverUrl}` : ''}
        </span>
        {info?.keyed ? (
          <button
            type="button"
            className="link"
            onClick={() => {
              adminKey.clear();
              setNeedsKey(true);
            }}
          >
            Sign out
          </button>
        ) : null}
      </header>
      <main>
        {failure ? (
          <p role="alert" className="error">
            The dashboard's server does not answer: {failure}
          </p>
        ) : null}
        {info === undefined ? null : view === 'tables' ? (
          <TablesView />
        ) : view === 'functions' ? (
          <FunctionsView />
        ) : view === 'logs' ? (
          <LogsView />
        ) : (
          <GraduationView />
        )}
      </main>
    </div>
  );
}
