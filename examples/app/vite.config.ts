// The example's React app (web/), served by Vite. `npm run example` at the repository root starts
// it together with `convoy dev`; `npm run build:web` writes the static page to web/dist/.
//
// @avvos/convoy/client and /react resolve from node_modules, as in any app (inside this
// repository scripts/setup.mjs links node_modules/@avvos/convoy to the Convoy built here).
import path from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  root: path.join(import.meta.dirname, 'web'),
  plugins: [react()],
  server: { port: 5173 },
});
