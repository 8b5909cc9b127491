/**
 * The shape every client store has, for any framework to render from: a snapshot that is a new
 * object only when something changed, and `subscribe` to hear when it does (React's
 * `useSyncExternalStore` contract; TanStack's `Subscribable`). A store does its work only while
 * someone listens: the first listener starts it, the last one to leave stops it.
 */
export abstract class Store<Snapshot> {
  private readonly listeners = new Set<() => void>();

  protected constructor(protected snapshot: Snapshot) {}

  /** Bound, so that it can be handed over as it is (`useSyncExternalStore(store.subscribe, …)`). */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.start();
    return () => {
      if (!this.listeners.delete(listener) || this.listeners.size > 0) return;
      this.stop();
    };
  };

  readonly getSnapshot = (): Snapshot => this.snapshot;

  /** Someone listens now, and nobody did. */
  protected abstract start(): void;

  /** The last listener left. */
  protected abstract stop(): void;

  protected get listening(): boolean {
    return this.listeners.size > 0;
  }

  protected setSnapshot(snapshot: Snapshot): void {
    if (snapshot === this.snapshot) return;
    this.snapshot = snapshot;
    for (const listener of [...this.listeners]) listener();
  }
}
