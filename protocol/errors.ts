/**
 * The one catalogue of Hearth error codes. Codes are stable and never reused: clients (the SDK, site
 * owners' monitoring, devices deciding whether to refetch) branch on them. A removed code stays here
 * marked `retired` so nobody hands it out again.
 */
import { useErrorCatalogue } from './hearth-error.js';

/** One catalogue entry: a human message and, where the error crosses HTTP, its status. */
export interface ErrorSpec {
  readonly message: string;
  readonly status: number;
  readonly retired?: true;
}

export const ERRORS = {
  // Update payloads (POST /v1/updates); see protocol/update-format.ts.
  HEARTH_E_UPDATE_TRUNCATED: {
    status: 400,
    message: 'update body is shorter than its header says',
  },
  HEARTH_E_UPDATE_TOO_LARGE: { status: 413, message: 'update body is larger than allowed' },
  HEARTH_E_UPDATE_MAGIC: { status: 400, message: 'update body does not start with the HRTU magic' },
  HEARTH_E_UPDATE_FORMAT_VERSION: { status: 400, message: 'unsupported update format version' },
  HEARTH_E_UPDATE_DTYPE: { status: 400, message: 'unsupported update dtype' },
  HEARTH_E_UPDATE_HEADER: { status: 400, message: 'malformed update header' },
  HEARTH_E_UPDATE_SHAPE: { status: 422, message: 'update does not match the model layout' },
  HEARTH_E_UPDATE_NONFINITE: { status: 422, message: 'update contains NaN or Infinity' },
  HEARTH_E_UPDATE_NORM: { status: 422, message: 'update norm exceeds the clipping bound' },
  HEARTH_E_UPDATE_PAYLOAD: {
    status: 400,
    message: 'update payload holds a scale or level its dtype never encodes',
  },
  HEARTH_E_UPDATE_VERSION_UNKNOWN: {
    status: 422,
    message: 'update names a model version that does not exist',
  },
  HEARTH_E_UPDATE_STALE: {
    status: 409,
    message: 'update is based on an old model version; refetch the model',
  },
  HEARTH_E_ROUND_TOKEN: {
    status: 403,
    message: 'round token is missing, unknown, or already used',
  },
  HEARTH_E_ROUND_WINDOW: {
    status: 409,
    message:
      "the join does not name the server's current round window; flip the coin of the current one",
  },
  HEARTH_E_CONTENT_TYPE: { status: 415, message: 'unsupported content type' },
  HEARTH_E_BAD_REQUEST: { status: 400, message: 'malformed request' },
  HEARTH_E_NOT_FOUND: { status: 404, message: 'no such resource' },
  HEARTH_E_MODEL_NOT_FOUND: { status: 404, message: 'no such model version' },
  HEARTH_E_INTERNAL: { status: 500, message: 'internal server error' },
  HEARTH_E_STORAGE_FULL: {
    status: 503,
    message: "the server's storage is full; nothing of this request was kept, retry later",
  },
  // Device side (worker and SDK).
  HEARTH_E_CONFIG: { status: 0, message: 'invalid Hearth configuration' },
  HEARTH_E_EVENT_INVALID: { status: 0, message: 'invalid interaction event' },
  HEARTH_E_ARGUMENT: { status: 0, message: 'invalid argument' },
  HEARTH_E_NO_BACKEND: { status: 0, message: 'no tfjs backend passed its self-test' },
  HEARTH_E_BACKEND_LOST: {
    status: 0,
    message: 'the GPU under the tfjs backend was lost during this call',
  },
  HEARTH_E_MODEL_FETCH: { status: 0, message: 'could not fetch the global model' },
  HEARTH_E_MODEL_INVALID: {
    status: 0,
    message: 'the global model manifest or weights are invalid',
  },
  HEARTH_E_STORAGE: { status: 0, message: 'local storage is unavailable; running in memory' },
  HEARTH_E_WORKER_START: { status: 0, message: 'the Hearth worker could not start' },
  HEARTH_E_NOT_READY: { status: 0, message: 'Hearth is not initialised yet' },
  HEARTH_E_UPLOAD: { status: 0, message: 'the model update could not be sent' },
  // Data files read by tools/.
  HEARTH_E_DATASET: { status: 0, message: 'dataset file is missing or malformed' },
  // Differential privacy (protocol/privacy/, server accounting).
  HEARTH_E_PRIVACY_PARAMS: { status: 0, message: 'invalid differential privacy parameters' },
  HEARTH_E_PRIVACY_BUDGET: {
    status: 403,
    message: 'the privacy budget is spent; no further rounds are run',
  },
  // Access control of the server's POST routes (server/access.ts).
  HEARTH_E_API_KEY: { status: 401, message: 'missing or unknown site API key (x-hearth-key)' },
  HEARTH_E_ORIGIN: { status: 403, message: 'origin is not allowed for this site' },
  HEARTH_E_RATE_LIMIT: { status: 429, message: 'too many requests from this client; retry later' },
  // One client identity (an IPv4 address, an IPv6 /64) places at most --joins-per-round updates in
  // a round (server/join-budget.ts).
  HEARTH_E_JOIN_BUDGET: {
    status: 429,
    message: 'this client already has an update in the current round; retry in a later round',
  },
  // Page side: the host page's Content-Security-Policy refused the worker (README: CSP).
  HEARTH_E_CSP: {
    status: 0,
    message: "the page's Content-Security-Policy blocks the Hearth worker",
  },
  HEARTH_E_CAPTURE: {
    status: 0,
    message: 'hearth-capture.js could not be loaded; clicks and views are not captured',
  },
  // Secure aggregation (protocol/secagg/): SecAgg+, Bell et al. CCS 2020.
  HEARTH_E_SECAGG_PARAMS: { status: 0, message: 'invalid secure aggregation round parameters' },
  HEARTH_E_SECAGG_THRESHOLD: {
    status: 409,
    message: 'too few devices remain for secure aggregation; the round is abandoned',
  },
  HEARTH_E_SECAGG_STAGE: {
    status: 409,
    message: 'the secure aggregation round is not in the stage this step belongs to',
  },
  HEARTH_E_SECAGG_MESSAGE: {
    status: 400,
    message: 'malformed or inconsistent secure aggregation message',
  },
  HEARTH_E_SECAGG_SHARE: {
    status: 0,
    message: 'an encrypted key share failed authentication',
  },
  HEARTH_E_SECAGG_UNMASK_REQUEST: {
    status: 0,
    message: 'unmask request refused: it asks for both shares of one device or is inconsistent',
  },
  HEARTH_E_SECAGG_RECONSTRUCT: {
    status: 0,
    message: 'key shares did not reconstruct the secret the device committed to',
  },
  HEARTH_E_SECAGG_ROUND: {
    status: 404,
    message: 'no such secure aggregation round for this device (it ended, or the server restarted)',
  },
  HEARTH_E_SECAGG_NORM: {
    status: 422,
    message: 'the unmasked sum is larger than its devices could have sent; the round is abandoned',
  },
  HEARTH_E_SECAGG_ANOMALY: {
    status: 422,
    message:
      "the unmasked sum stands out from the recent rounds' (--round-guard rollback); the round is abandoned",
  },
  // The site's catalogue (protocol/catalog.ts, server/catalog-*.ts).
  HEARTH_E_CATALOG: { status: 422, message: 'the catalogue is malformed' },
  HEARTH_E_CATALOG_TOO_LARGE: { status: 413, message: 'the catalogue is larger than allowed' },
  HEARTH_E_CATALOG_NOT_FOUND: { status: 404, message: 'this server has no catalogue' },
  HEARTH_E_OPERATOR_TOKEN: {
    status: 401,
    message: 'missing or wrong operator token (Authorization: Bearer); site keys are not accepted',
  },
  HEARTH_E_UNKNOWN_ITEM: {
    status: 0,
    message: 'the page tracks item ids the catalogue does not know; they are ignored',
  },
  HEARTH_E_AGGREGATION_MODE: {
    status: 409,
    message: 'this server runs the other aggregation mode (secure or plaintext) for this request',
  },
} as const satisfies Record<string, ErrorSpec>;

/** A code from the catalogue. */
export type ErrorCode = keyof typeof ERRORS;

// The class lives in its own file so the page can have it without this catalogue (its size budget).
useErrorCatalogue(ERRORS);

export { HearthError } from './hearth-error.js';

/** True when `value` is a code in the catalogue (used to revive errors that crossed a boundary). */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERRORS, value);
}
