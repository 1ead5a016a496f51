/**
 * Starts e2e/stack.ts as a child process, waits for its ready line, and hands the URLs to the tests
 * through environment variables (Playwright passes globalSetup's env to its workers).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export default async function globalSetup(): Promise<() => Promise<void>> {
  const root = join(import.meta.dirname, '..');
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'e2e', 'stack.ts')], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const info = await new Promise<Record<string, string | number>>((resolve, reject) => {
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const line = buffer.split('\n').find((l) => l.startsWith('HEARTH_E2E '));
      if (line) resolve(JSON.parse(line.slice('HEARTH_E2E '.length)));
    });
    child.on('exit', (code) => reject(new Error(`e2e stack exited early with code ${code}`)));
    setTimeout(() => reject(new Error('e2e stack did not start within 240 s')), 240_000);
  });
  process.env.HEARTH_SERVER_URL = String(info.server);
  process.env.HEARTH_DEMO_URL = String(info.demo);
  process.env.HEARTH_MIN_COHORT = String(info.minCohort);
  process.env.HEARTH_CDN_URL = String(info.cdn);
  process.env.HEARTH_HOST_URL = String(info.host);
  process.env.HEARTH_E2E_DIR = String(info.dir);
  process.env.HEARTH_E2E_OPERATOR_TOKEN = String(info.operatorToken);
  return async () => {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  };
}
