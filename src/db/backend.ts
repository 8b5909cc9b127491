/**
 * What `ctx.db` needs of the native engine: its `db*` methods, typed as the generated
 * `native.d.cts` declares them. A mutation's writes to managed tables are queued, synchronously:
 * they travel to Postgres with its next statement or its COMMIT. `dbSeen` answers from the
 * documents the mutation has read or written, without a round trip: `""` when it has not seen the
 * id, else what `dbLocate` would answer.
 */
import type { Engine } from '../server/native.js';

export type DbBackend = Pick<
  Engine,
  | 'dbGet'
  | 'dbLocate'
  | 'dbSeen'
  | 'dbQuery'
  | 'dbPaginate'
  | 'dbInsert'
  | 'dbQueueInsert'
  | 'dbQueueReplace'
  | 'dbQueueDelete'
  | 'dbUpdateUnmanaged'
  | 'dbDeleteUnmanaged'
  | 'dbRaw'
>;
