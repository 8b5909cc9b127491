/**
 * The log of the app's calls the dashboard shows: bounded in memory (the newest `capacity`), told
 * of each call by the runtime's observer (`server/extensions.ts`), and tailed live.
 *
 * The core runs a conflicting mutation again without telling JavaScript that the new call is a
 * retry; an attempt whose commit failed is therefore kept open for a moment, and a call of the
 * same function with the same args and headers within it is counted as its retry.
 */
import type { CallObserver, CallOutcome } from '../server/extensions.js';
import type { FunctionCall } from '../server/native.js';

export interface LogEntry {
  id: number;
  /** When the call started, ms since the epoch. */
  time: number;
  path: string;
  kind: 'query' | 'mutation';
  status: 'running' | 'ok' | 'error';
  /** The error's code; `NOT_COMMITTED` for a mutation whose commit failed and was not retried. */
  code?: string;
  message?: string;
  /** Dev mode only. */
  stack?: string;
  ms?: number;
  retries: number;
  /** The args' JSON, cut short. */
  args: string;
}

const RETRY_WINDOW_MS = 2_000;
const ARGS_SHOWN = 500;

export class CallLog {
  private readonly entries: LogEntry[] = [];
  private readonly listeners = new Set<(entry: LogEntry) => void>();
  /** Attempts whose commit failed, by function, args and headers: a retry would join them. */
  private readonly uncommitted = new Map<string, { entry: LogEntry; timer: NodeJS.Timeout }>();
  /** Where each entry's first attempt started (`performance.now()`). */
  private readonly startedAt = new WeakMap<LogEntry, number>();
  private nextId = 1;

  constructor(private readonly capacity = 1_000) {}

  recent(): LogEntry[] {
    return [...this.entries];
  }

  /** Calls `listener` with each entry as it starts and as it changes; returns a function that stops it. */
  subscribe(listener: (entry: LogEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  readonly observe: CallObserver = (call) => {
    const key = `${call.path}\u0000${call.argsJson}\u0000${call.headersJson}`;
    const earlier = this.uncommitted.get(key);
    let entry: LogEntry;
    if (earlier) {
      clearTimeout(earlier.timer);
      this.uncommitted.delete(key);
      entry = earlier.entry;
      entry.retries += 1;
      entry.status = 'running';
      delete entry.code;
      delete entry.message;
    } else {
      entry = this.add(call);
      this.startedAt.set(entry, performance.now());
    }
    this.changed(entry);
    return (outcome) => this.ended(entry, key, outcome);
  };

  private add(call: FunctionCall): LogEntry {
    const args = call.argsJson.length > ARGS_SHOWN ? `${call.argsJson.slice(0, ARGS_SHOWN)}…` : call.argsJson;
    const entry: LogEntry = {
      id: this.nextId++,
      time: Date.now(),
      path: call.path,
      kind: call.kind,
      status: 'running',
      retries: 0,
      args,
    };
    this.entries.push(entry);
    if (this.entries.length > this.capacity) this.entries.splice(0, this.entries.length - this.capacity);
    return entry;
  }

  private ended(entry: LogEntry, key: string, outcome: CallOutcome): void {
    const started = this.startedAt.get(entry) ?? performance.now();
    entry.ms = Math.round((performance.now() - started) * 10) / 10;
    if (outcome.ok && outcome.committed !== false) {
      entry.status = 'ok';
    } else if (outcome.ok) {
      entry.status = 'error';
      entry.code = 'NOT_COMMITTED';
      entry.message = 'the handler returned, but its transaction did not commit (a constraint, or a conflict)';
      const timer = setTimeout(() => this.uncommitted.delete(key), RETRY_WINDOW_MS);
      timer.unref();
      this.uncommitted.set(key, { entry, timer });
    } else {
      entry.status = 'error';
      Object.assign(entry, outcome.error);
    }
    this.changed(entry);
  }

  private changed(entry: LogEntry): void {
    for (const listener of this.listeners) listener({ ...entry });
  }
}
