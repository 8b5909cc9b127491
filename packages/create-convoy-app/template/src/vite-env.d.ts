/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** Where the page's Convoy server is, when it is not `convoy dev` on this host (set it for `npm run build`). */
  readonly VITE_CONVOY_URL?: string;
}

/** `convoy dev`'s port (PORT, or 3737), put in by vite.config.ts. */
declare const __CONVOY_PORT__: string;
