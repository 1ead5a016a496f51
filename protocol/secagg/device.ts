/**
 * The device's side of a SecAgg+ round (Bell et al., CCS 2020, on Bonawitz et al., CCS 2017), as a
 * state machine on one plain record: each step checks the stage, checks what arrived, and only then
 * advances the stage and returns the message to send. A step that throws changes nothing (except
 * an unmask request below the threshold t, which ends the device's round); a step that succeeded
 * cannot run again, so a device never masks two inputs with the same masks (their
 * difference would leak) and never answers two unmask requests (the second could ask for the other
 * share of a device).
 */
import { concatBytes } from '@noble/hashes/utils.js';
import { checkIdList, checkKeysMessage, expectStage, refuse, tooFew } from './checks.js';
import * as crypto from './crypto.js';
import { neighbourGraph, neighboursOf } from './graph.js';
import { addMask, pairSign, prgUint32 } from './masks.js';
import type { EncryptedShare, KeysMessage, MaskedInputMessage, OwnedShare } from './messages.js';
import type { SharesMessage, UnmaskRequest, UnmaskResponse } from './messages.js';
import { HearthError } from '../errors.js';
import type { DeviceId, SecAggParams } from './params.js';
import { SECRET_BYTES, SHARE_BYTES, splitSecret } from './sharing.js';

/** Shares one holder keeps of one owner's secrets (the self-mask seed b and the mask key s). */
export interface HeldShares {
  readonly seed: Uint8Array;
  readonly key: Uint8Array;
}

/** What a device must keep to itself, and only until its masked input is out. */
export interface DeviceSecrets {
  readonly c: crypto.KeyPair;
  readonly s: crypto.KeyPair;
  /** Self-mask seed b (stage 2 on). */
  readonly seed?: Uint8Array;
  /** Keys opening each neighbour's shares, derived in stage 2 from the same X25519 agreement. */
  readonly openKeys?: ReadonlyMap<DeviceId, Uint8Array>;
}

/** Where a device is in its round; `secrets` is wiped once its masked input is out. */
export interface DeviceRound {
  stage: 'advertised' | 'shared' | 'masked' | 'done';
  readonly params: SecAggParams;
  readonly self: DeviceId;
  /** This device's neighbours in the round's public graph. */
  readonly neighbours: readonly DeviceId[];
  secrets: DeviceSecrets | undefined;
  /** Public keys of the neighbours that advertised theirs (stage 2 on). */
  roster: Map<DeviceId, KeysMessage>;
  /** Shares this device holds, by owner, its own included (stage 3 on). */
  held: Map<DeviceId, HeldShares>;
  /** Neighbours whose pairwise mask went into the masked input: at most k, whatever n is. */
  pairwise: DeviceId[];
}

/** Stage 1: makes the round's two key pairs; returns the public keys to send. */
export function advertiseKeys(
  params: SecAggParams,
  self: DeviceId,
  random: crypto.RandomBytes = crypto.defaultRandomBytes,
): { round: DeviceRound; message: KeysMessage } {
  const graph = neighbourGraph(params);
  if (!graph.has(self)) throw new HearthError('HEARTH_E_SECAGG_PARAMS', `${self} is not sampled`);
  const c = crypto.generateKeyPair(random);
  const s = crypto.generateKeyPair(random);
  const round: DeviceRound = {
    stage: 'advertised',
    params,
    self,
    neighbours: neighboursOf(graph, self),
    secrets: { c, s },
    roster: new Map(),
    held: new Map(),
    pairwise: [],
  };
  return { round, message: { from: self, cPublic: c.publicKey, sPublic: s.publicKey } };
}

/**
 * Stage 2: given the keys of the neighbours that advertised, draws the self-mask seed b, splits b
 * and the mask secret key s among itself and those neighbours (threshold t'), and encrypts each
 * neighbour's pair of shares for it alone.
 */
export async function shareKeys(
  round: DeviceRound,
  roster: readonly KeysMessage[],
  random: crypto.RandomBytes = crypto.defaultRandomBytes,
): Promise<SharesMessage> {
  expectStage(round.stage, 'advertised');
  const { params, self } = round;
  const { c, s } = round.secrets!;
  checkIdList(
    roster.map((entry) => entry?.from),
    new Set(round.neighbours),
    'key roster',
  );
  roster.forEach(checkKeysMessage);
  const keys = [c.publicKey, s.publicKey, ...roster.flatMap((e) => [e.cPublic, e.sPublic])];
  if (new Set(keys.map((key) => key.join())).size !== keys.length) refuse('repeated public keys');
  const holders = [self, ...roster.map((entry) => entry.from)].sort((a, b) => a - b);
  if (holders.length < params.shareThreshold) {
    tooFew(`${holders.length} holders for a share threshold of ${params.shareThreshold}`);
  }
  const seed = random(SECRET_BYTES);
  const seedShares = await splitSecret(seed, holders.length, params.shareThreshold);
  const keyShares = await splitSecret(s.secretKey, holders.length, params.shareThreshold);
  const byId = new Map(roster.map((entry) => [entry.from, entry]));
  const held = new Map<DeviceId, HeldShares>();
  const openKeys = new Map<DeviceId, Uint8Array>();
  const shares: EncryptedShare[] = [];
  holders.forEach((to, i) => {
    if (to === self) return void held.set(self, { seed: seedShares[i]!, key: keyShares[i]! });
    const shared = crypto.agree(c.secretKey, byId.get(to)!.cPublic);
    openKeys.set(to, crypto.shareKey(params.roundId, to, self, shared));
    const key = crypto.shareKey(params.roundId, self, to, shared);
    const plain = concatBytes(seedShares[i]!, keyShares[i]!);
    const sealed = crypto.sealShare(key, params.roundId, self, to, plain, random);
    shares.push({ from: self, to, sealed });
  });
  const secrets: DeviceSecrets = { c, s, seed, openKeys };
  Object.assign(round, { stage: 'shared', roster: byId, held, secrets });
  return { from: self, commitment: crypto.seedCommitment(params.roundId, self, seed), shares };
}

/**
 * Stage 3: opens the shares the neighbours sent (a failed tag: HEARTH_E_SECAGG_SHARE) and returns
 * y = x + PRG(b) + sum over those neighbours v of +/-PRG(s_uv), mod 2^32. A neighbour whose shares
 * did not arrive dropped out before stage 2 ended: no mask is shared with it.
 */
export function maskInput(
  round: DeviceRound,
  incoming: readonly EncryptedShare[],
  input: Uint32Array,
): MaskedInputMessage {
  expectStage(round.stage, 'shared');
  const { params, self } = round;
  if (!(input instanceof Uint32Array) || input.length !== params.length) {
    throw new HearthError('HEARTH_E_SECAGG_PARAMS', `input must be ${params.length} uint32`);
  }
  if (!Array.isArray(incoming)) refuse('incoming shares are not a list');
  checkIdList(
    incoming.map((share) => share?.from),
    new Set(round.roster.keys()),
    'incoming shares',
  );
  const { c, s, seed, openKeys } = round.secrets!;
  const held = new Map(round.held);
  for (const { from, to, sealed } of incoming) {
    if (to !== self) refuse(`a share for ${to} was delivered to ${self}`);
    const plain = crypto.openShare(openKeys!.get(from)!, params.roundId, from, self, sealed);
    if (plain.length !== 2 * SHARE_BYTES) refuse(`device ${from} sent shares of the wrong size`);
    held.set(from, { seed: plain.slice(0, SHARE_BYTES), key: plain.slice(SHARE_BYTES) });
  }
  if (held.size < params.shareThreshold) {
    tooFew(`only ${held.size} live holders of ${self}'s secrets; ${params.shareThreshold} needed`);
  }
  const masked = input.slice();
  addMask(masked, prgUint32(crypto.selfMaskKey(params.roundId, self, seed!), params.length), 1);
  const pairwise = incoming.map((share) => share.from).sort((a, b) => a - b);
  for (const v of pairwise) {
    const shared = crypto.agree(s.secretKey, round.roster.get(v)!.sPublic);
    const key = crypto.pairMaskKey(params.roundId, self, v, shared);
    addMask(masked, prgUint32(key, params.length), pairSign(self, v));
  }
  // The server rebuilds whichever of these it may learn from the shares; the device keeps neither.
  for (const secret of [c.secretKey, s.secretKey, seed!, ...openKeys!.values()]) secret.fill(0);
  Object.assign(round, { stage: 'masked', held, pairwise, secrets: undefined });
  return { from: self, masked };
}

/**
 * Stage 4: reveals, for each survivor, its self-mask seed share and, for each dropped neighbour,
 * its mask-key share. Refused (HEARTH_E_SECAGG_UNMASK_REQUEST) when a device is named both ways,
 * when this device is not named a survivor, or when it names devices this one holds no shares of;
 * HEARTH_E_SECAGG_THRESHOLD when fewer than t survived.
 */
export function unmaskShares(round: DeviceRound, request: UnmaskRequest): UnmaskResponse {
  expectStage(round.stage, 'masked');
  const { params, self, held } = round;
  const { survivors, dropped, survivorCount } = request;
  const refuseRequest = (detail: string): never => {
    throw new HearthError('HEARTH_E_SECAGG_UNMASK_REQUEST', detail);
  };
  if (!Array.isArray(survivors) || !Array.isArray(dropped)) refuseRequest('lists missing');
  const named = [...survivors, ...dropped];
  if (new Set(named).size !== named.length) refuseRequest('a device is named twice');
  if (!survivors.includes(self)) refuseRequest(`${self} is not named a survivor`);
  if (!named.every((id) => held.has(id))) refuseRequest('names a device whose shares are not held');
  if (!(Number.isInteger(survivorCount) && survivorCount >= survivors.length)) {
    refuseRequest(`survivor count ${survivorCount}`);
  }
  if (survivorCount < params.threshold) {
    round.stage = 'done';
    tooFew(`${survivorCount} survivors, threshold ${params.threshold}`);
  }
  const pick = (ids: readonly DeviceId[], kind: keyof HeldShares): OwnedShare[] =>
    ids.map((owner) => ({ owner, share: held.get(owner)![kind] }));
  round.stage = 'done';
  return { from: self, seedShares: pick(survivors, 'seed'), keyShares: pick(dropped, 'key') };
}
