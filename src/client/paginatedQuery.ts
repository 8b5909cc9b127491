/**
 * The paginated query store: a chain of live pages of one query (its args take `paginationOpts`),
 * loaded one at a time, as a `Store` any framework can render from (TanStack's
 * `InfiniteQueryObserver`, for pages the server keeps current). Every loaded page stays live;
 * each page starts where the one before it now ends, so when a write moves a boundary the pages
 * after it follow, and no item is shown twice or lost.
 */
import type { PaginationResult } from '../db/types.js';
import type { FunctionReference } from '../functions.js';
import type { ConvoyError } from '../values/errors.js';
import type { LiveSource } from './liveQuery.js';
import { Store } from './store.js';
import { shareStructure } from './structuralSharing.js';

export type PaginationStatus = 'LoadingFirstPage' | 'CanLoadMore' | 'LoadingMore' | 'Exhausted';

export interface PaginatedQueryResult<Item> {
  /** Every loaded page's items, in order. */
  results: Item[];
  status: PaginationStatus;
  isLoading: boolean;
  /** Loads `numItems` more after the last page; does nothing unless `status` is `CanLoadMore`. */
  loadMore: (numItems: number) => void;
  error: ConvoyError | undefined;
}

/** One subscribed page: its args (as a key), and what it last showed. */
interface Page {
  key: string;
  stop: () => void;
  data: PaginationResult<unknown> | undefined;
  error: ConvoyError | undefined;
}

export class PaginatedQuery<Item = unknown> extends Store<PaginatedQueryResult<Item>> {
  /** The query's args without `paginationOpts`; `null` while it is skipped. */
  private args: unknown = null;
  private argsKey = 'null';
  /** How many items each page asks for: the first page's, then one per `loadMore`. */
  private sizes: number[] = [];
  private pages: Page[] = [];
  /** What the snapshot was made of, so that a new one is made only when something changed. */
  private shown: { data: unknown; error: unknown }[] = [];

  constructor(
    private readonly client: LiveSource,
    private readonly ref: FunctionReference<'query'>,
    args: unknown,
    initialNumItems: number,
  ) {
    super({ results: [], status: 'LoadingFirstPage', isLoading: true, loadMore: () => {}, error: undefined });
    this.snapshot = { ...this.snapshot, loadMore: this.loadMore };
    this.setArgs(args, initialNumItems);
  }

  /**
   * Runs the query on `args` (`null` to run nothing): new args start over from the first page,
   * with `initialNumItems` items; equal args in a new object change nothing.
   */
  setArgs(args: unknown, initialNumItems: number): void {
    const argsKey = JSON.stringify(args ?? null);
    if (argsKey === this.argsKey && this.sizes.length > 0) return;
    this.args = args ?? null;
    this.argsKey = argsKey;
    this.sizes = [initialNumItems];
    this.sync();
  }

  /**
   * Loads `numItems` more after the last page; does nothing unless `status` is `CanLoadMore`.
   * Bound, so that every snapshot can carry it as it is.
   */
  readonly loadMore = (numItems: number): void => {
    if (this.snapshot.status !== 'CanLoadMore') return;
    this.sizes = [...this.sizes, numItems];
    this.sync();
  };

  protected start(): void {
    this.sync();
  }

  protected stop(): void {
    for (const page of this.pages.splice(0)) page.stop();
  }

  /** Makes the subscribed pages match the args, the sizes and the cursors now known. */
  private sync() {
    if (!this.listening) return;
    let cursor: string | null = null;
    const wanted: { key: string; args: unknown }[] = [];
    if (this.args !== null) {
      for (const [index, numItems] of this.sizes.entries()) {
        if (index > 0) {
          const previous = this.pages[index - 1]?.data;
          if (!previous || previous.isDone) break;
          cursor = previous.continueCursor;
        }
        const pageArgs = { ...(this.args as object), paginationOpts: { numItems, cursor } };
        wanted.push({ key: JSON.stringify(pageArgs), args: pageArgs });
      }
    }
    for (const [index, want] of wanted.entries()) {
      if (this.pages[index]?.key === want.key) continue;
      this.pages[index]?.stop();
      const page: Page = { key: want.key, stop: () => {}, data: undefined, error: undefined };
      this.pages[index] = page;
      page.stop = this.client.subscribe(
        this.ref,
        want.args as never,
        (data) =>
          this.update(page, { data: shareStructure(page.data, data as PaginationResult<unknown>), error: undefined }),
        (error) => this.update(page, { data: page.data, error }),
      );
    }
    for (const page of this.pages.splice(wanted.length)) page.stop();
    this.publish();
  }

  private update(page: Page, shows: Pick<Page, 'data' | 'error'>) {
    if (!this.pages.includes(page)) return;
    page.data = shows.data;
    page.error = shows.error;
    // A page's end moved: the pages after it start somewhere else now.
    this.sync();
  }

  private publish() {
    const { pages, shown } = this;
    if (
      pages.length === shown.length &&
      pages.every((page, index) => page.data === shown[index]?.data && page.error === shown[index]?.error)
    ) {
      return;
    }
    this.shown = pages.map(({ data, error }) => ({ data, error }));
    const loaded = pages.filter((page) => page.data !== undefined);
    const status: PaginationStatus =
      this.args === null || loaded.length === 0
        ? 'LoadingFirstPage'
        : loaded.length < pages.length
          ? 'LoadingMore'
          : pages[pages.length - 1]?.data?.isDone
            ? 'Exhausted'
            : 'CanLoadMore';
    this.setSnapshot({
      results: loaded.flatMap((page) => page.data!.page as Item[]),
      status,
      isLoading: status === 'LoadingFirstPage' || status === 'LoadingMore',
      loadMore: this.loadMore,
      error: pages.find((page) => page.error)?.error,
    });
  }
}
