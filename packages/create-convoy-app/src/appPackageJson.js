/**
 * The new app's package.json. Made here rather than copied from the template, so that its
 * @avvos/convoy is always the version published beside this package (the two share a version).
 */
export function appPackageJson({ name, convoyVersion }) {
  return {
    name,
    private: true,
    version: '0.0.0',
    type: 'module',
    engines: { node: '>=20.12' },
    scripts: {
      // Convoy (on an embedded Postgres in .convoy/ unless DATABASE_URL is set) and the page, together.
      dev: 'concurrently --names convoy,web --prefix-colors cyan,magenta --kill-others-on-fail "convoy dev" "vite"',
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
  };
}
