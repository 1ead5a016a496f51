/**
 * The one error class Hearth throws across every boundary (server, worker, page). It lives apart
 * from the catalogue (protocol/errors.ts) because the page's loader has a 2 KB brotli budget
 * (e2e/bundles.spec.ts) and the catalogue's messages alone would cost about 0.8 KB of it: the page
 * imports this file only and branches on `code`. Loading protocol/errors.ts fills in the catalogue,
 * so the server and the worker get its message and HTTP status on every error they raise.
 */
import type { ErrorCode, ErrorSpec } from './errors.js';

/** The catalogue's entries once protocol/errors.ts has been loaded; empty until then. */
const specs: Partial<Record<ErrorCode, ErrorSpec>> = {};

/** Makes the catalogue known to the class (called once, by protocol/errors.ts). */
export function useErrorCatalogue(catalogue: Readonly<Record<ErrorCode, ErrorSpec>>): void {
  Object.assign(specs, catalogue);
}

/**
 * A Hearth failure; `code` is what callers branch on. The message is the catalogue's, then
 * `detail`; where the catalogue is not loaded (the page) it is `detail` alone and `status` is 0.
 */
export class HearthError extends Error {
  override readonly name = 'HearthError';
  // `declare`: set in the constructor only, so no field initialisers are emitted (loader bytes).
  declare readonly code: ErrorCode;
  /** The HTTP status where the error crosses HTTP; 0 for device-side errors. */
  declare readonly status: number;

  constructor(code: ErrorCode, detail?: string) {
    const spec = specs[code];
    super(spec ? (detail ? `${spec.message}: ${detail}` : spec.message) : detail);
    this.code = code;
    this.status = spec?.status ?? 0;
  }
}
