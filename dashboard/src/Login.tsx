/** The admin key's form: the key is kept in session storage, for this tab only, until it closes. */
import { useState } from 'react';

export function Login({ onKey, refused }: { onKey: (key: string) => void; refused: boolean }) {
  const [key, setKey] = useState('');
  return (
    <main className="login">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (key) onKey(key);
        }}
      >
        <h1>Convoy dashboard</h1>
        <p>This server's dashboard needs its admin key (CONVOY_ADMIN_KEY).</p>
        <label htmlFor="admin-key">Admin key</label>
        <input
          id="admin-key"
          type="password"
          autoComplete="current-password"
          value={key}
          onChange={(event) => setKey(event.target.value)}
          required
        />
        {refused ? (
          <p role="alert" className="error">
            That key was refused.
          </p>
        ) : null}
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}
