import type { Doc } from '../convoy/_generated/dataModel';

const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });

/** One item; `pending` while it is only shown optimistically, before the server has it. */
export function ItemRow({ item, pending = false }: { item: Doc<'items'>; pending?: boolean }) {
  return (
    <li className={pending ? 'item item-pending' : 'item'} data-pending={pending}>
      <span className="item-text">{item.text}</span>
      <time className="item-time" dateTime={new Date(item._creationTime).toISOString()}>
        {pending ? 'saving…' : timeOfDay.format(item._creationTime)}
      </time>
    </li>
  );
}
