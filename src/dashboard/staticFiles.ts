/**
 * The page: the static bundle Vite built into `dist/dashboard/page/` (`npm run build:dashboard`),
 * served as it is. Any path under `/_dashboard` that is not a file is the page itself, whose
 * views are chosen by the URL's hash.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PAGE_DIR = fileURLToPath(new URL('./page/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/** What the page may load: its own files, nothing from elsewhere. */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

export async function serveStatic(pathname: string, response: ServerResponse): Promise<void> {
  const relative = pathname.replace(/^\/_dashboard\/?/, '');
  let file = path.join(PAGE_DIR, path.normalize(`/${relative}`));
  if (!file.startsWith(PAGE_DIR) || relative === '' || !existsSync(file) || !path.extname(file)) {
    file = path.join(PAGE_DIR, 'index.html');
  }
  if (!existsSync(file)) {
    response.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
    response.end(`The dashboard's page is not built (${PAGE_DIR}): run \`npm run build:dashboard\`.\n`);
    return;
  }
  const body = await readFile(file);
  const immutable = file.includes(`${path.sep}assets${path.sep}`);
  response.writeHead(200, {
    'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
    'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });
  response.end(body);
}
