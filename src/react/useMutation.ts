/**
 * `useMutation`: a function that runs a mutation on the provider's client, carrying the state of
 * its latest call (TanStack Query's `useMutation` result, on a function as Convex's is) and
 * `withOptimisticUpdate` (Convex's). The function is the same object for the component's life;
 * its state fields are those of the latest render.
 */
import * as React from 'react';
import type { ArgsParameter, OptimisticUpdate } from '../client/optimistic.js';
import type { ArgsOfReference, FunctionReference, ReturnsOfReference } from '../functions.js';
import { ConvoyError } from '../values/errors.js';
import { useConvoy } from './useConvoy.js';

export type MutationStatus = 'idle' | 'pending' | 'success' | 'error';

/** The latest call's state; a call made after another replaces it, whatever the first one does. */
export type MutationState<Result> =
  | { status: 'idle'; isPending: false; data: undefined; error: undefined }
  | { status: 'pending'; isPending: true; data: undefined; error: undefined }
  | { status: 'success'; isPending: false; data: Result; error: undefined }
  | { status: 'error'; isPending: false; data: undefined; error: ConvoyError };

export type ReactMutation<Ref extends FunctionReference<'mutation'>> = MutationState<ReturnsOfReference<Ref>> & {
  /**
   * Runs the mutation: resolves with its result — when it does, this client's live queries show
   * the write — or rejects with a `ConvoyError`.
   */
  (...args: ArgsParameter<Ref>): Promise<ReturnsOfReference<Ref>>;
  /** Runs it without a promise to handle: the outcome is in `status`, `data` and `error`. */
  mutate(...args: ArgsParameter<Ref>): void;
  /** Back to `'idle'`: forgets the latest call's result or error (the call itself goes on). */
  reset(): void;
  /**
   * The same mutation, changing what the client's live queries show as soon as it is called
   * (`store.setQuery`), until it settles: rolled back exactly when it fails, replaced by the
   * server's results when it lands. Calls made while the server cannot be reached show their
   * updates while they wait to be sent. Call it at each render; it is the same function each
   * time, with the update of the latest render.
   */
  withOptimisticUpdate(update: OptimisticUpdate<ArgsOfReference<Ref>>): ReactMutation<Ref>;
};

const idle = { status: 'idle', isPending: false, data: undefined, error: undefined } as const;
const pending = { status: 'pending', isPending: true, data: undefined, error: undefined } as const;

export function useMutation<Ref extends FunctionReference<'mutation'>>(ref: Ref): ReactMutation<Ref> {
  const client = useConvoy();
  const [state, setState] = React.useState<MutationState<ReturnsOfReference<Ref>>>(idle);
  // Which call's outcome the state shows: only the latest one's.
  const latest = React.useRef(0);
  const mounted = React.useRef(true);
  React.useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  const run = React.useCallback(
    (args: unknown, update: OptimisticUpdate<ArgsOfReference<Ref>> | undefined) => {
      const call = ++latest.current;
      const settle = (next: MutationState<ReturnsOfReference<Ref>>) => {
        if (mounted.current && latest.current === call) setState(next);
      };
      setState(pending);
      const mutation = client.mutation as (
        ref: Ref,
        args: unknown,
        options: { optimisticUpdate?: OptimisticUpdate<ArgsOfReference<Ref>> },
      ) => Promise<ReturnsOfReference<Ref>>;
      return mutation.call(client, ref, args, update ? { optimisticUpdate: update } : {}).then(
        (data) => {
          settle({ status: 'success', isPending: false, data, error: undefined });
          return data;
        },
        (error: unknown) => {
          settle({ status: 'error', isPending: false, data: undefined, error: asConvoyError(error) });
          throw error;
        },
      );
    },
    [client, ref],
  );
  const reset = React.useCallback(() => {
    latest.current++;
    setState(idle);
  }, []);

  // One function for the hook's life (per client and ref), so that it can sit in an effect's
  // dependencies without running it again on every change of state; the state is copied onto it
  // at each render, which every change of state causes. `withOptimisticUpdate` keeps the update
  // it was given last (it is called at each render, with a new function each time).
  const optimisticUpdate = React.useRef<OptimisticUpdate<ArgsOfReference<Ref>> | undefined>(undefined);
  const functions = React.useMemo(() => {
    const plain = bind(run, reset, () => undefined);
    const optimistic = bind(run, reset, () => optimisticUpdate.current);
    const withOptimisticUpdate = (update: OptimisticUpdate<ArgsOfReference<Ref>>) => {
      optimisticUpdate.current = update;
      return optimistic;
    };
    return {
      plain: Object.assign(plain, { withOptimisticUpdate }),
      optimistic: Object.assign(optimistic, { withOptimisticUpdate }),
    };
  }, [run, reset]);
  Object.assign(functions.plain, state);
  Object.assign(functions.optimistic, state);
  return functions.plain as ReactMutation<Ref>;
}

function bind<Ref extends FunctionReference<'mutation'>>(
  run: (args: unknown, update: OptimisticUpdate<ArgsOfReference<Ref>> | undefined) => Promise<ReturnsOfReference<Ref>>,
  reset: () => void,
  update: () => OptimisticUpdate<ArgsOfReference<Ref>> | undefined,
) {
  const mutation = (...args: ArgsParameter<Ref>) => run(args[0], update());
  return Object.assign(mutation, {
    mutate: (...args: ArgsParameter<Ref>) => {
      // The error is in the state; nobody is there to handle the rejection.
      run(args[0], update()).catch(() => {});
    },
    reset,
  });
}

/** What the state shows of a failure: a `ConvoyError`, whatever was thrown (an update's own error). */
function asConvoyError(error: unknown): ConvoyError {
  if (error instanceof ConvoyError) return error;
  return new ConvoyError('INTERNAL', error instanceof Error ? error.message : String(error));
}
