/**
 * The server's side of a SecAgg+ round, stages 1 to 3, as a state machine on one plain record:
 * `accept*` checks one device's message and records it (HEARTH_E_SECAGG_MESSAGE refuses that
 * message alone), `close*` ends a stage at its deadline and returns what to send each device. A
 * device whose message did not arrive by the close has dropped out. Any close that leaves fewer
 * than t devices abandons the round (HEARTH_E_SECAGG_THRESHOLD) before anything more is revealed.
 * The record keeps the running sum of masked inputs, not the inputs one by one (which are masked
 * anyway), so its memory is O(L) whatever n is. Stage 4 is in server-unmask.ts.
 */
import { HearthError } from '../errors.js';
import { checkIdList, checkKeysMessage, expectStage, isBytes, refuse } from './checks.js';
import { neighbourGraph, neighboursOf, type NeighbourGraph } from './graph.js';
import { addMask } from './masks.js';
import type { EncryptedShare, KeysMessage, MaskedInputMessage } from './messages.js';
import type { SharesMessage, UnmaskRequest } from './messages.js';
import type { DeviceId, SecAggParams } from './params.js';
import { SHARE_BYTES } from './sharing.js';

/** Size of one sealed pair of shares: nonce, two shares, Poly1305 tag. */
const SEALED_BYTES = 24 + 2 * SHARE_BYTES + 16;

/** Where the server is in a round, and what it holds. */
export interface ServerRound {
  stage: 'keys' | 'shares' | 'masked' | 'unmask' | 'done' | 'abandoned';
  readonly params: SecAggParams;
  readonly graph: NeighbourGraph;
  /** U1: devices whose public keys arrived (and whose neighbourhood can hold their shares). */
  readonly keys: Map<DeviceId, KeysMessage>;
  /** U2: devices whose shares arrived, with their self-mask seed commitment. */
  readonly commitments: Map<DeviceId, Uint8Array>;
  /** Stage 2's ciphertexts by receiver, until they are forwarded. */
  readonly inbox: Map<DeviceId, EncryptedShare[]>;
  /** For each device of U2, the neighbours whose shares it was given: it masks with those. */
  readonly pairs: Map<DeviceId, readonly DeviceId[]>;
  /** U3: devices whose masked input arrived. */
  readonly maskedFrom: Set<DeviceId>;
  /** Sum of U3's masked inputs, mod 2^32. */
  readonly sum: Uint32Array;
  /** Stage 4's request to each device of U3. */
  readonly requests: Map<DeviceId, UnmaskRequest>;
  /** U4: devices whose unmask response arrived, and the shares they revealed, by owner. */
  readonly responders: Set<DeviceId>;
  readonly seedShares: Map<DeviceId, Uint8Array[]>;
  readonly keyShares: Map<DeviceId, Uint8Array[]>;
}

/** Stage 0: a round with checked parameters and its public neighbour graph. */
export function startRound(params: SecAggParams): ServerRound {
  return {
    stage: 'keys',
    params,
    graph: neighbourGraph(params),
    keys: new Map(),
    commitments: new Map(),
    inbox: new Map(),
    pairs: new Map(),
    maskedFrom: new Set(),
    sum: new Uint32Array(params.length),
    requests: new Map(),
    responders: new Set(),
    seedShares: new Map(),
    keyShares: new Map(),
  };
}

/** Ends the round without a result: drops every share and the masked sum, then throws `code`. */
export function abandon(
  round: ServerRound,
  code: 'THRESHOLD' | 'RECONSTRUCT',
  detail: string,
): never {
  round.stage = 'abandoned';
  round.sum.fill(0);
  for (const map of [round.inbox, round.seedShares, round.keyShares]) map.clear();
  throw new HearthError(`HEARTH_E_SECAGG_${code}`, detail);
}

function requireAtLeastT(round: ServerRound, count: number, what: string): void {
  const t = round.params.threshold;
  if (count < t) abandon(round, 'THRESHOLD', `${count} devices ${what}, threshold ${t}`);
}

/** Stage 1: records one device's public keys. */
export function acceptKeys(round: ServerRound, message: KeysMessage): void {
  expectStage(round.stage, 'keys');
  checkKeysMessage(message);
  if (!round.graph.has(message.from)) refuse(`device ${message.from} is not in this round`);
  if (round.keys.has(message.from)) refuse(`device ${message.from} sent its keys twice`);
  round.keys.set(message.from, message);
}

/**
 * Ends stage 1. A device with fewer than t' - 1 neighbours left could not have its secrets held by
 * t' devices, so it is dropped, which can leave a neighbour short in turn: repeat until stable.
 * Returns, for each remaining device, its remaining neighbours' keys.
 */
export function closeKeys(round: ServerRound): Map<DeviceId, KeysMessage[]> {
  expectStage(round.stage, 'keys');
  const live = (u: DeviceId) => neighboursOf(round.graph, u).filter((v) => round.keys.has(v));
  for (let changed = true; changed;) {
    changed = false;
    for (const u of round.keys.keys()) {
      if (live(u).length + 1 < round.params.shareThreshold) {
        round.keys.delete(u);
        changed = true;
      }
    }
  }
  requireAtLeastT(round, round.keys.size, 'advertised keys');
  round.stage = 'shares';
  return new Map([...round.keys.keys()].map((u) => [u, live(u).map((v) => round.keys.get(v)!)]));
}

/** Stage 2: records one device's commitment and its encrypted shares, one per neighbour at most. */
export function acceptShares(round: ServerRound, message: SharesMessage): void {
  expectStage(round.stage, 'shares');
  if (!message) refuse('empty shares message');
  const { from, commitment, shares } = message;
  if (!round.keys.has(from)) refuse(`device ${from} has no keys in this round`);
  if (round.commitments.has(from)) refuse(`device ${from} sent its shares twice`);
  if (!isBytes(commitment, 32)) refuse(`device ${from} sent a malformed commitment`);
  if (!Array.isArray(shares)) refuse(`device ${from} sent no share list`);
  const allowed = new Set(neighboursOf(round.graph, from).filter((v) => round.keys.has(v)));
  checkIdList(
    shares.map((share) => share?.to),
    allowed,
    `shares of ${from}`,
  );
  for (const share of shares) {
    if (share.from !== from || !isBytes(share.sealed, SEALED_BYTES)) {
      refuse(`device ${from} sent a malformed share for ${share.to}`);
    }
  }
  round.commitments.set(from, commitment);
  for (const share of shares)
    round.inbox.set(share.to, [...(round.inbox.get(share.to) ?? []), share]);
}

/** Ends stage 2; returns, for each device of U2, the shares addressed to it. */
export function closeShares(round: ServerRound): Map<DeviceId, EncryptedShare[]> {
  expectStage(round.stage, 'shares');
  requireAtLeastT(round, round.commitments.size, 'sent shares');
  const forwarded = new Map<DeviceId, EncryptedShare[]>();
  for (const u of round.commitments.keys()) {
    const shares = (round.inbox.get(u) ?? []).filter((s) => round.commitments.has(s.from));
    forwarded.set(u, shares);
    round.pairs.set(
      u,
      shares.map((s) => s.from).sort((a, b) => a - b),
    );
  }
  round.inbox.clear();
  round.stage = 'masked';
  return forwarded;
}

/** Stage 3: adds one device's masked input to the running sum. */
export function acceptMaskedInput(round: ServerRound, message: MaskedInputMessage): void {
  expectStage(round.stage, 'masked');
  if (!message) refuse('empty masked input message');
  const { from, masked } = message;
  if (!round.commitments.has(from)) refuse(`device ${from} sent no shares in this round`);
  if (round.maskedFrom.has(from)) refuse(`device ${from} sent its masked input twice`);
  if (!(masked instanceof Uint32Array) || masked.length !== round.params.length) {
    refuse(`device ${from} sent a masked input that is not ${round.params.length} uint32`);
  }
  addMask(round.sum, masked, 1);
  round.maskedFrom.add(from);
}

/**
 * Ends stage 3; returns each survivor's unmask request over the devices whose shares it holds
 * (itself and the neighbours in its pairs): survivors' seed shares, the others' key shares.
 */
export function closeMaskedInputs(round: ServerRound): Map<DeviceId, UnmaskRequest> {
  expectStage(round.stage, 'masked');
  requireAtLeastT(round, round.maskedFrom.size, 'sent masked inputs');
  for (const u of round.maskedFrom) {
    const holds = [u, ...round.pairs.get(u)!].sort((a, b) => a - b);
    round.requests.set(u, {
      survivors: holds.filter((v) => round.maskedFrom.has(v)),
      dropped: holds.filter((v) => !round.maskedFrom.has(v)),
      survivorCount: round.maskedFrom.size,
    });
  }
  round.stage = 'unmask';
  return new Map(round.requests);
}
