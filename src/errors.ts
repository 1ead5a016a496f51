/**
 * The error the page-side SDK rejects with: the stable `code` to branch on and a message. It does
 * not carry the error catalogue (protocol/errors.ts): the loader has a 2 KB brotli budget and the page
 * only needs codes. Errors raised in the engine cross the wire with their full catalogue message.
 */
import type { ErrorCode } from '../protocol/errors.js';

/** A Hearth failure seen by the page; `code` is one of the catalogue's `HEARTH_E_*` codes. */
export class HearthError extends Error {
  override readonly name = 'HearthError';

  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}
