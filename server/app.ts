/**
 * The HTTP surface of the aggregation server, as a fastify instance (tests drive it with `inject()`,
 * start.ts puts it on a socket). Routes:
 *   GET  /healthz                     liveness and current version
 *   GET  /v1/model                    current manifest (ETag "m<v>-<settings>", revalidated)
 *   GET  /v1/model/:version/weights   a version's weights in --weights-dtype (ETag "w<v>-<dtype>", immutable)
 *   POST /v1/rounds/join              one-time round token
 *   POST /v1/updates                  a clipped model delta in the binary update format
 *   POST /v1/secure/join              join the forming secure aggregation round
 *   POST /v1/secure/rounds/:r/:step   one step of a secure round (secure-rounds.ts)
 *   GET  /v1/catalog                  the site's catalogue (ETag "c<v>-<digest>", revalidated)
 *   PUT  /v1/catalog                  replace it (operator token; catalog-routes.ts)
 *   GET  /v1/privacy                  the privacy accountant: cumulative epsilon, budget
 *   GET  /v1/stats                    rounds, participants, norms, epsilon, HR@20 (the dashboard's data)
 *   GET  /dashboard (+ /dashboard/*)  the operator dashboard page and its assets
 *   GET  /v1/openapi.json             the OpenAPI 3.1 description of all of the above
 * The POST routes sit behind access.ts (rate limit; with sites configured, key and origin).
 */
import { randomBytes } from 'node:crypto';
import compress from '@fastify/compress';
import cors from '@fastify/cors';
import type { Socket } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { accessControl } from './access.js';
import { registerCatalogRoutes } from './catalog-routes.js';
import { registerDashboard } from './dashboard.js';
import { buildStats, publicStats } from './stats.js';
import { operatorCheck } from './operator.js';
import { VersionEvaluator, type ValidationSessions } from './validation.js';
import { clientIdentity, JoinBudget } from './join-budget.js';
import { rollBackIfWorse } from './rollback.js';
import { RoundGuard, type Judgement } from './round-guard.js';
import { DASHBOARD_SCHEMAS, registerOpenApi, ROUTE_SCHEMAS } from './openapi.js';
import { roundExpiry } from './round-expiry.js';
import { checkJoinWindow } from './round-windows.js';
import { SiteRegistry } from './sites.js';
import type { JoinReply, UpdateReply } from '../protocol/api.js';
import { HearthError } from '../protocol/errors.js';
import { WEIGHTS_DTYPES, type WeightsDtype } from '../protocol/manifest.js';
import { fnv1a32 } from '../protocol/hash.js';
import { PATHS, SITE_KEY_HEADER } from '../protocol/routes.js';
import {
  SECAGG_CONTENT_TYPE,
  SECURE_DEVICE_HEADER,
  SECURE_STEPS,
  SEND_STEPS,
  type SecureStep,
} from '../protocol/secagg/http.js';
import { encodeWeights } from '../protocol/weights-codec.js';
import { ROUND_TOKEN_BYTES, tokenToHex, UPDATE_CONTENT_TYPE } from '../protocol/update-format.js';
import { MAX_BODY_LIMIT_BYTES, updateBodyLimit, type ServerConfig } from './config.js';
import type { GaussianRng } from './gaussian.js';
import { toErrorReply } from './http-errors.js';
import { RequestCounters, renderMetrics } from './metrics.js';
import { ingestUpdate, maxParamsFor, roundPolicy } from './ingest.js';
import { SecureRounds } from './secure-rounds.js';
import { newInstanceId, Peers } from './peers.js';
import { assertBudgetAllowsRound, privacyReport, privacyReportJson } from './privacy.js';
import { bytesToFloat32 } from './float32-bytes.js';
import { KEPT_KINDS, KeptBodies } from './kept-bodies.js';
import type { RoundExpiry, Store } from './store.js';
import { largestUpdateParams, layoutFieldsOf, servedManifest } from './versions.js';

/** What buildApp needs. */
export interface AppOptions {
  readonly store: Store;
  readonly config: ServerConfig;
  /** Source of the central DP noise; node:crypto by default (tests inject one). */
  readonly rng?: GaussianRng;
  /** Clock in epoch milliseconds, for the round deadline and the rate limit (tests inject one). */
  readonly now?: () => number;
  /** Validation sessions (`--validation`): each published version's HR@20 is reported. */
  readonly validation?: ValidationSessions;
  /** This instance's id among those sharing the store (peers.ts); a fresh one by default. */
  readonly instanceId?: string;
}

/** A route as fastify registered it. */
export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
}

const ROUTES = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/**
 * Every route registered on an app built by buildApp, including the HEAD twins fastify adds to GET
 * routes and the CORS preflight catch-all: what the OpenAPI test holds the document against.
 */
export function registeredRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  return ROUTES.get(app) ?? [];
}

/** How long a secure round's fetch step waits for its stage to close before answering 204. */
const SECURE_POLL_MS = 20_000;

/** Body limit of the small JSON routes; only /v1/updates takes a large body. */
const JSON_BODY_LIMIT = 64 * 1024;

/** Builds the server's fastify instance; the store must already hold a model version. */
export function buildApp(options: AppOptions): FastifyInstance {
  const { store, config } = options;
  const now = options.now ?? Date.now;
  // With a validation set, each new version is evaluated in the background and rolled back when
  // its HR@20 falls too far (rollback.ts).
  const evaluator =
    options.validation &&
    new VersionEvaluator(store, options.validation, async (hitRates) => {
      const rolled = await rollBackIfWorse(store, config, hitRates);
      if (!rolled) return;
      app.log.warn(rolled, 'validation HR@20 dropped: republished an earlier version');
    });
  const app = Fastify({
    logger: config.logLevel === 'silent' ? false : { level: config.logLevel },
    bodyLimit: JSON_BODY_LIMIT,
    // Behind a proxy, request.ip is the client's address that many hops back (X-Forwarded-For).
    // (A function: fastify's numeric form did not walk the header back in measurement here.)
    trustProxy:
      config.trustProxyHops > 0
        ? (_address: string, hop: number) => hop < config.trustProxyHops
        : false,
  });
  bodyDeadline(app, config.requestTimeoutSeconds * 1000);
  const routes: RegisteredRoute[] = [];
  ROUTES.set(app, routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });
  const { gate, chargeUnmatched } = accessControl(app, {
    sites: new SiteRegistry(config.sites),
    rateLimitPerMinute: config.rateLimitPerMinute,
  });

  const counters = new RequestCounters();
  const joins = new JoinBudget(config.joinsPerRound);
  const guard =
    config.roundGuard === 'off'
      ? undefined
      : new RoundGuard({
          window: config.roundGuardWindow,
          threshold: config.roundGuardThreshold,
          clipNorm: config.clipNorm,
        });
  /** A round the guard found anomalous: logged, and with `--round-guard rollback` undone. */
  const onAnomalous = async (judgement: Judgement, version: number): Promise<void> => {
    app.log.warn(judgement, 'round statistics beyond the window');
    if (config.roundGuard !== 'rollback' || !guard) return;
    try {
      const republished = await store.republish(version - 1, version, layoutFieldsOf(config));
      if (republished === undefined) return;
      guard.rollbacks++;
      app.log.warn({ from: version, to: version - 1, version: republished }, 'round rolled back');
    } catch (error) {
      // The update itself was stored: its device is answered 202 whatever happens here.
      app.log.error(error, 'round guard rollback failed');
    }
  };
  app.addHook('onResponse', async (request, reply) => {
    counters.response(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode);
  });
  app.setErrorHandler((error, request, reply) => {
    const { status, body, internal } = toErrorReply(error);
    counters.error(body.error.code);
    if (internal) request.log.error({ err: error }, 'request failed');
    // A full disk is temporary: say when to come back.
    if (status === 503) void reply.header('retry-after', '60');
    void reply.code(status).header('cache-control', 'no-store').send(body);
  });
  app.setNotFoundHandler(async (request, reply) => {
    await chargeUnmatched(request, reply);
    throw new HearthError('HEARTH_E_NOT_FOUND', `${request.method} ${request.url}`);
  });

  // Registered before any route, so that its hook sees them all: replies of 1 KiB or more are sent in
  // brotli or gzip where the request accepts it (the model and the catalogue are kept compressed by
  // kept-bodies.ts instead). Request bodies are never decompressed: a body's size limit is its size.
  void app.register(compress, {
    encodings: ['br', 'gzip'],
    threshold: 1024,
    globalDecompression: false,
  });

  // The SDK runs on third-party sites, so without configured sites any origin may read the model and
  // post updates; with sites, config.corsOrigins is exactly their origins (see resolveConfig).
  void app.register(cors, {
    origin: config.corsOrigins === true ? true : [...config.corsOrigins],
    methods: ['GET', 'HEAD', 'POST'],
    allowedHeaders: ['Content-Type', 'If-None-Match', SITE_KEY_HEADER, SECURE_DEVICE_HEADER],
    exposedHeaders: ['ETag', 'Retry-After'],
    maxAge: 600,
  });

  // fastify rejects an empty body sent as application/json; `POST /v1/rounds/join` takes one happily.
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') done(null, undefined);
    else json(request, body.toString(), done);
  });

  // Every route below has a schema, and @fastify/swagger, registered first, reads them all.
  registerOpenApi(app);
  void app.register(async (app) => {
    app.get(PATHS.health, { schema: ROUTE_SCHEMAS.health }, async () => ({
      ok: true,
      version: await store.latestVersion(),
    }));

    const manifests = new KeptBodies(KEPT_KINDS.manifest);
    app.get(
      PATHS.model,
      { schema: ROUTE_SCHEMAS.getModel, compress: false },
      async (request, reply) => {
        const version = await store.latestVersion();
        const manifest = version === undefined ? undefined : await store.getManifest(version);
        if (!manifest) throw new HearthError('HEARTH_E_MODEL_NOT_FOUND', 'no model published yet');
        const served = servedManifest(manifest, config);
        // The federation settings and the weights' dtype come from the config, not the stored
        // version, so they are part of the tag: an operator who changes the clip bound or the dtype
        // must not leave devices on a cached old value.
        const settings = JSON.stringify([served.federation, served.weights.dtype]);
        const etag = `"m${served.version}-${fnv1a32(settings).toString(36)}"`;
        return manifests.serve(request, reply, etag, () => JSON.stringify(served));
      },
    );

    // Versions never change, so the last weights served are worth keeping: every device of a round
    // downloads the same ones.
    const weightBodies = new KeptBodies(KEPT_KINDS.weights);
    app.get<{ Params: { version: string }; Querystring: { dtype?: string } }>(
      PATHS.weights,
      { schema: ROUTE_SCHEMAS.getWeights, compress: false },
      async (request, reply) => {
        const param = request.params.version;
        const version = /^[1-9][0-9]{0,9}$/.test(param) ? Number(param) : NaN;
        const manifest = Number.isSafeInteger(version)
          ? await store.getManifest(version)
          : undefined;
        if (!manifest) throw new HearthError('HEARTH_E_MODEL_NOT_FOUND', `version ${param}`);
        // `?dtype=` names the encoding (the served manifest's URL carries the configured one).
        const dtype = (request.query.dtype ?? 'float32') as WeightsDtype;
        if (!WEIGHTS_DTYPES.includes(dtype)) {
          throw new HearthError('HEARTH_E_MODEL_NOT_FOUND', `no weights in dtype ${dtype}`);
        }
        return weightBodies.serve(request, reply, `"w${version}-${dtype}"`, async () => {
          const bytes = await store.getWeightBytes(version);
          if (!bytes) throw new HearthError('HEARTH_E_MODEL_NOT_FOUND', `version ${param}`);
          return dtype === 'float32'
            ? bytes
            : encodeWeights(bytesToFloat32(bytes), manifest.tensors, dtype);
        });
      },
    );

    const operator = operatorCheck(config.operatorToken);
    registerCatalogRoutes(app, {
      store,
      operator,
      layoutFields: layoutFieldsOf(config),
      charge: chargeUnmatched,
    });

    /** The round expiry (and round windows) at this instant; `options.rng` draws a window's noise. */
    const expiryNow = (): RoundExpiry => roundExpiry(config, now(), options.rng);

    /**
     * Closes the round windows that ended before `expiry.now` (round-windows.ts) where a request
     * must see them charged before the store would close them itself; a closed window may have
     * published a version to evaluate.
     */
    const closeWindows = async (expiry: RoundExpiry): Promise<void> => {
      if ((await store.abandonExpiredRound(expiry)) !== undefined) void evaluator?.refresh();
    };

    app.get(PATHS.privacy, { schema: ROUTE_SCHEMAS.getPrivacy }, async (_request, reply) => {
      // Windows that ended are charged before epsilon is reported.
      const expiry = expiryNow();
      if (expiry.windows) await closeWindows(expiry);
      const report = privacyReport(await store.privacyLedger(), config);
      void reply.header('cache-control', 'no-store');
      return privacyReportJson(report);
    });

    // Its counters move with each single upload: the operator's only.
    app.get(PATHS.metrics, { schema: ROUTE_SCHEMAS.getMetrics }, async (request, reply) => {
      operator.require(request, 'the metrics');
      void reply
        .header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
        .header('cache-control', 'no-store');
      return renderMetrics(store, config, counters, guard);
    });

    // The operator sees every round; anyone else only what aggregates over published rounds.
    app.get(PATHS.stats, { schema: ROUTE_SCHEMAS.getStats }, async (request, reply) => {
      void reply.header('cache-control', 'no-store').header('vary', 'authorization');
      const stats = await buildStats(store, config, evaluator);
      return operator.is(request) ? stats : publicStats(stats);
    });

    registerDashboard(app, DASHBOARD_SCHEMAS);

    // Generated from the routes' schemas once the app is ready (no-cache: a deployed change is seen
    // at once).
    app.get(PATHS.openapi, { schema: ROUTE_SCHEMAS.getOpenApi }, async (_request, reply) => {
      void reply.header('cache-control', 'no-cache');
      return app.swagger();
    });

    /** Refuses a request of the mode this server does not run. */
    const requireMode = (mode: ServerConfig['aggregation']) => {
      if (config.aggregation !== mode) {
        throw new HearthError(
          'HEARTH_E_AGGREGATION_MODE',
          `this server runs ${config.aggregation}`,
        );
      }
    };

    app.post(
      PATHS.join,
      { onRequest: gate, schema: ROUTE_SCHEMAS.joinRound },
      async (request, reply): Promise<JoinReply> => {
        requireMode('plaintext');
        const expiry = expiryNow();
        if (expiry.windows) checkJoinWindow(request.body, expiry.windows.current);
        // A token for a round that may never publish would only waste a device's work and upload. The
        // authoritative check runs again inside the aggregation transaction (for a window, this is
        // the check: it is charged when it ends, published or not).
        if (config.epsilonBudget !== Infinity) {
          // With windows, the ended ones are charged first: the check must see them.
          if (expiry.windows) await closeWindows(expiry);
          assertBudgetAllowsRound(await store.privacyLedger(), config);
        }
        const token = tokenToHex(randomBytes(ROUND_TOKEN_BYTES));
        // Closes the windows that ended (unless done above), as the deadline's expiry does.
        const ticket = await store.joinRound(token, expiry);
        // A window that ended may have published on the way.
        if (expiry.windows) void evaluator?.refresh();
        void reply.header('cache-control', 'no-store');
        return { token, version: ticket.version, round: ticket.round };
      },
    );

    // The update route's body limit follows the model size, known only once the store is read.
    void app.register(async (scope) => {
      const version = await store.latestVersion();
      const manifest = version === undefined ? undefined : await store.getManifest(version);
      if (!manifest)
        throw new Error('the store has no model version; seed it before building the app');
      const bodyLimit = updateBodyLimit(largestUpdateParams(manifest, config), config);
      const maxParams = maxParamsFor(bodyLimit);
      scope.addContentTypeParser(
        UPDATE_CONTENT_TYPE,
        { parseAs: 'buffer', bodyLimit },
        (_request, body, done) => done(null, body),
      );
      scope.post(
        PATHS.updates,
        { bodyLimit, onRequest: gate, schema: ROUTE_SCHEMAS.postUpdate },
        async (request, reply) => {
          requireMode('plaintext');
          // Any other content type was parsed by another parser (JSON, text) or had no body at all.
          if (!Buffer.isBuffer(request.body)) {
            throw new HearthError('HEARTH_E_CONTENT_TYPE', `expected ${UPDATE_CONTENT_TYPE}`);
          }
          // One place per client identity in the round the update lands in, taken inside the store's
          // transaction (a retry on a moved layout keeps it; a refusal gives it back).
          const place = joins.place(clientIdentity(request.ip));
          let result: UpdateReply;
          try {
            result = await ingestUpdate(request.body, {
              store,
              config,
              maxParams,
              ...(options.rng ? { rng: options.rng } : {}),
              // The store closes the windows that ended before it stores the update.
              expiry: expiryNow(),
              admit: place.admit,
              ...(guard ? { guard, onAnomalous } : {}),
            });
          } catch (error) {
            place.release();
            throw error;
          }
          // A new version: evaluate it in the background, so the dashboard has its HR@20 soon.
          if (evaluator && result.received >= config.minCohort) void evaluator.refresh();
          return reply.code(202).header('cache-control', 'no-store').send(result);
        },
      );

      // Secure aggregation: a masked input is 4 bytes a coordinate, at most the whole model's; the
      // other messages carry at most 255 shares of about 100 bytes each.
      // With several instances, a round's requests that land here go to the one running it.
      const peers = new Peers({
        store,
        self: options.instanceId ?? newInstanceId(),
        ...(config.instanceUrl !== undefined ? { url: config.instanceUrl } : {}),
        ...(config.operatorToken !== undefined ? { operatorToken: config.operatorToken } : {}),
        timeoutMs: SECURE_POLL_MS + 10_000,
        now,
      });
      const secure = new SecureRounds({
        store,
        config,
        policy: roundPolicy(config, options.rng),
        now,
        onPublished: () => void evaluator?.refresh(),
        instance: peers.self,
        claim: (round) => peers.claim(round),
        release: (round) => peers.release(round),
        ...(guard
          ? {
              guard,
              onAnomalous: (judgement: Judgement) =>
                app.log.warn(judgement, 'secure round sum beyond the window'),
            }
          : {}),
      });
      app.addHook('onReady', async () => peers.start());
      app.addHook('onClose', async () => {
        secure.close();
        await peers.stop();
      });
      // A request another instance forwarded has been through its gate already.
      const stepGate: typeof gate = async (request, reply) => {
        if (!peers.isPeer(request)) await gate(request, reply);
      };
      const secureLimit = Math.min(
        Math.max(64 * 1024, 64 + 4 * largestUpdateParams(manifest, config)),
        MAX_BODY_LIMIT_BYTES,
      );
      scope.addContentTypeParser(
        SECAGG_CONTENT_TYPE,
        { parseAs: 'buffer', bodyLimit: secureLimit },
        (_request, body, done) => done(null, body),
      );
      scope.post(
        PATHS.secureJoin,
        { onRequest: stepGate, schema: ROUTE_SCHEMAS.joinSecureRound },
        async (request, reply) => {
          requireMode('secure');
          if (config.epsilonBudget !== Infinity) {
            assertBudgetAllowsRound(await store.privacyLedger(), config);
          }
          // The instance whose round is forming takes the join, with the client it came from; a round
          // opened here that lost its claim to another instance's sends the join there.
          const client = peers.forwardedClient(request) ?? clientIdentity(request.ip);
          for (let attempt = 0; attempt < 3; attempt++) {
            if (await peers.routeJoin(request, reply, client)) return reply;
            const joined = await secure.join(client);
            if (joined) return reply.header('cache-control', 'no-store').send(joined);
            if (peers.isPeer(request)) break;
          }
          throw new HearthError('HEARTH_E_SECAGG_ROUND', 'another instance took the forming round');
        },
      );
      scope.post<{ Params: { round: string; step: string } }>(
        PATHS.secureStep,
        { bodyLimit: secureLimit, onRequest: stepGate, schema: ROUTE_SCHEMAS.secureRoundStep },
        async (request, reply) => {
          requireMode('secure');
          const { round, step } = request.params;
          if (
            !/^[0-9a-f]{32}$/.test(round) ||
            !(SECURE_STEPS as readonly string[]).includes(step)
          ) {
            throw new HearthError('HEARTH_E_NOT_FOUND', `${request.method} ${request.url}`);
          }
          if (!peers.owns(round)) return peers.forward(round, request, reply);
          const header = request.headers[SECURE_DEVICE_HEADER];
          const secret = typeof header === 'string' ? header : undefined;
          void reply.header('cache-control', 'no-store');
          if (SEND_STEPS.includes(step as SecureStep)) {
            if (!Buffer.isBuffer(request.body)) {
              throw new HearthError('HEARTH_E_CONTENT_TYPE', `expected ${SECAGG_CONTENT_TYPE}`);
            }
            secure.accept(round, secret, step as SecureStep, request.body);
            return reply.code(202).send({ accepted: true });
          }
          const answer = await secure.fetch(round, secret, step as SecureStep, SECURE_POLL_MS);
          if (!answer) return reply.code(204).send();
          if (answer.kind === 'json') return answer.body;
          return reply
            .type(SECAGG_CONTENT_TYPE)
            .send(Buffer.from(answer.body.buffer, answer.body.byteOffset, answer.body.length));
        },
      );
    });
  });

  return app;
}

/**
 * Every request ends: from its headers to its parsed body a request has `ms`, then its socket is
 * closed (a client announcing a body it never sends could otherwise hold the socket for good: Node's
 * own request timeout is minutes, checked every 30 s). The clock stops once the body is in, so a
 * request the server is still working on (a round's aggregation) is never cut; it covers unknown
 * paths too, whose bodies fastify also waits for.
 */
function bodyDeadline(app: FastifyInstance, ms: number): void {
  // fastify's inject() hands requests a socket stand-in without timers: nothing to bound there.
  const socketOf = (request: FastifyRequest): Socket | undefined => {
    const socket = request.raw.socket as Socket | undefined;
    return typeof socket?.setTimeout === 'function' ? socket : undefined;
  };
  // One listener per request, removed when its clock stops: a keep-alive socket carries many
  // requests (a secure round's device polls), and setTimeout(ms, cb) would add one each time.
  const closers = new WeakMap<FastifyRequest, () => void>();
  app.addHook('onRequest', async (request) => {
    const socket = socketOf(request);
    if (!socket) return;
    const close = () => socket.destroy();
    closers.set(request, close);
    socket.setTimeout(ms);
    socket.once('timeout', close);
  });
  const stop = async (request: FastifyRequest): Promise<void> => {
    const socket = socketOf(request);
    const close = closers.get(request);
    if (!socket || !close) return;
    socket.setTimeout(0);
    socket.removeListener('timeout', close);
    closers.delete(request);
  };
  app.addHook('preHandler', stop);
  app.addHook('onResponse', stop);
}
