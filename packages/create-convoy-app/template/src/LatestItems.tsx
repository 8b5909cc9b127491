import { useConvoy, useQuery } from '@avvos/convoy/react';
import { api } from '../convoy/_generated/api';
import { optimisticIdPrefix } from './AddItem';
import { ItemRow } from './ItemRow';

/** The newest items, live: `useQuery` updates it whenever an item is added, here or anywhere. */
export function LatestItems() {
  const client = useConvoy();
  const items = useQuery(api.items.list, {});
  if (items.status === 'pending') {
    // Nothing yet and the stream down: most often the server is not running (yet).
    return items.connectionState === 'reconnecting' ? (
      <p className="notice">
        Cannot reach Convoy at <code>{client.url}</code> yet: is <code>npm run dev</code> running?
      </p>
    ) : (
      <p className="muted">Loading…</p>
    );
  }
  if (items.status === 'error' && items.data === undefined) {
    return (
      <p className="error" role="alert">
        {items.error.message}
      </p>
    );
  }
  const shown = items.data ?? [];
  return (
    <>
      {items.isStale && (
        <p className="notice">Showing the last items seen. What you add now is sent when the connection is back.</p>
      )}
      {shown.length === 0 ? (
        <p className="empty">Nothing here yet. Add the first item above.</p>
      ) : (
        <ul className="items" data-testid="latest">
          {shown.map((item) => (
            <ItemRow key={item._id} item={item} pending={item._id.startsWith(optimisticIdPrefix)} />
          ))}
        </ul>
      )}
    </>
  );
}
