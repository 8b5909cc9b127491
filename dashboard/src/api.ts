/**
 * The dashboard's API, same origin: JSON in and out, the admin key (kept in session storage by the
 * login form) on every request, and errors as the `{code, message, data}` Convoy answers.
 */

const KEY_STORAGE = 'convoy-dashboard-admin-key';

export interface ErrorShape {
  code: string;
  message: string;
  data?: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly shape: ErrorShape,
  ) {
    super(shape.message);
  }
}

export const adminKey = {
  get: () => sessionStorage.getItem(KEY_STORAGE),
  set: (key: string) => sessionStorage.setItem(KEY_STORAGE, key),
  clear: () => sessionStorage.removeItem(KEY_STORAGE),
};

/** Told when the server refuses the key, so that the page shows the login form again. */
const unauthorizedListeners = new Set<() => void>();
export function onUnauthorized(listener: () => void): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}
export function unauthorized(): void {
  for (const listener of unauthorizedListeners) listener();
}

export function authHeaders(): Record<string, string> {
  const key = adminKey.get();
  return key ? { authorization: `Bearer ${key}` } : {};
}

export const apiUrl = (path: string) => `/_dashboard/api/${path}`;

export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = authHeaders();
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(apiUrl(path), {
    method: init.method ?? 'GET',
    headers,
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const json = (await response.json().catch(() => ({}))) as { error?: ErrorShape };
  if (!response.ok) {
    if (response.status === 401) unauthorized();
    throw new ApiError(response.status, json.error ?? { code: 'INTERNAL', message: response.statusText });
  }
  return json as T;
}

/** The error of a failed request, as the page shows it. */
export function shapeOf(error: unknown): ErrorShape {
  if (error instanceof ApiError) return error.shape;
  return { code: 'NETWORK', message: error instanceof Error ? error.message : String(error) };
}

export const encodeArgs = (value: unknown) => encodeURIComponent(JSON.stringify(value));
