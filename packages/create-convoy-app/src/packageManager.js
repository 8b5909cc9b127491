/**
 * Which package manager ran `create convoy-app`, and the commands its user types. Each of npm,
 * pnpm, yarn and bun names itself first in `npm_config_user_agent` ("pnpm/9.1.0 npm/? node/…")
 * when it runs a package's bin.
 */

export const packageManagers = ['npm', 'pnpm', 'yarn', 'bun'];

export function detectPackageManager(userAgent = process.env.npm_config_user_agent ?? '') {
  const name = userAgent.split('/')[0];
  return packageManagers.includes(name) ? name : 'npm';
}

/** `npm install` / `yarn`, and `npm run dev` / `pnpm dev`: what the next steps print. */
export function commandsOf(packageManager) {
  return {
    install: packageManager === 'yarn' ? 'yarn' : `${packageManager} install`,
    // npm and bun need `run`; for bun, `bun dev` would look for a file before the script.
    run: (script) =>
      packageManager === 'npm' || packageManager === 'bun'
        ? `${packageManager} run ${script}`
        : `${packageManager} ${script}`,
  };
}
