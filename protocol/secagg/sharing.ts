/**
 * Threshold secret sharing through the audited `shamir-secret-sharing` package (Shamir over
 * GF(256), byte by byte). What this file adds is the shape Hearth relies on, checked:
 * - a share is the secret's length plus one byte, the share's x coordinate (1..255, distinct within
 *   one split and drawn at random by the library), so at most 255 shares per secret;
 * - the library draws its coefficients from its own CSPRNG (`crypto.getRandomValues`), so shares
 *   are not reproducible from a seeded `RandomBytes`; everything else in a round is;
 * - combining fewer than `threshold` shares, or inconsistent ones, returns wrong bytes without an
 *   error: callers check the result (a commitment or a public key), never trust it.
 */
import { combine, split } from 'shamir-secret-sharing';
import { HearthError } from '../errors.js';
import { MAX_HOLDERS } from './params.js';

/** Length of the secrets Hearth shares (self-mask seeds and X25519 secret keys). */
export const SECRET_BYTES = 32;

/** Length of one share of a SECRET_BYTES secret. */
export const SHARE_BYTES = SECRET_BYTES + 1;

/** Splits `secret` into `holders` shares, any `threshold` of which rebuild it. */
export async function splitSecret(
  secret: Uint8Array,
  holders: number,
  threshold: number,
): Promise<Uint8Array[]> {
  if (secret.length !== SECRET_BYTES) {
    throw new HearthError('HEARTH_E_SECAGG_PARAMS', `secrets are ${SECRET_BYTES} bytes`);
  }
  if (!(threshold >= 2 && threshold <= holders && holders <= MAX_HOLDERS)) {
    throw new HearthError(
      'HEARTH_E_SECAGG_PARAMS',
      `cannot split among ${holders} holders with threshold ${threshold}`,
    );
  }
  // The library checks `constructor === Uint8Array`: a Node Buffer or a subclass would be refused.
  return split(Uint8Array.from(secret), holders, threshold);
}

/**
 * Rebuilds a secret from shares (throws HEARTH_E_SECAGG_RECONSTRUCT on malformed or duplicate
 * shares). Passing more than the threshold is fine: consistent shares lie on one polynomial.
 */
export async function combineShares(shares: readonly Uint8Array[]): Promise<Uint8Array> {
  if (shares.length < 2 || shares.length > MAX_HOLDERS) {
    throw new HearthError('HEARTH_E_SECAGG_RECONSTRUCT', `${shares.length} shares`);
  }
  if (shares.some((share) => !(share instanceof Uint8Array) || share.length !== SHARE_BYTES)) {
    throw new HearthError('HEARTH_E_SECAGG_RECONSTRUCT', `shares must be ${SHARE_BYTES} bytes`);
  }
  try {
    return await combine(shares.map((share) => Uint8Array.from(share)));
  } catch (error) {
    throw new HearthError('HEARTH_E_SECAGG_RECONSTRUCT', String(error));
  }
}
