/**
 * A server of a spec file's own, for the specs that need settings the stack's server does not have
 * (noise, a sketch, q = 0, secure rounds): started before the file's tests on a free loopback port
 * with a fresh SQLite file in a temporary folder, and closed, its folder deleted, after them.
 */
import { test } from '@playwright/test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig, type ServerConfig } from '../server/config.js';
import { startServer, type RunningServer } from '../server/start.js';

/** The running server and the SQLite file it stores in. */
export interface OwnServer {
  readonly server: RunningServer;
  readonly dbPath: string;
}

/**
 * Registers the file's beforeAll and afterAll that start and stop a server with `settings` (a
 * function: the stack's folder is known only once the stack is up). Returns a getter for the running
 * server, valid inside the file's tests.
 */
export function ownServer(name: string, settings: () => Partial<ServerConfig>): () => OwnServer {
  let dir: string | undefined;
  let own: OwnServer | undefined;
  test.beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `hearth-e2e-${name}-`));
    const dbPath = join(dir, `${name}.sqlite`);
    const server = await startServer(
      resolveConfig({
        ...settings(),
        port: 0,
        host: '127.0.0.1',
        dbPath,
      }),
    );
    own = { server, dbPath };
  });
  test.afterAll(async () => {
    await own?.server.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    if (!own) throw new Error(`the ${name} server is not running`);
    return own;
  };
}
