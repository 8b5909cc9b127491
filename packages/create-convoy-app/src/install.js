/** Installs the new app's dependencies, then writes convoy/_generated/ so the editor knows `api` at once. */
import { spawn } from 'node:child_process';

function run(command, args, cwd) {
  return new Promise((resolve) => {
    // A shell on Windows, where package managers are .cmd files.
    const child = spawn(command, args, { cwd, stdio: 'inherit', shell: process.platform === 'win32' });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
  });
}

export async function installDependencies(target, packageManager) {
  return run(packageManager, ['install'], target);
}

/** `convoy codegen` through the app's own script; `convoy dev` writes the same files when it starts. */
export async function writeGeneratedCode(target, packageManager) {
  return run(packageManager, ['run', 'codegen'], target);
}
