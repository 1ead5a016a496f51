/**
 * A secure aggregation round's public parameters (stage 0, "setup"): the server fixes them and
 * every device checks them before taking part, because a device's privacy rests on them (a
 * threshold of 1 would let the server unmask one device's update).
 *
 * Two thresholds, as in SecAgg+ (Bell et al., CCS 2020, https://eprint.iacr.org/2020/704):
 * - `threshold` (t): the fewest devices whose inputs may be summed. Any stage that ends with fewer
 *   than t devices abandons the round, so the server never learns a sum over fewer than t inputs.
 * - `shareThreshold` (t'): Shamir threshold inside one neighbourhood. Each device splits its
 *   secrets among its holders (itself and its neighbours that advertised keys, at most k + 1).
 */
import { HearthError } from '../errors.js';

/** A device's index in one round (unsigned 32-bit; the transport maps it to a device). */
export type DeviceId = number;

/** What the server publishes at setup; identical for every device of the round. */
export interface SecAggParams {
  /** Unique per round; bound into every derived key and every share's associated data. */
  readonly roundId: string;
  /** The n sampled devices, in any order (the graph orders them by `graphSeed`). */
  readonly devices: readonly DeviceId[];
  /** t: a sum is only revealed over at least this many devices; at least 2. */
  readonly threshold: number;
  /** k: neighbours per device; k >= n - 1 means every pair (the 2017 protocol). */
  readonly neighbours: number;
  /** t': shares of one device's secret needed to rebuild it; a strict majority of its holders. */
  readonly shareThreshold: number;
  /** L: coordinates of the vector being summed. */
  readonly length: number;
  /** Public random seed of the neighbour graph (32 bytes). */
  readonly graphSeed: Uint8Array;
}

/** Most coordinates one round sums (the masks of 2^26 uint32 are 256 MiB per pair). */
export const MAX_LENGTH = 2 ** 26;

/**
 * Most shares one secret is split into: `shamir-secret-sharing` works in GF(256) and gives each
 * share a distinct non-zero x coordinate, so 255. A device and its k neighbours hold one each.
 */
export const MAX_HOLDERS = 255;

/** The number of neighbours each device really has: k, or n - 1 when the graph is complete. */
export function effectiveNeighbours(params: SecAggParams): number {
  return Math.min(params.neighbours, params.devices.length - 1);
}

function invalid(detail: string): never {
  throw new HearthError('HEARTH_E_SECAGG_PARAMS', detail);
}

/** True when `id` can be a device index (written as 4 bytes into keys' derivation contexts). */
export function isDeviceId(id: unknown): id is DeviceId {
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= 0xffffffff;
}

/**
 * Throws HEARTH_E_SECAGG_PARAMS unless the parameters describe a round that is both private and
 * completable. The strict majority for t' means two disjoint groups of holders can never both
 * rebuild a secret, so even a server that told different devices different dropout stories could
 * not collect a device's self-mask seed and its mask key from separate groups.
 */
export function checkParams(params: SecAggParams): void {
  const { roundId, devices, threshold, neighbours, shareThreshold, length, graphSeed } = params;
  if (typeof roundId !== 'string' || roundId.length === 0 || roundId.length > 256) {
    invalid('roundId must be a non-empty string of at most 256 characters');
  }
  if (!Array.isArray(devices) || devices.length < 2) invalid('a round needs at least 2 devices');
  if (!devices.every(isDeviceId)) invalid('device ids must be integers in [0, 2^32)');
  if (new Set(devices).size !== devices.length) invalid('device ids must be unique');
  const n = devices.length;
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > n) {
    invalid(`threshold must be an integer in [2, ${n}], got ${threshold}`);
  }
  if (!Number.isInteger(neighbours) || neighbours < 1) {
    invalid(`neighbours must be a positive integer, got ${neighbours}`);
  }
  const k = effectiveNeighbours(params);
  if (k < n - 1 && (k * n) % 2 === 1) {
    invalid(`no ${k}-regular graph exists on ${n} devices (k * n is odd); use an even k`);
  }
  if (k + 1 > MAX_HOLDERS) invalid(`at most ${MAX_HOLDERS - 1} neighbours, got ${k}`);
  if (!Number.isInteger(shareThreshold) || shareThreshold < 2 || shareThreshold > k + 1) {
    invalid(`shareThreshold must be an integer in [2, ${k + 1}], got ${shareThreshold}`);
  }
  if (2 * shareThreshold <= k + 1) {
    invalid(`shareThreshold must be a strict majority of the ${k + 1} holders`);
  }
  if (!Number.isInteger(length) || length < 1 || length > MAX_LENGTH) {
    invalid(`length must be an integer in [1, ${MAX_LENGTH}], got ${length}`);
  }
  if (!(graphSeed instanceof Uint8Array) || graphSeed.length !== 32) {
    invalid('graphSeed must be 32 bytes');
  }
}
