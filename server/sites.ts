/**
 * Per-site API keys and origin allow-lists, read from the `--config <file>` JSON:
 *
 *   { "sites": [{ "id": "shop", "key": "<at least 16 chars>", "origins": ["https://shop.example"] }] }
 *
 * The key is not a secret from the site's visitors (it ships in the page's script); it names the site,
 * so an operator can tell sites apart, revoke one, and pair each with the origins it may post from.
 * Keys are still compared in constant time: a key that leaks byte by byte through timing would let
 * anyone forge uploads for a site whose page they never loaded.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { HearthError } from '../protocol/errors.js';

/** One site allowed to join rounds and post updates. */
export interface SiteConfig {
  /** Operator's name for the site (logs, rate-limit keys); unique. */
  readonly id: string;
  /** The value devices send in `x-hearth-key`; unique, 16 to 256 printable ASCII characters. */
  readonly key: string;
  /** Origins (`scheme://host[:port]`) the site's pages run on; an `Origin` header must be one. */
  readonly origins: readonly string[];
}

/** Shortest key accepted: anything shorter is guessable by the rate-limited brute force it invites. */
export const MIN_SITE_KEY_LENGTH = 16;

const KEY_PATTERN = new RegExp(`^[\\x21-\\x7e]{${MIN_SITE_KEY_LENGTH},256}$`);

/** The canonical form of an origin, or a HEARTH_E_CONFIG naming the bad entry. */
function canonicalOrigin(value: unknown, where: string, bad: (detail: string) => never): string {
  if (typeof value !== 'string') bad(`${where} must be a string`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return bad(`${where} is not a URL: '${value}'`);
  }
  // Browsers send the serialised origin (lower-case host, no default port, no path), so an entry
  // with a path or a trailing slash could never match; refusing it beats a silent 403 later.
  if (url.origin === 'null' || url.origin !== value.toLowerCase()) {
    bad(`${where} must be an origin like https://shop.example, got '${value}'`);
  }
  return url.origin;
}

/**
 * Validates the `sites` array of a config file (or of a programmatic config); errors are
 * HEARTH_E_CONFIG prefixed with `source`, so the operator sees which file and entry to fix.
 */
export function parseSites(value: unknown, source = 'sites'): SiteConfig[] {
  const bad: (detail: string) => never = (detail) => {
    throw new HearthError('HEARTH_E_CONFIG', `${source} ${detail}`);
  };
  if (!Array.isArray(value)) bad('must be an array');
  const ids = new Set<string>();
  const keys = new Set<string>();
  return value.map((entry: unknown, i): SiteConfig => {
    const where = `[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      bad(`${where} must be an object`);
    }
    const { id, key, origins, ...rest } = entry as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) bad(`${where} has unknown fields: ${unknown.join(', ')}`);
    if (typeof id !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(id)) {
      bad(`${where}.id must be 1 to 64 letters, digits, '.', '_' or '-'`);
    }
    if (ids.has(id)) bad(`${where}.id '${id}' is used twice`);
    ids.add(id);
    // Printable ASCII without spaces: what survives an HTTP header unchanged.
    if (typeof key !== 'string' || !KEY_PATTERN.test(key)) {
      bad(`${where}.key must be ${MIN_SITE_KEY_LENGTH} to 256 printable ASCII characters`);
    }
    if (keys.has(key)) bad(`${where}.key is shared with another site`);
    keys.add(key);
    if (!Array.isArray(origins)) bad(`${where}.origins must be an array of origins`);
    const canonical = origins.map((o: unknown, j) =>
      canonicalOrigin(o, `${where}.origins[${j}]`, bad),
    );
    return { id, key, origins: [...new Set(canonical)] };
  });
}

/**
 * Reads a `--config` file. Unknown top-level fields are refused so that a misspelt `sites` does not
 * leave the server open.
 */
export function loadConfigFile(path: string): { sites: SiteConfig[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new HearthError(
      'HEARTH_E_CONFIG',
      `--config cannot read ${path}: ${(error as Error).message}`,
    );
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new HearthError('HEARTH_E_CONFIG', `--config ${path} must hold a JSON object`);
  }
  const { sites, ...rest } = raw as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) {
    throw new HearthError(
      'HEARTH_E_CONFIG',
      `--config ${path} has unknown fields: ${unknown.join(', ')}`,
    );
  }
  return { sites: sites === undefined ? [] : parseSites(sites, `--config ${path}: sites`) };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** Looks up sites by key in constant time, and checks origins against each site's list. */
export class SiteRegistry {
  private readonly entries: readonly { site: SiteConfig; digest: Buffer; origins: Set<string> }[];

  /** Prepares the digests once; `sites` is already validated. */
  constructor(sites: readonly SiteConfig[]) {
    this.entries = sites.map((site) => ({
      site,
      digest: digest(site.key),
      origins: new Set(site.origins),
    }));
  }

  /** True when sites are configured, i.e. the POST routes are closed to requests without a key. */
  get enabled(): boolean {
    return this.entries.length > 0;
  }

  /**
   * The site whose key is `presented`, or undefined. Digests make the compared buffers equal in
   * length (timingSafeEqual needs that, and comparing raw keys would leak their lengths), and every
   * site is compared, so the time taken says nothing about which site, if any, matched.
   */
  match(presented: string): SiteConfig | undefined {
    const candidate = digest(presented);
    let found: SiteConfig | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(candidate, entry.digest) && found === undefined) found = entry.site;
    }
    return found;
  }

  /** True when `origin` is on `site`'s allow-list. */
  allowsOrigin(site: SiteConfig, origin: string): boolean {
    return this.entries.some((e) => e.site === site && e.origins.has(origin));
  }

  /** Every origin of every site: what CORS may answer. */
  allOrigins(): string[] {
    return [...new Set(this.entries.flatMap((e) => [...e.origins]))];
  }
}
