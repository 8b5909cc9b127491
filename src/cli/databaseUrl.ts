/** A database URL as the CLI prints it: everything but the password. */

/** `postgresql://app:****@db.example.com:5432/app`; libpq's `key=value` form likewise. */
export function maskedDatabaseUrl(url: string): string {
  const trimmed = url.trim();
  if (!/^postgres(ql)?:\/\//.test(trimmed)) {
    return trimmed.replace(/(^|\s)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)/g, '$1$2****');
  }
  try {
    const parsed = new URL(trimmed);
    if (parsed.password) parsed.password = '****';
    // A password in the query string (`?password=…`) is as secret.
    if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '****');
    return parsed.toString();
  } catch {
    return 'DATABASE_URL (not a URL this can read)';
  }
}
