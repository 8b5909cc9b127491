/** A database URL as the CLI prints it: never its password. */

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

/** Which database a URL names, without its password: `app on db.example.com:5432`. */
export function databaseOf(url: string): string {
  if (!/^postgres(ql)?:\/\//.test(url.trim())) {
    // libpq's other form: `host=… port=… dbname=…`.
    const value = (key: string) => new RegExp(`(?:^|\\s)${key}\\s*=\\s*'?([^'\\s]*)`).exec(url)?.[1];
    const host = value('host') ?? 'localhost';
    const port = value('port');
    return `${value('dbname') ?? '(the default database)'} on ${host}${port ? `:${port}` : ''}`;
  }
  try {
    const parsed = new URL(url);
    const name = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || '(the default database)';
    return parsed.host ? `${name} on ${parsed.host}` : name;
  } catch {
    return 'DATABASE_URL';
  }
}
