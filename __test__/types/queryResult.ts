// Type tests of `QueryResult`: a union on `status` that types `data` and `error` in each branch,
// while every branch keeps the fields of SPEC §8 so that un-narrowed code still reads them.
// Checked by `tsc -p __test__/types`, which passes only if every @ts-expect-error line is an error.
import type { FunctionReference } from '../../src/functions.js';
import { type QueryResult, skipToken, useQuery } from '../../src/react/index.js';
import type { ConvoyError } from '../../src/values/errors.js';

interface Project {
  name: string;
}
declare const listProjects: FunctionReference<'query', { userId: string }, Project[]>;

export function Narrowing() {
  const projects = useQuery(listProjects, { userId: 'u' });

  if (projects.status === 'success') {
    const names: string[] = projects.data.map((project) => project.name);
    const error: undefined = projects.error;
    const loading: false = projects.isLoading;
    void [names, error, loading];
  } else if (projects.status === 'error') {
    const error: ConvoyError = projects.error;
    // The last result seen before the error, if there was one.
    const last: Project[] | undefined = projects.data;
    // @ts-expect-error an error may come before any data
    void projects.data.length;
    void [error, last];
  } else {
    const pending: 'pending' = projects.status;
    const data: undefined = projects.data;
    // @ts-expect-error there is no error while pending
    void projects.error.code;
    void [pending, data];
  }

  // Not narrowed: every field is there, typed for every branch at once.
  const data: Project[] | undefined = projects.data;
  const error: ConvoyError | undefined = projects.error;
  const flags: boolean[] = [projects.isLoading, projects.isStale];
  const state: 'connecting' | 'open' | 'reconnecting' | 'closed' = projects.connectionState;
  void [data, error, flags, state];
  // @ts-expect-error data may be missing until the status says it is there
  void projects.data.length;
  // @ts-expect-error 'loading' is no status
  void (projects.status === 'loading');

  // A skipped query is pending.
  const skipped = useQuery(listProjects, skipToken);
  if (skipped.status !== 'pending') {
    const known: 'error' | 'success' = skipped.status;
    void known;
  }
  return null;
}

// Narrowing on `status` works on the exported type too, as a function parameter.
export function count(result: QueryResult<Project[]>): number {
  switch (result.status) {
    case 'success':
      return result.data.length;
    case 'error':
      return result.data?.length ?? 0;
    case 'pending': {
      const nothing: undefined = result.data;
      return nothing ?? 0;
    }
  }
}
