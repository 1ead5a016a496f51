/**
 * What devices and the server send each other in a secure aggregation round, stage by stage. Plain
 * data with no transport: a round's messages are tied to it by the transport, and cryptographically
 * by the round id inside every key derivation and every share's associated data.
 *
 * What the server sees, and why it learns only the sum: public keys; share ciphertexts it cannot
 * open; masked inputs, each hidden by a self mask and pairwise masks; then, per device, either the
 * shares of its self-mask seed (its masked input arrived) or of its mask key (it did not), never
 * both, so every individual input stays hidden behind at least one mask the server cannot remove.
 */
import type { DeviceId } from './params.js';

/** Stage 1 (advertise keys), device -> server, then forwarded to the device's neighbours. */
export interface KeysMessage {
  readonly from: DeviceId;
  /** X25519 public key c: agrees the keys that encrypt shares. */
  readonly cPublic: Uint8Array;
  /** X25519 public key s: agrees the pairwise mask keys. */
  readonly sPublic: Uint8Array;
}

/** One holder's shares, encrypted for it alone (XChaCha20-Poly1305: 24-byte nonce, then sealed). */
export interface EncryptedShare {
  readonly from: DeviceId;
  readonly to: DeviceId;
  readonly sealed: Uint8Array;
}

/** Stage 2 (share keys), device -> server: one ciphertext per neighbour that advertised keys. */
export interface SharesMessage {
  readonly from: DeviceId;
  /** Commitment to the self-mask seed, checked by the server after rebuilding the seed. */
  readonly commitment: Uint8Array;
  readonly shares: readonly EncryptedShare[];
}

/** Stage 3 (masked input), device -> server: y = x + self mask + pairwise masks (mod 2^32). */
export interface MaskedInputMessage {
  readonly from: DeviceId;
  readonly masked: Uint32Array;
}

/**
 * Stage 4 (unmasking), server -> one device: for which of its neighbours (and itself) it should
 * reveal the self-mask seed share, and for which the mask-key share. Per neighbourhood, so its
 * size depends on k, not n; `survivorCount` lets the device refuse to help unmask a sum over fewer
 * than t devices.
 */
export interface UnmaskRequest {
  readonly survivors: readonly DeviceId[];
  readonly dropped: readonly DeviceId[];
  readonly survivorCount: number;
}

/** A share of `owner`'s secret, in the clear (sent only in stage 4, only one kind per owner). */
export interface OwnedShare {
  readonly owner: DeviceId;
  readonly share: Uint8Array;
}

/** Stage 4, device -> server. */
export interface UnmaskResponse {
  readonly from: DeviceId;
  /** Shares of survivors' self-mask seeds b_u. */
  readonly seedShares: readonly OwnedShare[];
  /** Shares of dropped devices' mask secret keys s_u. */
  readonly keyShares: readonly OwnedShare[];
}
