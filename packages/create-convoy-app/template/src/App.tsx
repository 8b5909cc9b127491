import { AddItem } from './AddItem';
import { AllItems } from './AllItems';
import { ConnectionBadge } from './ConnectionBadge';
import { LatestItems } from './LatestItems';

export function App() {
  return (
    <main className="app">
      <header className="app-header">
        <div>
          <h1>Items</h1>
          <p className="muted">Open this page in a second window: what you add in one shows up in the other.</p>
        </div>
        <ConnectionBadge />
      </header>

      <section className="card" aria-labelledby="latest-heading">
        <h2 id="latest-heading">Newest</h2>
        <AddItem />
        <LatestItems />
      </section>

      <section className="card" aria-labelledby="all-heading">
        <h2 id="all-heading">From the first</h2>
        <AllItems />
      </section>

      <footer className="muted">
        The functions are in <code>convoy/functions/items.ts</code>, this page in <code>src/</code>: save either and it
        reloads.
      </footer>
    </main>
  );
}
