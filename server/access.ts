/**
 * The gate in front of the POST routes (join and updates): rate limit, site key, origin. It runs as an
 * onRequest hook, before the body is read, so a refused client cannot make the server buffer an
 * update body first.
 *
 * The rate limit is @fastify/rate-limit's: a count per client key over a one-minute window, kept in
 * its bounded LRU (an attacker rotating source addresses only pushes other clients' counts out,
 * never grows memory), with its `retry-after` and `x-ratelimit-*` headers. Order matters. Requests
 * with a wrong or missing key are charged to their address before the 401, so keys cannot be guessed
 * faster than the rate limit. Requests with a valid key are charged to (site, address): a per-key
 * count alone would be one budget shared by every device of a site (they all ship the same key),
 * and one busy network would starve the rest. An address is an IPv4 address or an IPv6 /64
 * (join-budget.ts clientIdentity), as for the join budget.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HearthError } from '../protocol/errors.js';
import { SITE_KEY_HEADER } from '../protocol/routes.js';
import { clientIdentity } from './join-budget.js';
import type { SiteConfig, SiteRegistry } from './sites.js';

/** What the gate needs. */
export interface AccessOptions {
  readonly sites: SiteRegistry;
  /** Requests per minute per client; 0 turns rate limiting off. */
  readonly rateLimitPerMinute: number;
}

/** Client keys the rate limit keeps at once: a few MB at most. */
export const RATE_LIMIT_CLIENTS = 50_000;

/** Access control: the POST routes' gate, and the charge every unmatched request pays. */
export interface Access {
  /** The onRequest hook of the POST routes: rate limit, key and origin. */
  gate(request: FastifyRequest, reply: FastifyReply): Promise<void>;
  /**
   * Charges a request to a path the server does not have against its address's budget, so probing
   * or flooding unknown paths is limited like any POST (throws HEARTH_E_RATE_LIMIT when spent).
   */
  chargeUnmatched(request: FastifyRequest, reply: FastifyReply): Promise<void>;
}

/** The site whose key `request` presents, if any (a repeated header counts as none). */
function siteOf(sites: SiteRegistry, request: FastifyRequest): SiteConfig | undefined {
  const presented = request.headers[SITE_KEY_HEADER];
  return typeof presented === 'string' ? sites.match(presented) : undefined;
}

/** Registers the rate limit on `app` and builds its access control. */
export function accessControl(app: FastifyInstance, options: AccessOptions): Access {
  const { sites } = options;
  if (options.rateLimitPerMinute > 0) {
    void app.register(rateLimit, {
      global: false,
      max: options.rateLimitPerMinute,
      timeWindow: 60_000,
      cache: RATE_LIMIT_CLIENTS,
      keyGenerator: (request) => {
        const address = clientIdentity(request.ip);
        const site = sites.enabled ? siteOf(sites, request) : undefined;
        return site ? `site:${site.id}:${address}` : address;
      },
      errorResponseBuilder: (_request, context) =>
        new HearthError('HEARTH_E_RATE_LIMIT', `retry in ${Math.ceil(context.ttl / 1000)} s`),
    });
  }
  // The plugin's hook exists once it has loaded (before the first request), so it is made then.
  let hook: ((request: FastifyRequest, reply: FastifyReply) => Promise<void>) | undefined;
  const charge = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (options.rateLimitPerMinute === 0) return;
    hook ??= app.rateLimit() as (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
    await hook(request, reply);
  };

  const gate = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    await charge(request, reply);
    if (!sites.enabled) return;
    const site = siteOf(sites, request);
    if (!site) {
      const presented = request.headers[SITE_KEY_HEADER];
      throw new HearthError(
        'HEARTH_E_API_KEY',
        presented === undefined ? `no ${SITE_KEY_HEADER} header` : 'unknown key',
      );
    }
    const origin = request.headers.origin;
    // No Origin: a server-to-server or non-browser client, which a browser's CORS check cannot
    // constrain anyway; the key alone decides. A present Origin must be one of the site's.
    if (origin !== undefined && !sites.allowsOrigin(site, origin)) {
      throw new HearthError('HEARTH_E_ORIGIN', `${origin} is not an origin of site ${site.id}`);
    }
  };
  return { gate, chargeUnmatched: charge };
}
