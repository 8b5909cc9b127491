import { useMutation } from '@avvos/convoy/react';
import { type FormEvent, useState } from 'react';
import { api } from '../convoy/_generated/api';
import type { Id } from '../convoy/_generated/dataModel';

/** The id an item shows until the server has given it its own. */
export const optimisticIdPrefix = 'optimistic:';

export function AddItem() {
  const [text, setText] = useState('');
  // The new item shows at the top of the list at once; it is replaced by the server's when the
  // mutation lands, and taken away again if it fails.
  const addItem = useMutation(api.items.add).withOptimisticUpdate((store, args) => {
    const items = store.getQuery(api.items.list, {});
    if (items === undefined) return;
    const item = {
      _id: `${optimisticIdPrefix}${crypto.randomUUID()}` as Id<'items'>,
      _creationTime: Date.now(),
      text: args.text.trim(),
    };
    store.setQuery(api.items.list, {}, [item, ...items].slice(0, 10));
  });

  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const sent = text;
    setText('');
    try {
      await addItem({ text: sent });
    } catch {
      // The error is in addItem.error, shown below; give the text back to fix or send again.
      setText((current) => (current === '' ? sent : current));
    }
  };

  return (
    <form className="add-item" onSubmit={submit}>
      <div className="add-item-row">
        <input
          aria-label="New item"
          placeholder="Write something…"
          maxLength={280}
          value={text}
          onChange={(event) => {
            setText(event.target.value);
            if (addItem.status === 'error') addItem.reset();
          }}
        />
        <button type="submit" disabled={text.trim() === ''} aria-busy={addItem.isPending}>
          {addItem.isPending ? 'Adding…' : 'Add'}
        </button>
      </div>
      {addItem.status === 'error' && (
        <p className="error" role="alert">
          Not added: {addItem.error.message}
        </p>
      )}
    </form>
  );
}
