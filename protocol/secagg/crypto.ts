/**
 * The cryptography of a secure aggregation round, each piece from an audited library: X25519
 * from `@noble/curves`, XChaCha20-Poly1305 from `@noble/ciphers`, HKDF-SHA-256 from
 * `@noble/hashes`. This file only decides what goes into them: every key is derived with HKDF
 * under a context naming its purpose, the round and the devices, so no key serves two purposes,
 * two rounds or two directions.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { HearthError } from '../errors.js';
import type { DeviceId } from './params.js';

/** Constant-time byte equality (noble's), for comparing keys and commitments. */
export { equalBytes } from '@noble/ciphers/utils.js';

/** A source of uniformly random bytes; tests pass a seeded one to make a round reproducible. */
export type RandomBytes = (length: number) => Uint8Array;

/** The platform CSPRNG (`crypto.getRandomValues`, in every browser and in Node 20). */
export const defaultRandomBytes: RandomBytes = (length) => randomBytes(length);

/** An X25519 key pair (32-byte secret and public keys). */
export interface KeyPair {
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** HKDF salt: names the protocol and its version, so a later version derives unrelated keys. */
const SALT = utf8ToBytes('hearth-secagg-v1');
const NONCE_BYTES = 24;
const TAG_BYTES = 16;

/** `value` as 4 big-endian bytes. */
export function u32be(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value);
  return bytes;
}

/**
 * An unambiguous context string: purpose, then the round id with its length, then device ids. The
 * length prefix keeps ("ab", 1) and ("a", ...) from ever encoding the same bytes.
 */
export function context(purpose: string, roundId: string, ...ids: DeviceId[]): Uint8Array {
  const round = utf8ToBytes(roundId);
  return concatBytes(utf8ToBytes(purpose), u32be(round.length), round, ...ids.map(u32be));
}

/** A fresh X25519 key pair from `random` (X25519 clamps any 32 bytes into a valid scalar). */
export function generateKeyPair(random: RandomBytes): KeyPair {
  const secretKey = random(32);
  return { secretKey, publicKey: x25519.getPublicKey(secretKey) };
}

/** X25519 public key of `secretKey` (the server checks a rebuilt mask key against it). */
export function publicKeyOf(secretKey: Uint8Array): Uint8Array {
  return x25519.getPublicKey(secretKey);
}

/**
 * The X25519 shared secret of two devices, never used as a key itself (only through HKDF below).
 * noble refuses low-order public keys, which would make it all zeros: a malformed message.
 */
export function agree(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  try {
    return x25519.getSharedSecret(secretKey, publicKey);
  } catch (error) {
    throw new HearthError('HEARTH_E_SECAGG_MESSAGE', `unusable public key: ${String(error)}`);
  }
}

/**
 * Key sealing the shares `sender` sends `receiver`, from their c-key agreement. The direction is in
 * the context, so the two devices of a pair encrypt under different keys from one shared secret.
 */
export function shareKey(
  roundId: string,
  sender: DeviceId,
  receiver: DeviceId,
  shared: Uint8Array,
): Uint8Array {
  return hkdf(sha256, shared, SALT, context('share-key', roundId, sender, receiver), 32);
}

/**
 * PRG key of the pairwise mask of u and v, from their s-key agreement; the same for both, as the
 * ids go into the context in ascending order.
 */
export function pairMaskKey(
  roundId: string,
  u: DeviceId,
  v: DeviceId,
  shared: Uint8Array,
): Uint8Array {
  const info = context('pair-mask', roundId, Math.min(u, v), Math.max(u, v));
  return hkdf(sha256, shared, SALT, info, 32);
}

/** PRG key of a device's self mask, from its seed b_u. */
export function selfMaskKey(roundId: string, owner: DeviceId, seed: Uint8Array): Uint8Array {
  return hkdf(sha256, seed, SALT, context('self-mask', roundId, owner), 32);
}

/**
 * Commitment to the self-mask seed, sent with the shares. Not in the papers:
 * `shamir-secret-sharing` has no integrity check, so without it a wrong share would silently
 * rebuild a wrong seed and the server would publish a garbage sum. HKDF output reveals nothing
 * about a 32-byte random seed.
 */
export function seedCommitment(roundId: string, owner: DeviceId, seed: Uint8Array): Uint8Array {
  return hkdf(sha256, seed, SALT, context('self-commit', roundId, owner), 32);
}

/** Associated data of a share ciphertext: the round, its sender and its receiver. */
function shareAad(roundId: string, sender: DeviceId, receiver: DeviceId): Uint8Array {
  return context('share-aad', roundId, sender, receiver);
}

/** Encrypts `plaintext` from `sender` to `receiver`: a random 24-byte nonce, then ciphertext. */
export function sealShare(
  key: Uint8Array,
  roundId: string,
  sender: DeviceId,
  receiver: DeviceId,
  plaintext: Uint8Array,
  random: RandomBytes,
): Uint8Array {
  const nonce = random(NONCE_BYTES);
  const aad = shareAad(roundId, sender, receiver);
  return concatBytes(nonce, xchacha20poly1305(key, nonce, aad).encrypt(plaintext));
}

/**
 * Decrypts a share, or throws HEARTH_E_SECAGG_SHARE: a changed byte, another key, or another
 * round, sender or receiver in the associated data all fail the Poly1305 tag the same way.
 */
export function openShare(
  key: Uint8Array,
  roundId: string,
  sender: DeviceId,
  receiver: DeviceId,
  sealed: Uint8Array,
): Uint8Array {
  if (!(sealed instanceof Uint8Array) || sealed.length < NONCE_BYTES + TAG_BYTES) {
    throw new HearthError('HEARTH_E_SECAGG_SHARE', `share from ${sender} is too short`);
  }
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const aad = shareAad(roundId, sender, receiver);
  try {
    return xchacha20poly1305(key, nonce, aad).decrypt(sealed.subarray(NONCE_BYTES));
  } catch {
    throw new HearthError('HEARTH_E_SECAGG_SHARE', `share from ${sender} to ${receiver}`);
  }
}
