// PRODUCT.md's backend with a React front: pick a user, add projects, and watch every open page
// update by itself. Open it in two windows.
import type { Id } from '@avvos/convoy';
import { ConvoyClient } from '@avvos/convoy/client';
import { ConvoyProvider, skipToken, useMutation, usePaginatedQuery, useQuery } from '@avvos/convoy/react';
import { type FormEvent, StrictMode, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { api } from '../convoy/_generated/api';

// `convoy dev` serves on port 3737 of the same host, unless VITE_CONVOY_URL (set when the page is
// built) names the server.
const client = new ConvoyClient(import.meta.env.VITE_CONVOY_URL || `${location.protocol}//${location.hostname}:3737`);

function App() {
  const [userId, setUserId] = useState<Id<'users'> | null>(
    () => new URLSearchParams(location.search).get('user') as Id<'users'> | null,
  );
  const users = useQuery(api.users.listUsers, {});
  return (
    <main>
      <h1>Projects</h1>
      <Connection stale={users.isStale} state={users.connectionState} />
      <h2>Users</h2>
      <NewUser onCreated={setUserId} />
      <ul>
        {users.data?.map((user) => (
          <li key={user._id} aria-current={user._id === userId}>
            <button type="button" className="link" onClick={() => setUserId(user._id)}>
              {user.name}
            </button>{' '}
            <span className="status">{user.email}</span>
          </li>
        ))}
      </ul>
      {userId && <Projects userId={userId} />}
      <Recent />
    </main>
  );
}

function Connection({ stale, state }: { stale: boolean; state: string }) {
  return (
    <p className={stale ? 'status stale' : 'status'} data-testid="connection">
      {stale ? `offline: showing the last data seen (${state})` : `live (${state})`}
    </p>
  );
}

function NewUser({ onCreated }: { onCreated: (id: Id<'users'>) => void }) {
  const createUser = useMutation(api.users.createUser);
  const [name, setName] = useState('');
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const id = await createUser({ name, email: `${name.toLowerCase().replace(/\W+/g, '.')}@example.com` });
    setName('');
    onCreated(id);
  };
  return (
    <form onSubmit={submit}>
      <input aria-label="New user's name" value={name} onChange={(event) => setName(event.target.value)} />
      <button type="submit" disabled={!name}>
        Add user
      </button>
    </form>
  );
}

function Projects({ userId }: { userId: Id<'users'> }) {
  const projects = useQuery(api.projects.listProjects, userId ? { userId } : skipToken);
  // Shown at once, greyed until the server has it; gone again if it refuses it. Added while the
  // server is away, it waits and is sent when the page is back online.
  const createProject = useMutation(api.projects.createProject).withOptimisticUpdate((store, args) => {
    const current = store.getQuery(api.projects.listProjects, { userId: args.userId });
    if (current === undefined) return;
    const now = Date.now();
    const pending = {
      // An id of its own: two made in the same millisecond must not share a React key.
      _id: `pending-${Math.random().toString(36).slice(2)}` as Id<'projects'>,
      _creationTime: now,
      ...args,
      status: 'draft' as const,
      createdAt: now,
    };
    store.setQuery(api.projects.listProjects, { userId: args.userId }, [pending, ...current]);
  });
  const [name, setName] = useState('');
  const submit = (event: FormEvent) => {
    event.preventDefault();
    createProject.mutate({ userId, name });
    setName('');
  };
  return (
    <section>
      <h2>Their projects</h2>
      <form onSubmit={submit}>
        <input aria-label="New project's name" value={name} onChange={(event) => setName(event.target.value)} />
        <button type="submit" disabled={!name}>
          Add project
        </button>
      </form>
      {createProject.error && (
        <p role="alert">
          {createProject.error.message}{' '}
          <button type="button" className="link" onClick={createProject.reset}>
            Dismiss
          </button>
        </p>
      )}
      {projects.isLoading ? (
        <p className="status">Loading…</p>
      ) : (
        <ul data-testid="projects">
          {projects.data?.map((project) => (
            <li key={project._id} className={project._id.startsWith('pending-') ? 'pending' : undefined}>
              {project.name}{' '}
              <span className="status">{project._id.startsWith('pending-') ? 'saving…' : project.status}</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** Everyone's projects, newest first, three at a time; every loaded page stays live. */
function Recent() {
  const recent = usePaginatedQuery(api.recent.recentProjects, {}, { initialNumItems: 3 });
  return (
    <section>
      <h2>Recent projects, everyone's</h2>
      <ol data-testid="recent">
        {recent.results.map((project) => (
          <li key={project._id}>{project.name}</li>
        ))}
      </ol>
      {recent.status === 'CanLoadMore' && (
        <button type="button" onClick={() => recent.loadMore(3)}>
          Load more
        </button>
      )}
      {recent.status === 'Exhausted' && <p className="status">That is all of them.</p>}
    </section>
  );
}

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    <ConvoyProvider client={client}>
      <App />
    </ConvoyProvider>
  </StrictMode>,
);
