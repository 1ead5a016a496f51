/**
 * The public neighbour graph of a SecAgg+ round (Bell et al., CCS 2020, section 3): each device
 * exchanges masks and key shares with its k neighbours only, so its work grows with k = O(log n)
 * instead of n. Devices are placed on a ring in an order drawn from the round's public seed, then
 * joined by a Harary graph H(k, n): each to the floor(k/2) nearest on either side, plus, for odd k
 * (n is then even), the device opposite. H(k, n) is k-regular and k-connected, the most a k-regular
 * graph can be: dropping fewer than k devices never splits the others apart.
 *
 * Every device rebuilds the same graph from the parameters, so none needs to trust the server's
 * word on who its neighbours are. The seed is drawn at random by the server, which follows the
 * protocol in this threat model (honest-but-curious); it only fixes who is paired with whom.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes } from '@noble/hashes/utils.js';
import { u32be } from './crypto.js';
import { checkParams, effectiveNeighbours, type DeviceId, type SecAggParams } from './params.js';

/** Each device's neighbours, ascending; symmetric (v is u's neighbour iff u is v's). */
export type NeighbourGraph = ReadonlyMap<DeviceId, readonly DeviceId[]>;

/** Compares two byte strings lexicographically. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length && i < b.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * The devices in ring order: sorted by SHA-256(seed || id). A hash of a secret-free public seed is
 * a random permutation for this purpose and needs no PRNG state; ties (never seen) fall back to id.
 */
export function ringOrder(devices: readonly DeviceId[], seed: Uint8Array): DeviceId[] {
  const keyed = devices.map((id) => ({ id, key: sha256(concatBytes(seed, u32be(id))) }));
  keyed.sort((a, b) => compareBytes(a.key, b.key) || a.id - b.id);
  return keyed.map((entry) => entry.id);
}

/** The round's neighbour graph (checks the parameters first: HEARTH_E_SECAGG_PARAMS). */
export function neighbourGraph(params: SecAggParams): NeighbourGraph {
  checkParams(params);
  const ring = ringOrder(params.devices, params.graphSeed);
  const n = ring.length;
  const k = effectiveNeighbours(params);
  const graph = new Map<DeviceId, DeviceId[]>();
  for (let i = 0; i < n; i++) {
    const near = new Set<DeviceId>();
    if (k === n - 1) {
      for (const id of ring) if (id !== ring[i]) near.add(id);
    } else {
      for (let step = 1; step <= k >> 1; step++) {
        near.add(ring[(i + step) % n]!);
        near.add(ring[(i - step + n) % n]!);
      }
      if (k % 2 === 1) near.add(ring[(i + n / 2) % n]!);
    }
    graph.set(
      ring[i]!,
      [...near].sort((a, b) => a - b),
    );
  }
  return graph;
}

/** `graph`'s neighbours of `id`, or an empty list for a device not in the round. */
export function neighboursOf(graph: NeighbourGraph, id: DeviceId): readonly DeviceId[] {
  return graph.get(id) ?? [];
}
