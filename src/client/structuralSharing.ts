/**
 * Structural sharing: what the live stores do to every new result before they publish it, so
 * that an update which leaves parts of a result unchanged leaves those parts the same objects.
 */

/**
 * `next`, reusing every part of `previous` that is deeply equal to the same part of `next`, so
 * that unchanged rows stay the same objects for `React.memo` and effects (TanStack Query's
 * `replaceEqualDeep`, written for plain JSON).
 */
export function shareStructure<T>(previous: unknown, next: T): T {
  if (previous === next) return previous as T;
  if (Array.isArray(previous) && Array.isArray(next)) {
    let same = previous.length === next.length;
    const shared = next.map((item, index) => {
      const kept = shareStructure(previous[index], item);
      if (kept !== previous[index]) same = false;
      return kept;
    });
    return (same ? previous : shared) as T;
  }
  if (isPlainObject(previous) && isPlainObject(next)) {
    const previousKeys = Object.keys(previous);
    const nextKeys = Object.keys(next);
    let same = previousKeys.length === nextKeys.length;
    const shared: Record<string, unknown> = {};
    for (const key of nextKeys) {
      shared[key] = shareStructure(previous[key], next[key]);
      if (shared[key] !== previous[key] || !Object.hasOwn(previous, key)) same = false;
    }
    return (same ? previous : shared) as T;
  }
  return next;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}
