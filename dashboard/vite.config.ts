// The dashboard's page: a static bundle in the package (dist/dashboard/page/), served by the
// dashboard's listener under /_dashboard/ (src/dashboard/staticFiles.ts). `npm run build:dashboard`.
import path from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/_dashboard/',
  plugins: [react()],
  build: {
    outDir: path.join(import.meta.dirname, '..', 'dist', 'dashboard', 'page'),
    emptyOutDir: true,
    // Everything is the server's own: no inline data URLs that the page's CSP would have to allow.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
});
