/**
 * Stage 4 on the server: collect the revealed shares, rebuild each survivor's self-mask seed and
 * each dropped device's mask key, and strip the masks off the running sum. What is left is the sum
 * of the survivors' inputs mod 2^32, and nothing about any one of them: for every device the server
 * holds one of its two secrets at most (survivor: the seed; dropped: the mask key).
 */
import { expectStage, isBytes, refuse } from './checks.js';
import {
  agree,
  equalBytes,
  pairMaskKey,
  publicKeyOf,
  seedCommitment,
  selfMaskKey,
} from './crypto.js';
import { addMask, pairSign, prgUint32 } from './masks.js';
import type { OwnedShare, UnmaskResponse } from './messages.js';
import type { DeviceId } from './params.js';
import { abandon, type ServerRound } from './server.js';
import { combineShares, SHARE_BYTES } from './sharing.js';

/** The outcome of a completed round. */
export interface RoundResult {
  /** Sum of the survivors' inputs, mod 2^32. */
  readonly sum: Uint32Array;
  /** U3, ascending: the devices whose inputs the sum contains. */
  readonly survivors: readonly DeviceId[];
}

function file(into: Map<DeviceId, Uint8Array[]>, shares: readonly OwnedShare[]): void {
  for (const { owner, share } of shares) into.set(owner, [...(into.get(owner) ?? []), share]);
}

/**
 * Stage 4: records one survivor's revealed shares. It must answer exactly what it was asked, so a
 * response carrying a seed share and a key share of the same device is refused, whatever it says.
 */
export function acceptUnmask(round: ServerRound, response: UnmaskResponse): void {
  expectStage(round.stage, 'unmask');
  if (!response) refuse('empty unmask response');
  const { from, seedShares, keyShares } = response;
  const request = round.requests.get(from);
  if (!request) refuse(`device ${from} was not asked to unmask`);
  if (round.responders.has(from)) refuse(`device ${from} answered twice`);
  if (!Array.isArray(seedShares) || !Array.isArray(keyShares)) refuse(`${from}: no share lists`);
  const owners = [...seedShares, ...keyShares].map((entry) => entry?.owner);
  if (new Set(owners).size !== owners.length) refuse(`${from} revealed two shares of one device`);
  const asked = (list: readonly OwnedShare[], allowed: readonly DeviceId[]) =>
    list.every((entry) => allowed.includes(entry.owner) && isBytes(entry.share, SHARE_BYTES));
  if (!asked(seedShares, request.survivors) || !asked(keyShares, request.dropped)) {
    refuse(`device ${from} revealed shares it was not asked for`);
  }
  round.responders.add(from);
  file(round.seedShares, seedShares);
  file(round.keyShares, keyShares);
}

/** Rebuilds `owner`'s secret from the shares revealed, or abandons the round. */
async function rebuild(
  round: ServerRound,
  owner: DeviceId,
  shares: Uint8Array[] | undefined,
): Promise<Uint8Array> {
  const t = round.params.shareThreshold;
  const count = shares?.length ?? 0;
  if (count < t) abandon(round, 'THRESHOLD', `${count} shares of ${owner}'s secret, ${t} needed`);
  try {
    return await combineShares(shares!);
  } catch (error) {
    return abandon(round, 'RECONSTRUCT', `${owner}: ${String(error)}`);
  }
}

/**
 * Ends the round: removes each survivor's self mask, and, for each device that sent shares but no
 * masked input, the pairwise masks survivors added for it (their counterparts never arrived). A
 * rebuilt secret that does not match its commitment or public key abandons the round
 * (HEARTH_E_SECAGG_RECONSTRUCT) rather than publish a wrong sum.
 */
export async function finishRound(round: ServerRound): Promise<RoundResult> {
  expectStage(round.stage, 'unmask');
  const { params, maskedFrom } = round;
  const t = params.threshold;
  if (round.responders.size < t) {
    abandon(round, 'THRESHOLD', `${round.responders.size} devices answered, threshold ${t}`);
  }
  const sum = round.sum.slice();
  const survivors = [...maskedFrom].sort((a, b) => a - b);
  for (const u of survivors) {
    const seed = await rebuild(round, u, round.seedShares.get(u));
    if (!equalBytes(seedCommitment(params.roundId, u, seed), round.commitments.get(u)!)) {
      abandon(round, 'RECONSTRUCT', `the seed rebuilt for ${u} does not match its commitment`);
    }
    addMask(sum, prgUint32(selfMaskKey(params.roundId, u, seed), params.length), -1);
  }
  const pairedWith = (d: DeviceId) => survivors.filter((v) => round.pairs.get(v)!.includes(d));
  const dropped = [...round.commitments.keys()].filter((d) => !maskedFrom.has(d));
  for (const d of dropped.sort((a, b) => a - b)) {
    const partners = pairedWith(d);
    if (partners.length === 0) continue; // no survivor masked with d: nothing to rebuild
    const secretKey = await rebuild(round, d, round.keyShares.get(d));
    if (!equalBytes(publicKeyOf(secretKey), round.keys.get(d)!.sPublic)) {
      abandon(round, 'RECONSTRUCT', `the mask key rebuilt for ${d} does not match its public key`);
    }
    for (const v of partners) {
      const shared = agree(secretKey, round.keys.get(v)!.sPublic);
      const key = pairMaskKey(params.roundId, d, v, shared);
      addMask(sum, prgUint32(key, params.length), pairSign(v, d) === 1 ? -1 : 1);
    }
  }
  round.stage = 'done';
  round.seedShares.clear();
  round.keyShares.clear();
  return { sum, survivors };
}
