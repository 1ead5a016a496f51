/** Helpers for the secure aggregation unit tests (imported only by `*.test.ts` files). */
import { chacha20 } from '@noble/ciphers/chacha.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { RandomBytes } from './crypto.js';
import { u32be } from './crypto.js';
import type { DeviceId, SecAggParams } from './params.js';

/**
 * A reproducible `RandomBytes`: call i returns ChaCha20 keystream under key SHA-256(seed) and
 * nonce i. Never for real rounds: anyone who knows the seed knows every key.
 */
export function seededRandomBytes(seed: number): RandomBytes {
  const key = sha256(u32be(seed));
  let calls = 0;
  return (length) => {
    const nonce = new Uint8Array(12);
    new DataView(nonce.buffer).setUint32(8, calls++);
    return chacha20(key, nonce, new Uint8Array(length));
  };
}

/** Parameters for a test round over devices 1..n (t, k, t' and L overridable). */
export function testParams(n: number, overrides: Partial<SecAggParams> = {}): SecAggParams {
  const k = Math.min(overrides.neighbours ?? n - 1, n - 1);
  return {
    roundId: 'test-round',
    devices: Array.from({ length: n }, (_, i) => i + 1),
    threshold: Math.max(2, Math.ceil(n / 2)),
    neighbours: k,
    shareThreshold: Math.floor((k + 1) / 2) + 1,
    length: 16,
    graphSeed: sha256(u32be(n)),
    ...overrides,
  };
}

/** Random uint32 inputs for `devices`, each of `length`, from a seeded stream. */
export function randomInputs(
  devices: readonly DeviceId[],
  length: number,
  random: RandomBytes,
): Map<DeviceId, Uint32Array> {
  return new Map(
    devices.map((id) => [id, new Uint32Array(random(4 * length).slice().buffer, 0, length)]),
  );
}

/** The plain sum of `inputs`' vectors for `ids`, mod 2^32: what a round must output. */
export function plainSum(
  inputs: ReadonlyMap<DeviceId, Uint32Array>,
  ids: readonly DeviceId[],
  length: number,
): Uint32Array {
  const sum = new Uint32Array(length);
  for (const id of ids) {
    const x = inputs.get(id)!;
    for (let i = 0; i < length; i++) sum[i] = (sum[i]! + x[i]!) >>> 0;
  }
  return sum;
}
