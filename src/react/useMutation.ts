/** `useMutation`: a function that runs a mutation on the provider's client. */
import * as React from 'react';
import type { ArgsOfReference, FunctionReference, ReturnsOfReference } from '../functions.js';
import { useConvoy } from './useConvoy.js';

/**
 * `(args) => Promise<result>`, rejecting with `ConvoyError`; when it resolves, the client's live
 * queries already show the write.
 */
export function useMutation<Ref extends FunctionReference<'mutation'>>(
  ref: Ref,
): (args: ArgsOfReference<Ref>) => Promise<ReturnsOfReference<Ref>> {
  const client = useConvoy();
  return React.useCallback((args: ArgsOfReference<Ref>) => client.mutation(ref, args as never), [client, ref]);
}
