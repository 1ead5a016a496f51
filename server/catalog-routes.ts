/**
 * The catalogue's routes:
 *   GET /v1/catalog   the items devices may be shown (ETag "c<version>-<digest>", revalidated)
 *   PUT /v1/catalog   replaces it; needs the operator token (Authorization: Bearer), never a site key;
 *                     items the model lacks get rows in a version published at once (growToCatalog)
 * A PUT body is a catalogue file in any format catalog-parse.ts reads, named by its content type (or
 * recognised from its first characters). A bad body is refused with the line or entry at fault and
 * the stored catalogue stays as it was.
 */
import { ROUTE_SCHEMAS } from './openapi.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CATALOG_LIMITS } from '../protocol/catalog.js';
import { HearthError } from '../protocol/errors.js';
import { PATHS } from '../protocol/routes.js';
import { parseCatalog } from './catalog-parse.js';
import { KEPT_KINDS, KeptBodies } from './kept-bodies.js';
import type { OperatorCheck } from './operator.js';
import type { RoundPolicy, Store, StoredCatalog } from './store.js';

/** What the catalogue routes need from the app. */
export interface CatalogRouteOptions {
  readonly store: Store;
  readonly operator: OperatorCheck;
  /** The update layout a version grown for new items names (versions.ts layoutFieldsOf). */
  readonly layoutFields: RoundPolicy['layoutFields'];
  /** Charges a request against its address's rate limit (access.ts). */
  readonly charge: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
}

/** The catalogue's ETag: its version and the first 64 bits of its digest. */
export function catalogEtag(catalog: Pick<StoredCatalog, 'version' | 'digest'>): string {
  return `"c${catalog.version}-${catalog.digest.slice(0, 16)}"`;
}

export function registerCatalogRoutes(app: FastifyInstance, options: CatalogRouteOptions): void {
  const { store } = options;
  // The served body of the current catalogue, kept while its digest stands (large catalogues).
  const served = new KeptBodies(KEPT_KINDS.catalog);

  app.get(
    PATHS.catalog,
    { schema: ROUTE_SCHEMAS.getCatalog, compress: false },
    async (request, reply) => {
      // The head first: a revalidation (most requests) never reads or parses the items.
      const head = await store.catalogHead();
      if (!head) throw new HearthError('HEARTH_E_CATALOG_NOT_FOUND', 'no catalogue loaded');
      return served.serve(request, reply, catalogEtag(head), async () => {
        const catalog = await store.catalog();
        if (!catalog) throw new HearthError('HEARTH_E_CATALOG_NOT_FOUND', 'no catalogue loaded');
        const { version, updatedAt, items } = catalog;
        return JSON.stringify({ version, updatedAt, items });
      });
    },
  );

  const operator = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    await options.charge(request, reply);
    options.operator.require(request, 'changing the catalogue');
  };

  // Its own scope: the body is read as text whatever its type (JSON too), up to the catalogue limit.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    // fastify's own too-large error would say "update"; this body is a catalogue.
    scope.setErrorHandler((error) => {
      if ((error as { code?: unknown }).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        throw new HearthError(
          'HEARTH_E_CATALOG_TOO_LARGE',
          `request body: more than ${CATALOG_LIMITS.bytes} bytes`,
        );
      }
      throw error;
    });
    scope.addContentTypeParser(
      '*',
      { parseAs: 'string', bodyLimit: CATALOG_LIMITS.bytes },
      (_request, body, done) => done(null, body),
    );
    scope.put(
      PATHS.catalog,
      { onRequest: operator, bodyLimit: CATALOG_LIMITS.bytes, schema: ROUTE_SCHEMAS.putCatalog },
      async (request, reply) => {
        const text = typeof request.body === 'string' ? request.body : '';
        const contentType = request.headers['content-type'];
        const items = parseCatalog(text, {
          name: 'request body',
          ...(contentType ? { contentType } : {}),
        });
        const { catalog, changed } = await store.replaceCatalog(items);
        // New items are in the model at once, not only after the next round publishes.
        const modelVersion = changed ? await store.growToCatalog(options.layoutFields) : undefined;
        request.log.info(
          { version: catalog.version, items: items.length, changed, modelVersion },
          'catalogue',
        );
        return reply
          .header('etag', catalogEtag(catalog))
          .header('cache-control', 'no-store')
          .send({
            version: catalog.version,
            items: catalog.items.length,
            changed,
            ...(modelVersion === undefined ? {} : { modelVersion }),
          });
      },
    );
  });
}
