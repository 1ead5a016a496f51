/**
 * Starting a server from a config: open the store, seed it if empty, listen. Used by the CLI
 * (main.ts), by tools that run a local server, and by the real-socket tests.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import type { ServerConfig } from './config.js';
import { layoutFieldsOf } from './versions.js';
import { expireRoundsAtStart } from './round-expiry.js';
import { seedIfEmpty } from './seed.js';
import { isCatalogUrl, readCatalog } from './catalog-source.js';
import type { CatalogItem } from '../protocol/catalog.js';
import { isPostgresUrl, PgStore } from './pg-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';
import { loadValidationSessions } from './validation.js';

/** A listening server. */
export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:8787`. */
  readonly url: string;
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Current model version at start. */
  readonly version: number;
  /**
   * The catalogue at start: the version served, and a warning when `--catalog` could not be read
   * and the stored catalogue is served instead.
   */
  readonly catalog?: {
    readonly version: number;
    readonly items: number;
    readonly warning?: string;
  };
  readonly app: FastifyInstance;
  readonly store: Store;
  /** Stops listening, waits for in-flight requests, then closes the store. */
  close(): Promise<void>;
}

/** Seams for tests; production passes none. */
export interface StartOptions {
  /** Clock in epoch milliseconds (round deadline, rate limit). */
  readonly now?: () => number;
  /** Runs inside the aggregation transaction just before its commit (crash tests kill here). */
  readonly beforePublishCommit?: () => void;
}

/**
 * The store `config.dbPath` names: PostgreSQL for a `postgres://` URL (instances may share it),
 * otherwise a SQLite file, its directory created if missing.
 */
export async function openStore(config: ServerConfig, options: StartOptions = {}): Promise<Store> {
  if (isPostgresUrl(config.dbPath)) {
    // The crash hook is SQLite's: PostgreSQL's own crash safety is not this project's to test.
    if (options.beforePublishCommit) throw new Error('beforePublishCommit needs the SQLite store');
    return PgStore.open(config.dbPath);
  }
  if (config.dbPath !== ':memory:') mkdirSync(dirname(config.dbPath), { recursive: true });
  return new SqliteStore(
    config.dbPath,
    options.beforePublishCommit ? { beforePublishCommit: options.beforePublishCommit } : {},
  );
}

/**
 * Opens the store of `config.dbPath` (SQLite file or PostgreSQL URL), seeds it if needed, abandons a round whose deadline
 * passed while the server was down, and listens on host:port.
 */
export async function startServer(
  config: ServerConfig,
  options: StartOptions = {},
): Promise<RunningServer> {
  // Read before the store opens: a bad file is a config error, and nothing is left to close.
  const validation =
    config.validationPath === undefined ? undefined : loadValidationSessions(config.validationPath);
  const source = config.catalogSource;
  const read = source === undefined ? undefined : await readCatalogSafely(source);
  const store = await openStore(config, options);
  const now = options.now ?? Date.now;
  let app: FastifyInstance | undefined;
  try {
    const atStart = read && (await catalogAtStart(store, read));
    const catalog = atStart?.summary;
    let version = await seedIfEmpty(store, config, atStart?.items);
    // A stored model meets a catalogue with new items: they get rows now, not at the next round.
    if (atStart) version = (await store.growToCatalog(layoutFieldsOf(config))) ?? version;
    await expireRoundsAtStart(store, config, now());
    app = buildApp({ store, config, now, ...(validation ? { validation } : {}) });
    if (source !== undefined && isCatalogUrl(source) && config.catalogRefreshMinutes > 0) {
      refreshCatalog(app, store, config, source, config.catalogRefreshMinutes * 60_000);
    }
    await app.listen({ port: config.port, host: config.host });
    const address = app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : config.port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const started = app;
    return {
      url: `http://${host}:${port}`,
      port,
      version,
      ...(catalog ? { catalog } : {}),
      app: started,
      store,
      async close() {
        await started.close();
        await store.close();
      },
    };
  } catch (error) {
    await app?.close();
    await store.close();
    throw error;
  }
}

type CatalogRead = { readonly items: readonly CatalogItem[] } | { readonly error: unknown };

async function readCatalogSafely(source: string): Promise<CatalogRead> {
  try {
    return { items: await readCatalog(source) };
  } catch (error) {
    return { error };
  }
}

/**
 * Stores the catalogue read at start (a new version only if it changed); returns what start reports
 * and the items served (a cold start seeds its model over them). One that could not be read stops
 * the start while nothing is stored; with a stored catalogue (a feed down for a moment), that one
 * is served and the start says so.
 */
async function catalogAtStart(
  store: Store,
  read: CatalogRead,
): Promise<{
  readonly summary: NonNullable<RunningServer['catalog']>;
  readonly items: readonly CatalogItem[];
}> {
  if ('items' in read) {
    const { catalog } = await store.replaceCatalog(read.items);
    return { summary: { version: catalog.version, items: read.items.length }, items: read.items };
  }
  const stored = await store.catalog();
  if (!stored) throw read.error;
  return {
    summary: {
      version: stored.version,
      items: stored.items.length,
      warning: `${(read.error as Error).message}; serving the stored catalogue v${stored.version}`,
    },
    items: stored.items,
  };
}

/** Re-reads a catalogue URL every `ms`; a failed read is logged and the stored catalogue stays. */
function refreshCatalog(
  app: FastifyInstance,
  store: Store,
  config: ServerConfig,
  url: string,
  ms: number,
): void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    readCatalog(url)
      .then((items) => store.replaceCatalog(items))
      .then(async ({ catalog, changed }) => {
        if (!changed) return;
        const modelVersion = await store.growToCatalog(layoutFieldsOf(config));
        app.log.info({ version: catalog.version, modelVersion }, 'catalogue refreshed');
      })
      .catch((error: unknown) => app.log.warn({ err: error }, 'catalogue refresh failed'))
      .finally(() => (running = false));
  }, ms);
  timer.unref();
  app.addHook('onClose', async () => clearInterval(timer));
}
