import { describe, expect, it } from 'vitest';
import { errorFromWire, errorToWire } from './error-wire.js';
import { ERRORS, HearthError, isErrorCode } from './errors.js';

/**
 * Every code the catalogue has ever handed out, with its HTTP status (0: device side). Clients
 * branch on codes, so this list only grows: a code removed, renamed or given another status fails
 * here; one no longer raised stays in the catalogue marked `retired` (and in RETIRED below).
 */
const CODES: Record<string, number> = {
  HEARTH_E_UPDATE_TRUNCATED: 400,
  HEARTH_E_UPDATE_TOO_LARGE: 413,
  HEARTH_E_UPDATE_MAGIC: 400,
  HEARTH_E_UPDATE_FORMAT_VERSION: 400,
  HEARTH_E_UPDATE_DTYPE: 400,
  HEARTH_E_UPDATE_HEADER: 400,
  HEARTH_E_UPDATE_SHAPE: 422,
  HEARTH_E_UPDATE_NONFINITE: 422,
  HEARTH_E_UPDATE_NORM: 422,
  HEARTH_E_UPDATE_PAYLOAD: 400,
  HEARTH_E_UPDATE_VERSION_UNKNOWN: 422,
  HEARTH_E_UPDATE_STALE: 409,
  HEARTH_E_ROUND_TOKEN: 403,
  HEARTH_E_ROUND_WINDOW: 409,
  HEARTH_E_CONTENT_TYPE: 415,
  HEARTH_E_BAD_REQUEST: 400,
  HEARTH_E_NOT_FOUND: 404,
  HEARTH_E_MODEL_NOT_FOUND: 404,
  HEARTH_E_INTERNAL: 500,
  HEARTH_E_STORAGE_FULL: 503,
  HEARTH_E_CONFIG: 0,
  HEARTH_E_EVENT_INVALID: 0,
  HEARTH_E_ARGUMENT: 0,
  HEARTH_E_NO_BACKEND: 0,
  HEARTH_E_BACKEND_LOST: 0,
  HEARTH_E_MODEL_FETCH: 0,
  HEARTH_E_MODEL_INVALID: 0,
  HEARTH_E_STORAGE: 0,
  HEARTH_E_WORKER_START: 0,
  HEARTH_E_NOT_READY: 0,
  HEARTH_E_UPLOAD: 0,
  HEARTH_E_DATASET: 0,
  HEARTH_E_PRIVACY_PARAMS: 0,
  HEARTH_E_PRIVACY_BUDGET: 403,
  HEARTH_E_API_KEY: 401,
  HEARTH_E_ORIGIN: 403,
  HEARTH_E_RATE_LIMIT: 429,
  HEARTH_E_JOIN_BUDGET: 429,
  HEARTH_E_CSP: 0,
  HEARTH_E_CAPTURE: 0,
  HEARTH_E_SECAGG_PARAMS: 0,
  HEARTH_E_SECAGG_THRESHOLD: 409,
  HEARTH_E_SECAGG_STAGE: 409,
  HEARTH_E_SECAGG_MESSAGE: 400,
  HEARTH_E_SECAGG_SHARE: 0,
  HEARTH_E_SECAGG_UNMASK_REQUEST: 0,
  HEARTH_E_SECAGG_RECONSTRUCT: 0,
  HEARTH_E_SECAGG_ROUND: 404,
  HEARTH_E_SECAGG_NORM: 422,
  HEARTH_E_SECAGG_ANOMALY: 422,
  HEARTH_E_AGGREGATION_MODE: 409,
  HEARTH_E_CATALOG: 422,
  HEARTH_E_CATALOG_TOO_LARGE: 413,
  HEARTH_E_CATALOG_NOT_FOUND: 404,
  HEARTH_E_OPERATOR_TOKEN: 401,
  HEARTH_E_UNKNOWN_ITEM: 0,
};

/** Codes no longer raised; they stay in the catalogue so nobody hands them out again. */
const RETIRED: readonly string[] = [];

describe('error catalogue', () => {
  it('holds exactly the pinned codes, with their statuses', () => {
    const statuses = Object.fromEntries(Object.entries(ERRORS).map(([c, s]) => [c, s.status]));
    expect(statuses).toEqual(CODES);
    const specs: Record<string, { readonly status: number; readonly retired?: true }> = ERRORS;
    expect(Object.keys(ERRORS).filter((code) => specs[code]!.retired)).toEqual(RETIRED);
  });

  it('has well-formed, unique codes with messages and plausible statuses', () => {
    const codes = Object.keys(ERRORS);
    expect(new Set(codes).size).toBe(codes.length);
    const messages = new Set<string>();
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^HEARTH_E_[A-Z0-9_]+$/);
      expect(spec.message.length).toBeGreaterThan(5);
      expect(messages.has(spec.message)).toBe(false);
      messages.add(spec.message);
      expect(spec.status === 0 || (spec.status >= 400 && spec.status < 600)).toBe(true);
    }
  });

  it('keeps code and message across the worker boundary', () => {
    const original = new HearthError('HEARTH_E_UPDATE_STALE', 'base 3, current 4');
    const revived = errorFromWire(structuredClone(errorToWire(original)));
    expect(revived).toBeInstanceOf(HearthError);
    expect((revived as HearthError).code).toBe('HEARTH_E_UPDATE_STALE');
    expect((revived as HearthError).status).toBe(409);
    expect(revived.message).toBe(original.message);
    const plain = errorFromWire(errorToWire(new TypeError('boom')));
    expect(plain.name).toBe('TypeError');
    expect(isErrorCode('HEARTH_E_NOPE')).toBe(false);
  });
});
