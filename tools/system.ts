/**
 * Starts the whole system in this process: the aggregation server (SQLite) and the built demo site
 * served by Vite. `npm start` and the e2e suite both start Hearth through this one function, so the
 * tests exercise the same start-up a newcomer gets.
 */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { preview } from 'vite';
import { resolveConfig, type ServerConfig } from '../server/config.js';
import { startServer, type RunningServer } from '../server/start.js';

const root = resolve(fileURLToPath(import.meta.url), '..', '..');

/** A running server + demo pair. */
export interface RunningSystem {
  readonly server: RunningServer;
  readonly demoUrl: string;
  close(): Promise<void>;
}

/** Starts the server with `server` settings, then the demo (from dist/) pointed at it. */
export async function startSystem(
  server: Partial<ServerConfig>,
  demo: { port: number; host: string; strictPort: boolean },
): Promise<RunningSystem> {
  const running = await startServer(resolveConfig(server));
  // vite.config.ts's demoEndpoint() plugin reads this when the preview server starts.
  process.env.HEARTH_ENDPOINT = running.url;
  const site = await preview({
    configFile: join(root, 'vite.config.ts'),
    logLevel: 'warn',
    preview: demo,
  });
  return {
    server: running,
    demoUrl: site.resolvedUrls?.local[0] ?? `http://${demo.host}:${demo.port}/`,
    async close() {
      await site.close();
      await running.close();
    },
  };
}

/** Closes `system` and exits on SIGINT / SIGTERM. */
export function closeOnSignals(system: RunningSystem): void {
  const stop = async (): Promise<void> => {
    await system.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}
