// The example's React app (web/), served by Vite. `npm run example` at the repository root starts
// it together with `convoy dev`.
import path from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Inside this repository the app uses the Convoy built here (dist/). An app of your own installs
// @avvos/convoy and needs no aliases.
const repository = path.resolve(import.meta.dirname, '..', '..');

export default defineConfig({
  root: path.join(import.meta.dirname, 'web'),
  plugins: [react()],
  resolve: {
    alias: {
      '@avvos/convoy/client': path.join(repository, 'dist', 'client', 'index.js'),
      '@avvos/convoy/react': path.join(repository, 'dist', 'react', 'index.js'),
    },
  },
  server: { port: 5173 },
});
