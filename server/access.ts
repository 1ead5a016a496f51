/**
 * The gate in front of the POST routes (join and updates): rate limit, site key, origin. It runs as an
 * onRequest hook, before the body is read, so a refused client cannot make the server buffer an
 * update body first.
 *
 * Order matters. Requests with a wrong or missing key are charged to their IP's bucket before the
 * 401, so keys cannot be guessed faster than the rate limit. Requests with a valid key are charged to
 * a bucket of (IP, site): a per-key bucket alone would be one budget shared by every device of a site
 * (they all ship the same key), and one busy network would starve the rest.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HearthError } from '../protocol/errors.js';
import { SITE_KEY_HEADER } from '../protocol/routes.js';
import { RateLimiter } from './rate-limit.js';
import type { SiteConfig, SiteRegistry } from './sites.js';

/** What the gate needs. */
export interface AccessOptions {
  readonly sites: SiteRegistry;
  /** Requests per minute per client; 0 turns rate limiting off. */
  readonly rateLimitPerMinute: number;
  /** Clock in milliseconds, shared with the rest of the app. */
  readonly now: () => number;
}

/** Access control: the POST routes' gate, and the charge every unmatched request pays. */
export interface Access {
  /** The onRequest hook of the POST routes: key, origin and rate limit. */
  gate(request: FastifyRequest, reply: FastifyReply): Promise<void>;
  /**
   * Charges a request to a path the server does not have against its address's budget, so probing
   * or flooding unknown paths is limited like any POST (throws HEARTH_E_RATE_LIMIT when spent).
   */
  chargeUnmatched(request: FastifyRequest, reply: FastifyReply): void;
}

/** Builds the access control of the app (one rate-limit bucket per client, shared by both). */
export function accessControl(options: AccessOptions): Access {
  const { sites } = options;
  const limiter =
    options.rateLimitPerMinute > 0
      ? new RateLimiter({ perMinute: options.rateLimitPerMinute, now: options.now })
      : undefined;

  const charge = (client: string, reply: FastifyReply): void => {
    const decision = limiter?.take(client);
    if (decision && !decision.ok) {
      // Set before throwing: the error handler adds to the reply's headers, it does not reset them.
      void reply.header('retry-after', String(decision.retryAfterSeconds));
      throw new HearthError('HEARTH_E_RATE_LIMIT', `retry in ${decision.retryAfterSeconds} s`);
    }
  };

  const gate = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!sites.enabled) {
      charge(`ip:${request.ip}`, reply);
      return;
    }
    const presented = request.headers[SITE_KEY_HEADER];
    // A repeated header arrives as an array: ambiguous, so treated as no key at all.
    const site: SiteConfig | undefined =
      typeof presented === 'string' ? sites.match(presented) : undefined;
    if (!site) {
      charge(`ip:${request.ip}`, reply);
      throw new HearthError(
        'HEARTH_E_API_KEY',
        presented === undefined ? `no ${SITE_KEY_HEADER} header` : 'unknown key',
      );
    }
    charge(`site:${site.id}:ip:${request.ip}`, reply);
    const origin = request.headers.origin;
    // No Origin: a server-to-server or non-browser client, which a browser's CORS check cannot
    // constrain anyway; the key alone decides. A present Origin must be one of the site's.
    if (origin !== undefined && !sites.allowsOrigin(site, origin)) {
      throw new HearthError('HEARTH_E_ORIGIN', `${origin} is not an origin of site ${site.id}`);
    }
  };
  return { gate, chargeUnmatched: (request, reply) => charge(`ip:${request.ip}`, reply) };
}
