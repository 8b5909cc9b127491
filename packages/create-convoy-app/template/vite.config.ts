// The page, served by Vite (`npm run dev` starts it beside `convoy dev`; `npm run build` writes it
// to dist/, a static site for any host).
import react from '@vitejs/plugin-react';
import { defineConfig, loadEnv } from 'vite';

export default defineConfig(({ mode }) => {
  // The environment and .env, as `convoy dev` reads them: PORT is Convoy's port.
  const env = loadEnv(mode, '.', '');
  return {
    plugins: [react()],
    define: { __CONVOY_PORT__: JSON.stringify(env.PORT || '3737') },
    server: {
      port: Number(env.WEB_PORT) || 5173,
      // .convoy/ holds the embedded Postgres's files, which change all the time.
      watch: { ignored: ['**/.convoy/**'] },
    },
  };
});
