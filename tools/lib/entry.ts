/** How a command-line program starts: the entry check and the error exit every tool shares. */
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * True when the module at `moduleUrl` (its `import.meta.url`) is the script node was started with,
 * not one imported by it (a test, another tool). Paths go through realpath: npm and tsx may start
 * the script through a link.
 */
export function isEntryPoint(moduleUrl: string): boolean {
  const entry = process.argv[1];
  return !!entry && realpathSync(resolve(entry)) === realpathSync(fileURLToPath(moduleUrl));
}

/**
 * Runs a program's `main`: a failure prints its message alone (a flag mistake needs no stack) and
 * sets exit code 1.
 */
export function runMain(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
