/**
 * The `npm run server` command: parse flags, start, report where it listens, and shut down cleanly
 * on SIGINT / SIGTERM (closing the socket first so no update is cut off mid-transaction).
 */
import { HearthError } from '../protocol/errors.js';
import { parseArgs, USAGE } from './config.js';
import { startServer, type StartOptions } from './start.js';
import { LISTENING_PREFIX } from './cli-process.js';

/**
 * Test-only fault injection, read from the environment so the real binary can be crashed on purpose
 * (crash.test.ts): HEARTH_TEST_CRASH_IN_AGGREGATION=1 SIGKILLs the process inside the aggregation
 * transaction, after every write and before the commit.
 */
function testHooks(): StartOptions {
  if (process.env.HEARTH_TEST_CRASH_IN_AGGREGATION !== '1') return {};
  return { beforePublishCommit: () => process.kill(process.pid, 'SIGKILL') };
}

/** The database as printed: a PostgreSQL URL's password must not end up in logs. */
function redact(db: string): string {
  return db.replace(/^(postgres(?:ql)?:\/\/[^:/@]*:)[^@]*@/i, '$1***@');
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const config = parseArgs(argv, process.env);
  const server = await startServer(config, testHooks());
  console.log(
    `${LISTENING_PREFIX} ${server.url} (model version ${server.version}, db ${redact(config.dbPath)})`,
  );
  if (server.catalog) {
    console.log(`Catalogue v${server.catalog.version}: ${server.catalog.items} items`);
    if (server.catalog.warning) console.error(`Warning: ${server.catalog.warning}`);
  }
  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    console.log(`${signal}: closing Hearth server`);
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof HearthError && error.code === 'HEARTH_E_CONFIG') {
    console.error(`${error.message}\n\n${USAGE}`);
    process.exit(2);
  }
  console.error(error instanceof HearthError ? error.message : error);
  process.exit(1);
});
