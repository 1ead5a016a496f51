/**
 * The aggregation server's HTTP surface as both sides name it: the paths server/app.ts registers and
 * the worker fetches, and Hearth's own header. Reply bodies are typed in protocol/api.ts
 * (`JoinReply`, `UpdateReply`, `ErrorReply`), the manifest in protocol/manifest.ts and the update
 * body in protocol/update-format.ts.
 */

/** Paths of the server's routes; `weights` is fastify's pattern (fill it with `weightsPath`). */
export const PATHS = {
  /** GET: liveness and the current version. */
  health: '/healthz',
  /** GET: the current model manifest (revalidated with its ETag). */
  model: '/v1/model',
  /** GET: one version's weights (immutable). */
  weights: '/v1/model/:version/weights',
  /** POST: a single-use round token (`JoinReply`). */
  join: '/v1/rounds/join',
  /** POST: one clipped update in the binary update format (`UpdateReply`). */
  updates: '/v1/updates',
  /** POST: join the forming secure aggregation round (`SecureJoinReply`, protocol/secagg/http.ts). */
  secureJoin: '/v1/secure/join',
  /** POST: one step of a secure aggregation round (fill with `secureStepPath`). */
  secureStep: '/v1/secure/rounds/:round/:step',
  /** GET: the site's catalogue (`CatalogDocument`, ETag); PUT with the operator token replaces it. */
  catalog: '/v1/catalog',
  /** GET: the privacy accountant's report. */
  privacy: '/v1/privacy',
  /** GET: rounds, participants, norms, epsilon (the dashboard's data). */
  stats: '/v1/stats',
  /** GET: the OpenAPI description of the server. */
  openapi: '/v1/openapi.json',
  /** GET: Prometheus metrics. */
  metrics: '/metrics',
} as const;

/** The path of version `version`'s weights (absolute, so it resolves against any base URL). */
export function weightsPath(version: number): string {
  return PATHS.weights.replace(':version', String(version));
}

/**
 * The header carrying the site's key on join and update requests, when the server has per-site
 * keys (`EngineConfig.siteKey`). Lower case: HTTP header names are case-insensitive and Node
 * reports them lower-cased.
 */
export const SITE_KEY_HEADER = 'x-hearth-key';

/** The path of one step of secure round `round`. */
export function secureStepPath(round: string, step: string): string {
  return PATHS.secureStep.replace(':round', round).replace(':step', step);
}
