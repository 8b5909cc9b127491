/**
 * `_generated/http.js`: the production server's entry, `node convoy/_generated/http.js`. Plain
 * JavaScript that works whether the app's package.json says ESM or CommonJS: only a dynamic
 * import, and the file's own path from `__filename` (CommonJS) or argv (ESM).
 */
import { HEADER } from './common.js';

export function httpJs(): string {
  return `${HEADER}
// The production server: DATABASE_URL=postgres://… node convoy/_generated/http.js
const entry = typeof __filename === 'string' ? __filename : process.argv[1];
import('@avvos/convoy/server').then(
  (server) => server.runProduction({ entry }),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
`;
}
