/**
 * The SDK's configuration: `data-*` attributes on its script tag, optionally overridden by a
 * `window.hearth = {...}` object set before the script loads. Everything is validated here so a
 * typo gives the site owner a clear HEARTH_E_CONFIG error instead of a half-working install.
 */
import { BACKEND_LADDER, type BackendName } from '../protocol/api.js';
import { HearthError } from '../protocol/hearth-error.js';

/** Options of `createHearth()` (ESM) and, as `data-*` attributes, of the script tag. */
export interface HearthOptions {
  /** Aggregation server base URL (`data-endpoint`), absolute http(s). Required. */
  readonly endpoint: string;
  /** URL of `hearth-worker.js` (`data-worker-url`); defaults to next to the SDK script. */
  readonly workerUrl?: string;
  /** Backends to try, in order (`data-backends="wasm,cpu"`); defaults to the whole ladder. */
  readonly backends?: readonly BackendName[];
  /** Allow sharing clipped model updates (`data-uploads="off"` turns it off). Default on. */
  readonly uploads?: boolean;
  /** Visitor actions (not views) between automatic updates (`data-upload-every`, 1..10000). Default 20. */
  readonly uploadEvery?: number;
  /**
   * Capture clicks, views and dwell on `[data-hearth-item]` elements (`data-capture="off"`).
   * Default on.
   */
  readonly capture?: boolean;
  /**
   * What Global Privacy Control or Do Not Track stops (`data-privacy-signal`): `uploads` (default:
   * nothing is shared, the model still learns on the device) or `learning` (no uploads and no
   * on-device learning either; recommendations come from the global model alone).
   */
  readonly privacySignal?: 'uploads' | 'learning';
  /**
   * Fill the last of k >= 2 recommended positions with an exploration item (`data-explore`): one the
   * model ranks just below the list, marked `explore: true`, so the visitor's reaction teaches the
   * model about it. Default off.
   */
  readonly explore?: boolean;
  /** Verbose logging (`data-debug`). Default off. */
  readonly debug?: boolean;
  /**
   * The site's key on the aggregation server (`data-site-key`), when its operator configured sites.
   * Public by nature (it is in the page's HTML): it names the site, it does not authenticate a user.
   */
  readonly siteKey?: string;
}

/** Options with every default filled in and every URL absolute. */
export interface ResolvedOptions {
  readonly endpoint: string;
  readonly workerUrl: string;
  readonly backends: readonly BackendName[];
  readonly uploads: boolean;
  readonly uploadEvery: number;
  readonly capture: boolean;
  readonly privacySignal: 'uploads' | 'learning';
  readonly explore: boolean;
  readonly debug: boolean;
  readonly siteKey?: string;
}

const bad = (detail: string): never => {
  throw new HearthError('HEARTH_E_CONFIG', detail);
};

function httpUrl(name: string, value: unknown, base: string): string {
  try {
    if (typeof value === 'string' && value) {
      const url = new URL(value, base);
      if (/^https?:$/.test(url.protocol)) return url.href;
    }
  } catch {
    // Reported below with the value, like every other bad URL.
  }
  return bad(`${name} must be an http(s) URL: ${String(value)}`);
}

function flag(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'boolean') return value;
  if (value === '' || value === 'on' || value === 'true') return true;
  if (value === 'off' || value === 'false') return false;
  return bad(`${name} must be on/off`);
}

function backends(value: unknown): readonly BackendName[] {
  if (value === undefined || value === null) return BACKEND_LADDER;
  const list = typeof value === 'string' ? value.split(',').map((s) => s.trim()) : value;
  if (!Array.isArray(list) || list.length === 0) return bad('backends must be a non-empty list');
  return list.map((name) => oneOf('backends', name, BACKEND_LADDER));
}

/** One of `allowed`; left out, the first. */
function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (value === undefined || value === null) return allowed[0]!;
  return allowed.includes(value as T)
    ? (value as T)
    : bad(`${name}: ${value} is not in ${allowed}`);
}

function count(name: string, value: unknown, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (!Number.isInteger(n) || (n as number) < 1 || (n as number) > 10_000) {
    return bad(`${name} must be an integer in 1..10000`);
  }
  return n as number;
}

/**
 * Validates raw options (strings from attributes or values from a config object) and fills defaults.
 * `script` is the SDK script's own URL: the default worker lives next to it. URLs the site wrote
 * resolve against `page`, as any attribute in its HTML would (`data-worker-url="/hearth-worker.js"`
 * means the site's own origin, not the CDN's).
 */
export function resolveOptions(
  raw: Record<string, unknown>,
  script: string,
  page = script,
): ResolvedOptions {
  return {
    endpoint: httpUrl('endpoint', raw.endpoint, page),
    workerUrl: raw.workerUrl
      ? httpUrl('workerUrl', raw.workerUrl, page)
      : new URL('hearth-worker.js', script).href,
    backends: backends(raw.backends),
    uploads: flag('uploads', raw.uploads, true),
    uploadEvery: count('uploadEvery', raw.uploadEvery, 20),
    capture: flag('capture', raw.capture, true),
    privacySignal: oneOf('privacySignal', raw.privacySignal, ['uploads', 'learning']),
    explore: flag('explore', raw.explore, false),
    debug: flag('debug', raw.debug, false),
    ...(raw.siteKey === undefined ? {} : { siteKey: siteKey(raw.siteKey) }),
  };
}

function siteKey(value: unknown): string {
  // The server's rule for keys (server/sites.ts): 16..256 printable ASCII characters.
  if (typeof value !== 'string' || !/^[\x21-\x7e]{16,256}$/.test(value)) {
    return bad('siteKey: 16..256 printable ASCII');
  }
  return value;
}

/**
 * Reads the script tag's `data-*` options (the dataset's camelCase names are the option names:
 * `data-upload-every` is `uploadEvery`); values of `override` (window.hearth config) win. Attributes
 * that are not options are ignored.
 */
export function scriptOptions(
  script: HTMLScriptElement,
  override: Record<string, unknown> | undefined,
): Record<string, unknown> {
  return { ...script.dataset, ...override };
}
