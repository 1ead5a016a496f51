/**
 * The operator token (`HEARTH_OPERATOR_TOKEN` or `--operator-token-file`): what only the site's
 * operator may do or see, as distinct from the site keys that sit in every public script tag. It
 * changes the catalogue (catalog-routes.ts) and reads what is per device: the full stats behind the
 * dashboard and the Prometheus metrics, whose counters move with each single upload.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { HearthError } from '../protocol/errors.js';
import { SITE_KEY_HEADER } from '../protocol/routes.js';

/** SHA-256 of a token, so comparing two never leaks their lengths or a prefix through timing. */
function digestOf(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** Checks requests against the configured operator token (none: nobody is the operator). */
export interface OperatorCheck {
  /** True when the request carries the operator token as `Authorization: Bearer`. */
  is(request: FastifyRequest): boolean;
  /** Throws HEARTH_E_OPERATOR_TOKEN, saying why, unless the request carries the operator token. */
  require(request: FastifyRequest, what: string): void;
}

export function operatorCheck(token: string | undefined): OperatorCheck {
  const expected = token === undefined ? undefined : digestOf(token);
  const presented = (request: FastifyRequest): string | undefined => {
    const header = request.headers.authorization;
    return typeof header === 'string' ? /^Bearer ([\x21-\x7e]+)$/.exec(header)?.[1] : undefined;
  };
  const matches = (given: string | undefined) =>
    expected !== undefined && given !== undefined && timingSafeEqual(digestOf(given), expected);
  return {
    is: (request) => matches(presented(request)),
    require(request, what) {
      if (!expected) {
        throw new HearthError(
          'HEARTH_E_OPERATOR_TOKEN',
          `${what} needs the operator token: start the server with HEARTH_OPERATOR_TOKEN or --operator-token-file`,
        );
      }
      const given = presented(request);
      if (given === undefined) {
        throw new HearthError(
          'HEARTH_E_OPERATOR_TOKEN',
          request.headers[SITE_KEY_HEADER] !== undefined
            ? `a site key (${SITE_KEY_HEADER}) is public and never grants ${what}`
            : `${what} needs the operator token (Authorization: Bearer)`,
        );
      }
      if (!matches(given)) throw new HearthError('HEARTH_E_OPERATOR_TOKEN', 'wrong operator token');
    },
  };
}
