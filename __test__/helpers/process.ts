/** Child processes for tests: started, watched, and always stopped. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

export interface Running {
  child: ChildProcess;
  output(): string;
  /**
   * Sends `signal` to the process's whole group, as Ctrl-C in a terminal does (so it reaches a
   * program started through `npx` and `sh -c` too), and resolves once the process has exited.
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function start(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; uid?: number; gid?: number },
): Running {
  // A process group of its own, so that stop() can signal everything it started.
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    // Another user's process (a test run as root playing an image's unprivileged USER).
    ...(options.uid === undefined ? {} : { uid: options.uid }),
    ...(options.gid === undefined ? {} : { gid: options.gid }),
  });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // The group is already gone.
    }
  };
  return {
    child,
    output: () => output,
    async stop(signal = 'SIGINT', timeoutMs = 20_000) {
      if (child.exitCode === null && child.signalCode === null) signalGroup(signal);
      const timer = setTimeout(() => signalGroup('SIGKILL'), timeoutMs);
      const result = await exited;
      clearTimeout(timer);
      // Whatever the leader did, leave nothing of the group behind.
      signalGroup('SIGKILL');
      return result;
    },
  };
}

export async function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number },
): Promise<{ code: number | null; output: string }> {
  const running = start(command, args, { ...options, env: options.env ?? process.env });
  const code = await new Promise<number | null>((resolve) => running.child.once('exit', resolve));
  return { code, output: running.output() };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Polls `url` until it answers 200, or fails with what the process printed. */
export async function waitForHealth(url: string, running: Running, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (running.child.exitCode !== null) {
      throw new Error(`the server exited (${running.child.exitCode}) before it was healthy:\n${running.output()}`);
    }
    try {
      const response = await fetch(`${url}/health`);
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url}/health did not answer within ${timeoutMs} ms:\n${running.output()}`);
}
