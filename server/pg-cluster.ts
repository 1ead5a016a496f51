/**
 * A private, throwaway PostgreSQL cluster for tests: initdb in a temp dir, a server on loopback on a
 * free port, torn down afterwards. Debian's packages are installed when no PostgreSQL is found (CI
 * starts on a bare machine). PostgreSQL refuses to run as root, so as root the cluster belongs to the
 * `postgres` system user (created by the package) and its commands run through `runuser`.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A running test cluster. */
export interface PgCluster {
  /** Connection URL of its `postgres` database, as the test role (trust auth on loopback). */
  readonly url: string;
  /** Stops the server and deletes the cluster's directory. */
  stop(): Promise<void>;
}

/** The bin directory of the newest PostgreSQL under /usr/lib/postgresql, if any. */
function findBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

/** Finds PostgreSQL, installing Debian's package (as root) when it is missing. */
function ensureInstalled(): string {
  const found = findBinDir();
  if (found) return found;
  if (process.getuid?.() !== 0) {
    throw new Error('PostgreSQL is not installed and installing it needs root (apt-get)');
  }
  const apt = (args: string[]): void => {
    execFileSync('apt-get', args, {
      stdio: 'ignore',
      timeout: 300_000,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  };
  try {
    apt(['install', '-y', 'postgresql']);
  } catch {
    // A bare machine has no package lists yet.
    apt(['update']);
    apt(['install', '-y', 'postgresql']);
  }
  const installed = findBinDir();
  if (!installed) throw new Error('apt-get installed postgresql but no initdb was found');
  return installed;
}

/** A TCP port free on loopback a moment ago. */
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

/** Starts a fresh cluster; throws with the reason when PostgreSQL cannot be installed or started. */
export async function startPgCluster(): Promise<PgCluster> {
  const bin = ensureInstalled();
  const root = process.getuid?.() === 0;
  const dir = await mkdtemp(join(tmpdir(), 'hearth-pg-'));
  const run = (tool: string, args: string[]): void => {
    const command = root ? 'runuser' : join(bin, tool);
    const argv = root ? ['-u', 'postgres', '--', join(bin, tool), ...args] : args;
    execFileSync(command, argv, { stdio: 'pipe', timeout: 60_000 });
  };
  try {
    if (root) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      chownSync(dir, uid, gid);
    }
    const data = join(dir, 'data');
    // --no-sync: only initdb's own files; the running server still fsyncs every commit.
    run('initdb', ['-D', data, '-U', 'hearth', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    const port = await freePort();
    run('pg_ctl', [
      '-D',
      data,
      '-l',
      join(dir, 'server.log'),
      '-w',
      '-t',
      '30',
      '-o',
      `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir}`,
      'start',
    ]);
    return {
      url: `postgres://hearth@127.0.0.1:${port}/postgres`,
      async stop() {
        try {
          run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`could not start PostgreSQL: ${(error as Error).message}\n${stderr}`, {
      cause: error,
    });
  }
}
