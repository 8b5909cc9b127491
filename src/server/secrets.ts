/** Comparing a secret a request presents (the dashboard's admin key, its per-process secret). */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * `presented` equals `secret`, in constant time: hashed first, so that the comparison is of equal
 * lengths and says nothing of the secret's.
 */
export function secretMatches(presented: string, secret: string): boolean {
  return timingSafeEqual(digest(presented), digest(secret));
}
