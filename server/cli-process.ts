/**
 * The server CLI (`server/main.ts`) as a child process: what the durability tests and the load
 * benchmark run, so they exercise the real binary rather than an in-process app. main.ts prints
 * LISTENING_PREFIX followed by the URL once it accepts connections; that line is the handshake.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Start of the line main.ts prints when it listens; the URL follows it. */
export const LISTENING_PREFIX = 'Hearth server listening on';

const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..');

/** A started server process. */
export interface CliServer {
  readonly url: string;
  readonly child: ChildProcess;
}

/**
 * Spawns `node --import tsx server/main.ts <args>` and resolves once it prints its URL. Rejects (and
 * kills the child) if it exits first or does not listen within `timeoutMs`; the error carries what
 * it printed.
 */
export function spawnServerCli(
  args: readonly string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CliServer> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const listening = new RegExp(`${LISTENING_PREFIX} (http://\\S+)`);
  return new Promise((resolvePromise, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start in ${timeoutMs} ms: ${out}${err}`));
    }, timeoutMs);
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = listening.exec(out);
      if (match) {
        clearTimeout(timer);
        resolvePromise({ url: match[1]!, child });
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before listening: ${out}${err}`));
    });
  });
}

/** Resolves when `child` has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => child.once('exit', () => done()));
}
