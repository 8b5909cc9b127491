import { usePaginatedQuery } from '@avvos/convoy/react';
import { api } from '../convoy/_generated/api';
import { ItemRow } from './ItemRow';

const pageSize = 5;

/** Every item, oldest first, five at a time: each loaded page stays live. */
export function AllItems() {
  const items = usePaginatedQuery(api.items.page, {}, { initialNumItems: pageSize });
  if (items.status === 'LoadingFirstPage') return <p className="muted">Loading…</p>;
  return (
    <>
      {items.error && (
        <p className="error" role="alert">
          {items.error.message}
        </p>
      )}
      {items.results.length === 0 ? (
        <p className="empty">The first item you add starts this list.</p>
      ) : (
        <ol className="items" data-testid="all">
          {items.results.map((item) => (
            <ItemRow key={item._id} item={item} />
          ))}
        </ol>
      )}
      <div className="list-footer">
        {items.status === 'CanLoadMore' && (
          <button type="button" className="secondary" onClick={() => items.loadMore(pageSize)}>
            Load more
          </button>
        )}
        {items.status === 'LoadingMore' && <span className="muted">Loading…</span>}
        {items.status === 'Exhausted' && items.results.length > pageSize && (
          <span className="muted">That is all of them.</span>
        )}
      </div>
    </>
  );
}
