/**
 * Secure aggregation rounds over HTTP (`--aggregation secure`): the server side of SecAgg+
 * (protocol/secagg/) driven by devices' requests and by each stage's deadline, so that visitors who
 * come and go neither block nor break a round.
 *
 * A round forms from the devices that join: at `secureCohort` of them, or at the join deadline when
 * at least t = max(2, m) have joined (otherwise it keeps waiting; nothing is revealed by waiting).
 * It then runs the protocol's four stages; each closes when every device expected in it has sent
 * its message, or at `secureStageSeconds` after it opened, whichever comes first; a device that has
 * not sent by then has dropped out. Any stage left with fewer than t devices abandons the round
 * (protocol/secagg/server.ts) and nothing is published. The unmasked sum is decoded from fixed point,
 * its norm checked against the survivors' clip bound, and published through the store
 * (Store.publishSum) with the round policy's aggregateSum: the server never holds one device's
 * update, only masked vectors and the running sum of them.
 *
 * Rounds live in this process's memory: a restart abandons the rounds in flight (devices see an
 * unknown round and try again later). A round's id begins with the id of the instance that formed
 * it; with several instances on PostgreSQL, the others forward its requests there (peers.ts).
 */
import { randomBytes } from 'node:crypto';
import { bytesToHex } from '@noble/hashes/utils.js';
import { l2Norm } from '../protocol/clip.js';
import { logComb } from '../protocol/privacy/log-math.js';
import { HearthError, isErrorCode } from '../protocol/errors.js';
import { manifestLayout, updateLength } from '../protocol/update-layout.js';
import {
  acceptKeys,
  acceptMaskedInput,
  acceptShares,
  acceptUnmask,
  checkParams,
  closeKeys,
  closeMaskedInputs,
  closeShares,
  decodeFixedPointSum,
  decodeKeys,
  decodeMasked,
  decodeShares,
  decodeUnmask,
  encodeForwarded,
  encodeRequest,
  encodeRoster,
  finishRound,
  fixedPointScale,
  startRound,
  wordBytes,
  type DeviceId,
  type EncryptedShare,
  type KeysMessage,
  type SecAggParams,
  type ServerRound,
  type UnmaskRequest,
} from '../protocol/secagg/index.js';
import {
  rotatedCoordinateBound,
  rotatedLength,
  rotationBlock,
} from '../protocol/secagg/rotation.js';
import {
  coordinateBound,
  roundInfo,
  roundingSensitivity,
  SECURE_RING_BITS,
  sumInUpdate,
  type SecureJoinReply,
  type SecureResult,
  type SecureRoundInfo,
  type SecureStep,
} from '../protocol/secagg/http.js';
import type { Judgement, RoundGuard } from './round-guard.js';
import type { ServerConfig } from './config.js';
import { MAX_SKELLAM_VARIANCE } from '../protocol/privacy/index.js';
import { JoinBudget } from './join-budget.js';
import type { SkellamRound, Store, SumRoundPolicy } from './store.js';

/**
 * The most rounding may move a device's update in a narrower ring, as a share of S: randomized
 * rounding moves the encoded vector by less than sqrt(L) integer units, sqrt(L) / scale in update
 * units, so a ring is narrow enough only while sqrt(L) <= ROUNDING_SHARE S scale. What the
 * accountant prices is the L2 bound conditional rounding keeps each device within
 * (protocol/secagg/http.ts roundingSensitivity), sqrt((S scale)^2 + L / 4 + S scale + sqrt(L) / 2):
 * for the default sketch's rounds of 100 in 24 bits, 0.0024% above S scale.
 */
export const ROUNDING_SHARE = 0.02;

/**
 * A rotated round (protocol/secagg/rotation.ts, the 16-bit ring) leaves room for ROTATED_NOISE_SIGMAS
 * standard deviations of its noise rather than 64: the chance that the noise on one coordinate goes
 * further is about 1.2e-15, about 3e-10 over the default sketch's 245,760 coordinates a round. The
 * devices' own values cannot wrap it (each rotated coordinate is clamped). A wrapped coordinate
 * would be off by 2^16 steps: the sum's norm check then abandons the round. Privacy is untouched:
 * what wraps is the noised sum, and reducing it mod 2^16 only post-processes it.
 */
export const ROTATED_NOISE_SIGMAS = 8;

/**
 * With noise on, the 16-bit ring is taken only while rounding lifts the L2 sensitivity the
 * accountant prices by at most this share of S scale (0.61% for the default sketch's rounds of 100
 * at z = 1.2). Rounding may then move a device's vector by up to about a fifth of S, but its
 * variance (at most 1/4 a coordinate a device) is some 3e-6 of the noise's there. Without noise
 * the ring must keep rounding within ROUNDING_SHARE of S, as the unrotated rings do.
 */
export const ROTATED_SENSITIVITY_SHARE = 0.01;

/** Relative slack on the norm check of the unmasked sum (float32 clipping, then rounding). */
const NORM_SLACK = 1e-3;

/** The chance that a round fails for want of shares, that neighboursFor keeps a round under. */
export const SECURE_ROUND_FAILURE = 1e-3;

/** P(Binomial(trials, p) < below), summed in log space. */
function binomialBelow(trials: number, p: number, below: number): number {
  let total = 0;
  for (let i = 0; i < below; i++) {
    total += Math.exp(logComb(trials, i) + i * Math.log(p) + (trials - i) * Math.log1p(-p));
  }
  return total;
}

/**
 * k, the neighbours of each device, for n devices of which a fraction `dropout` may leave: the
 * smallest even k (or every pair, k = n - 1, the 2017 protocol) such that, by a union bound over
 * the n devices, every device still has the t' = floor((k + 1) / 2) + 1 live holders its secrets
 * are rebuilt from, with probability 1 - SECURE_ROUND_FAILURE; each holder (the device and its k
 * neighbours) is taken to stay with probability 1 - dropout, independently. As in SecAgg+ (Bell et
 * al. 2020, section 4), k then grows like log n: 18 / 22 / 26 at n = 100 / 1,000 / 10,000 for 10%
 * dropout, 40 / 50 / 60 for 20%, 130 / 154 at n = 1,000 / 10,000 for 30%.
 */
export function neighboursFor(n: number, dropout: number): number {
  for (let k = 2; k < n - 1; k += 2) {
    const failure = n * binomialBelow(k + 1, 1 - dropout, shareThresholdFor(k));
    if (failure <= SECURE_ROUND_FAILURE) return k;
  }
  return n - 1;
}

/** How a round's devices encode their updates, and the noise they add. */
export interface SecureEncoding {
  /** fixed-point.ts's summands: the round's n plus headroom for the noise. */
  readonly summands: number;
  /** The ring, Z_(2^bits): one of protocol/secagg/http.ts SECURE_RING_BITS. */
  readonly bits: number;
  /** Integer units per update unit. */
  readonly scale: number;
  /** Skellam variance each device adds per coordinate (0: none). */
  readonly noiseVariance: number;
  /** The noise of the smallest sum the server can unmask (t devices'), for the ledger. */
  readonly skellam?: SkellamRound;
  /** The length of the vector summed: the update's, or padded to whole rotation blocks. */
  readonly length: number;
  /** The rotation's block (protocol/secagg/rotation.ts) when the round rotates. */
  readonly rotation?: number;
}

/** A round as its encoding sees it: clip S, noise multiplier z, n devices, threshold t, L. */
interface RoundShape {
  readonly clip: number;
  readonly z: number;
  readonly n: number;
  readonly t: number;
  readonly length: number;
}

/**
 * The 16-bit encoding of a round, with its vectors rotated (protocol/secagg/rotation.ts), or
 * undefined where none fits: each device's rotated coordinates are clamped to B' =
 * rotatedCoordinateBound(S, block) and encoded at scale Q / B', and the ring holds n of them plus
 * ROTATED_NOISE_SIGMAS standard deviations of the noise, whose standard deviation in units of Q is
 * z (S / B') sqrt(n / t). A block is taken only while rounding lifts the sensitivity by at most
 * ROTATED_SENSITIVITY_SHARE (without noise: moves a vector by at most ROUNDING_SHARE of S); of the
 * blocks that fit, the one that pads least (a larger block has a smaller B', so a finer grid, but
 * may pad more).
 */
function rotatedEncoding(round: RoundShape): SecureEncoding | undefined {
  let best: SecureEncoding | undefined;
  for (let block = rotationBlock(round.length); block >= 1; block /= 2) {
    const encoding = rotatedIn(block, round);
    if (encoding && (!best || encoding.length < best.length)) best = encoding;
  }
  return best;
}

/** rotatedEncoding for one block, or undefined where it does not fit. */
function rotatedIn(rotation: number, round: RoundShape): SecureEncoding | undefined {
  const { clip, z, n, t, length } = round;
  const bits = SECURE_RING_BITS[0]!;
  const summed = rotatedLength(length, rotation);
  const bound = rotatedCoordinateBound(clip, rotation);
  const limit = 2 ** (bits - 1) - 1;
  let summands = n;
  if (z > 0) summands += Math.ceil(ROTATED_NOISE_SIGMAS * z * (clip / bound) * Math.sqrt(n / t));
  if (summands > limit) return undefined;
  const scale = fixedPointScale(bound, summands, bits);
  const base = { summands, bits, scale, length: summed, rotation };
  // Without noise, rounding is all that blurs the sum: the unrotated rings' rule.
  if (!(z > 0)) {
    return Math.sqrt(summed) <= ROUNDING_SHARE * clip * scale
      ? { ...base, noiseVariance: 0 }
      : undefined;
  }
  const sensitivity = roundingSensitivity(clip, scale, summed);
  if (!(sensitivity.l2 <= (1 + ROTATED_SENSITIVITY_SHARE) * clip * scale)) return undefined;
  const mu = (z * clip * scale) ** 2;
  if (!(mu / t <= MAX_SKELLAM_VARIANCE)) return undefined;
  return { ...base, noiseVariance: mu / t, skellam: { mu, ...sensitivity } };
}

/**
 * The encoding of a round of n devices with threshold t and L coordinates, for noise multiplier z:
 * each device adds Skellam noise of variance mu / t, so any sum the server can unmask (at least t
 * devices) carries noise of variance at least mu = (z S scale)^2 per coordinate, the same z S the
 * server's Gaussian would add to the sum (z S / m on the mean). The scale leaves room, within the
 * ring, for n updates of norm S and 64 standard deviations of the noise, so nothing wraps. The
 * ring is the narrowest of SECURE_RING_BITS whose scale keeps rounding within ROUNDING_SHARE of
 * the sensitivity: 24 bits for the default sketch (L = 240,212) up to 226 devices at z = 1.2 and
 * t = 100, or 342 without noise, 32 beyond.
 */
export function secureEncoding(
  clip: number,
  z: number,
  n: number,
  t: number,
  length: number,
): SecureEncoding {
  const rotated = rotatedEncoding({ clip, z, n, t, length });
  if (rotated) return rotated;
  const widest = SECURE_RING_BITS[SECURE_RING_BITS.length - 1]!;
  for (const bits of SECURE_RING_BITS.slice(1)) {
    const limit = 2 ** (bits - 1) - 1;
    let summands = n;
    if (z > 0) {
      summands += Math.ceil(64 * z * Math.sqrt(n / t));
      // Each device's variance mu / t = (z Q)^2 / t must stay within what the sampler draws.
      const largest = Math.floor(Math.sqrt(MAX_SKELLAM_VARIANCE * t) / z);
      summands = Math.max(summands, Math.ceil(limit / largest));
    }
    const magnitude = Math.floor(limit / summands);
    if (bits !== widest && !(Math.sqrt(length) <= ROUNDING_SHARE * magnitude)) continue;
    const scale = fixedPointScale(clip, summands, bits);
    if (!(z > 0)) return { summands, bits, scale, noiseVariance: 0, length };
    const mu = (z * clip * scale) ** 2;
    const skellam = { mu, ...roundingSensitivity(clip, scale, length) };
    return { summands, bits, scale, noiseVariance: mu / t, skellam, length };
  }
  throw new Error('unreachable: the widest ring is always taken');
}

/** t': a strict majority of a device's k + 1 holders (params.ts explains why no fewer). */
export function shareThresholdFor(k: number): number {
  return Math.floor((k + 1) / 2) + 1;
}

/** A round's phases in order: joining, fixing parameters, the four stages, publishing, over. */
const PHASES = [
  'forming',
  'setup',
  'keys',
  'shares',
  'masked',
  'unmask',
  'publishing',
  'done',
] as const;
type Phase = (typeof PHASES)[number];

/** One round as the coordinator holds it. */
interface LiveRound {
  readonly id: string;
  phase: Phase;
  /** Device index by secret. */
  readonly members: Map<string, DeviceId>;
  readonly openedAt: Date;
  /** Whether new devices join this round on every instance (peers.ts), once the store answers. */
  claiming?: Promise<boolean>;
  info?: SecureRoundInfo;
  encoding?: SecureEncoding;
  /** The length of the update the round's vector carries (the vector may be rotated and padded). */
  updateLength?: number;
  state?: ServerRound;
  rosters?: Map<DeviceId, KeysMessage[]>;
  forwarded?: Map<DeviceId, EncryptedShare[]>;
  requests?: Map<DeviceId, UnmaskRequest>;
  result?: SecureResult;
  timer?: NodeJS.Timeout;
  /** Resolved (and replaced) whenever the round changes phase. */
  changed: Promise<void>;
  notify: () => void;
}

/** What a fetch step answers: bytes in the wire format, or JSON. */
export type StepReply =
  | { readonly kind: 'bytes'; readonly body: Uint8Array }
  | { readonly kind: 'json'; readonly body: SecureRoundInfo | SecureResult };

/** What the coordinator needs. */
export interface SecureRoundsOptions {
  readonly store: Store;
  readonly config: ServerConfig;
  readonly policy: SumRoundPolicy;
  /** Clock in epoch milliseconds (recorded times); deadlines run on real timers. */
  readonly now?: () => number;
  /** Told of each version a round publishes (the validation evaluator). */
  readonly onPublished?: (version: number) => void;
  /** This instance's id (peers.ts): the first characters of every round id it forms. */
  readonly instance: string;
  /**
   * Claims a newly opened forming round for the instances sharing the store (peers.ts); false when
   * another instance's round is forming. Absent: a single instance, every round is claimed.
   */
  readonly claim?: (roundId: string) => Promise<boolean>;
  /** Releases the claim once the round has formed or ended. */
  readonly release?: (roundId: string) => Promise<void>;
  /** Judges each unmasked sum against the rounds before it (round-guard.ts); left out, none. */
  readonly guard?: RoundGuard;
  /** Told of a round the guard found anomalous, before it is abandoned or published. */
  readonly onAnomalous?: (judgement: Judgement) => void;
}

/** Gives `round` a fresh `changed` promise for the requests that wait on its next change. */
function rearm(round: LiveRound): void {
  round.changed = new Promise<void>((resolve) => (round.notify = resolve));
}

function unknownRound(detail: string): never {
  throw new HearthError('HEARTH_E_SECAGG_ROUND', detail);
}

/** The secure rounds of one server process. */
export class SecureRounds {
  private readonly rounds = new Map<string, LiveRound>();
  private forming: LiveRound | undefined;
  private closed = false;
  private readonly now: () => number;
  private readonly joins: JoinBudget;

  constructor(private readonly options: SecureRoundsOptions) {
    this.now = options.now ?? Date.now;
    this.joins = new JoinBudget(options.config.joinsPerRound);
  }

  private get config(): ServerConfig {
    return this.options.config;
  }

  /** t: the fewest devices whose sum the server may learn. */
  get threshold(): number {
    return Math.max(2, this.config.minCohort);
  }

  /** n: devices a round forms with at most (it forms earlier at the join deadline with >= t). */
  get cohort(): number {
    return Math.max(this.threshold, this.config.secureCohort ?? this.threshold);
  }

  /**
   * Adds a device to the forming round, opening one if needed. Undefined when the round this
   * instance opened lost its claim to another instance's (peers.ts): the join belongs there.
   */
  async join(client?: string): Promise<SecureJoinReply | undefined> {
    for (;;) {
      if (this.closed) unknownRound('the server is shutting down');
      let round = this.forming;
      if (!round) {
        const opened = this.open();
        round = this.forming = opened;
        this.arm(opened, this.config.secureJoinSeconds, () => this.joinDeadline(opened));
        opened.claiming = (this.options.claim?.(opened.id) ?? Promise.resolve(true)).catch(
          () => true,
        );
      }
      // No device is added before the round is claimed: a round that lost holds nobody.
      if (!(await round.claiming)) {
        if (this.forming === round) this.forming = undefined;
        clearTimeout(round.timer);
        this.rounds.delete(round.id);
        return undefined;
      }
      // Filled (and formed) by the joins that came in meanwhile: the next one, then.
      if (round.phase !== 'forming') continue;
      // One client identity holds at most --joins-per-round places in a round (join-budget.ts).
      if (client !== undefined) this.joins.take(round.id, client);
      const secret = bytesToHex(randomBytes(16));
      const device = round.members.size + 1;
      round.members.set(secret, device);
      if (round.members.size >= this.cohort) void this.form(round);
      return { round: round.id, device, secret };
    }
  }

  private open(): LiveRound {
    const round: LiveRound = {
      id: this.options.instance + bytesToHex(randomBytes(16 - this.options.instance.length / 2)),
      phase: 'forming',
      members: new Map(),
      openedAt: new Date(this.now()),
      changed: Promise.resolve(),
      notify: () => {},
    };
    rearm(round);
    this.rounds.set(round.id, round);
    return round;
  }

  /** Moves `round` to `phase` and wakes every request waiting on it. */
  private enter(round: LiveRound, phase: Phase): void {
    round.phase = phase;
    const wake = round.notify;
    rearm(round);
    wake();
  }

  private arm(round: LiveRound, seconds: number, then: () => void): void {
    clearTimeout(round.timer);
    round.timer = setTimeout(then, seconds * 1000);
    round.timer.unref();
  }

  private joinDeadline(round: LiveRound): void {
    if (round.phase !== 'forming') return;
    if (round.members.size >= this.threshold) void this.form(round);
    else this.arm(round, this.config.secureJoinSeconds, () => this.joinDeadline(round));
  }

  /** Fixes the round's parameters on the current version and opens stage 1. */
  private async form(round: LiveRound): Promise<void> {
    if (round.phase !== 'forming') return;
    if (this.forming === round) this.forming = undefined;
    this.releaseClaim(round);
    this.enter(round, 'setup');
    try {
      const version = await this.options.store.latestVersion();
      const manifest =
        version === undefined ? undefined : await this.options.store.getManifest(version);
      if (!manifest) throw new HearthError('HEARTH_E_INTERNAL', 'no model version');
      const devices = [...round.members.values()];
      const k = neighboursFor(devices.length, this.config.secureDropout);
      round.updateLength = updateLength(manifest.dims, manifestLayout(manifest.federation));
      round.encoding = secureEncoding(
        this.config.clipNorm,
        this.config.noiseMultiplier,
        devices.length,
        this.threshold,
        round.updateLength,
      );
      const { length } = round.encoding;
      const params: SecAggParams = {
        roundId: round.id,
        devices,
        threshold: this.threshold,
        neighbours: k,
        shareThreshold: shareThresholdFor(Math.min(k, devices.length - 1)),
        length,
        graphSeed: randomBytes(32),
      };
      checkParams(params);
      round.state = startRound(params);
      round.info = roundInfo(
        params,
        {
          version: manifest.version,
          layoutHash: manifest.layoutHash,
          clipNorm: this.config.clipNorm,
        },
        round.encoding,
      );
      this.openStage(round, 'keys');
    } catch (error) {
      this.finish(round, error);
    }
  }

  private openStage(round: LiveRound, phase: 'keys' | 'shares' | 'masked' | 'unmask'): void {
    this.enter(round, phase);
    this.arm(round, this.config.secureStageSeconds, () => void this.closeStage(round, phase));
    // Nobody left to wait for (everyone expected has already answered, or no one is expected).
    if (this.waitingOn(round, phase) === 0) void this.closeStage(round, phase);
  }

  /** Devices expected in `phase` that have not sent their message yet. */
  private waitingOn(round: LiveRound, phase: Phase): number {
    const state = round.state!;
    switch (phase) {
      case 'keys':
        return state.params.devices.length - state.keys.size;
      case 'shares':
        return round.rosters!.size - state.commitments.size;
      case 'masked':
        return round.forwarded!.size - state.maskedFrom.size;
      case 'unmask':
        return round.requests!.size - state.responders.size;
      default:
        return -1;
    }
  }

  /** Ends `phase` (at its deadline, or once everyone expected has sent) and opens the next. */
  private async closeStage(round: LiveRound, phase: Phase): Promise<void> {
    if (round.phase !== phase) return;
    clearTimeout(round.timer);
    const state = round.state!;
    try {
      switch (phase) {
        case 'keys':
          round.rosters = closeKeys(state);
          return this.openStage(round, 'shares');
        case 'shares':
          round.forwarded = closeShares(state);
          return this.openStage(round, 'masked');
        case 'masked':
          round.requests = closeMaskedInputs(state);
          return this.openStage(round, 'unmask');
        case 'unmask':
          this.enter(round, 'publishing');
          return this.finish(round, undefined, await this.publish(round));
      }
    } catch (error) {
      this.finish(round, error);
    }
  }

  /** Unmasks the sum, checks it, and publishes it; returns the result devices are told. */
  private async publish(round: LiveRound): Promise<SecureResult> {
    const { sum, survivors } = await finishRound(round.state!);
    const info = round.info!;
    const decoded = Float32Array.from(
      decodeFixedPointSum(sum, coordinateBound(info), info.summands, info.bits),
    );
    // Each device clipped to S before encoding, and rounding moves each coordinate by < 1 step;
    // the noise of the survivors (variance v each) has norm about sqrt(L n v) / scale, and a chi
    // variable is within 10 of its mean but with negligible probability.
    const { scale, noiseVariance, skellam } = round.encoding!;
    const noise = (Math.sqrt(info.length) + 10) * Math.sqrt(survivors.length * noiseVariance);
    const bound =
      survivors.length * (info.clipNorm * (1 + NORM_SLACK) + Math.sqrt(info.length) / scale) +
      noise / scale;
    const norm = l2Norm(decoded);
    if (!(norm <= bound)) {
      throw new HearthError('HEARTH_E_SECAGG_NORM', `sum of norm ${norm}, bound ${bound}`);
    }
    const { guard } = this.options;
    if (guard) {
      // The sum's noise per coordinate: the survivors' Skellam noise and their rounding (uniform,
      // variance 1/12 a step each).
      const sigma2 = (survivors.length * (noiseVariance + 1 / 12)) / scale ** 2;
      const judgement = guard.closeSum(
        round.id,
        { norm, length: decoded.length },
        survivors.length,
        sigma2,
      );
      if (judgement.anomalies.length > 0) {
        this.options.onAnomalous?.(judgement);
        if (this.config.roundGuard === 'rollback') {
          guard.rollbacks++;
          throw new HearthError(
            'HEARTH_E_SECAGG_ANOMALY',
            judgement.anomalies
              .map((a) => `${a.statistic} ${a.value} against ${a.median} +- ${a.spread}`)
              .join('; '),
          );
        }
      }
    }
    const outcome = await this.options.store.publishSum(
      {
        baseVersion: info.version,
        // A rotation is orthogonal: the norm checked above is the update's; undone here.
        sum: Float32Array.from(sumInUpdate(decoded, info, round.updateLength!)),
        count: survivors.length,
        openedAt: round.openedAt.toISOString(),
        ...(skellam ? { skellam } : {}),
      },
      this.options.policy,
      new Date(this.now()),
    );
    this.options.onPublished?.(outcome.version);
    return { status: 'published', version: outcome.version, survivors: survivors.length };
  }

  /** New devices stop joining `round`, on every instance. */
  private releaseClaim(round: LiveRound): void {
    const release = this.options.release;
    if (!release) return;
    void round.claiming
      ?.then((claimed) => (claimed ? release(round.id) : undefined))
      .catch(() => {});
  }

  /** Ends the round with its result (or the error that abandoned it); forgets it a while later. */
  private finish(round: LiveRound, error: unknown, result?: SecureResult): void {
    if (this.forming === round) this.forming = undefined;
    if (round.phase === 'forming') this.releaseClaim(round);
    if (round.state && round.state.stage !== 'done') {
      round.state.sum.fill(0);
      round.state.stage = 'abandoned';
    }
    const code = error instanceof HearthError ? error.code : 'HEARTH_E_INTERNAL';
    round.result = result ?? { status: 'abandoned', reason: isErrorCode(code) ? code : undefined };
    round.rosters = round.forwarded = round.requests = undefined;
    this.enter(round, 'done');
    this.arm(round, 4 * this.config.secureStageSeconds, () => this.rounds.delete(round.id));
  }

  private member(roundId: string, secret: string | undefined): { round: LiveRound; id: DeviceId } {
    const round = this.rounds.get(roundId);
    const id = secret === undefined ? undefined : round?.members.get(secret);
    if (!round || id === undefined) unknownRound(`no round ${roundId} with this device`);
    return { round, id };
  }

  /** A send step: one device's message, in the wire format. */
  accept(roundId: string, secret: string | undefined, step: SecureStep, body: Uint8Array): void {
    const { round, id } = this.member(roundId, secret);
    const state = round.state;
    if (!state || round.phase !== step) {
      throw new HearthError('HEARTH_E_SECAGG_STAGE', `the round is at ${round.phase}, not ${step}`);
    }
    const from = <T extends { readonly from: DeviceId }>(message: T): T => {
      if (message.from !== id) {
        throw new HearthError('HEARTH_E_SECAGG_MESSAGE', `device ${id} sent as ${message.from}`);
      }
      return message;
    };
    if (step === 'keys') acceptKeys(state, from(decodeKeys(body)));
    else if (step === 'shares') acceptShares(state, from(decodeShares(body)));
    else if (step === 'masked')
      acceptMaskedInput(
        state,
        from(decodeMasked(body, state.params.length, wordBytes(round.info!.bits))),
      );
    else if (step === 'unmask') acceptUnmask(state, from(decodeUnmask(body)));
    else throw new HearthError('HEARTH_E_SECAGG_STAGE', `${step} is not a send step`);
    if (this.waitingOn(round, step) === 0) void this.closeStage(round, step);
  }

  /**
   * A fetch step: what the server has for this device once the stage before it has closed, waiting
   * up to `waitMs` for that; undefined when the wait ran out (the device asks again).
   */
  async fetch(
    roundId: string,
    secret: string | undefined,
    step: SecureStep,
    waitMs: number,
  ): Promise<StepReply | undefined> {
    const { round, id } = this.member(roundId, secret);
    const deadline = Date.now() + waitMs;
    for (;;) {
      const reply = this.replyFor(round, id, step);
      if (reply) return reply;
      const left = deadline - Date.now();
      if (left <= 0 || this.closed) return undefined;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        round.changed,
        new Promise<void>((resolve) => (timer = setTimeout(resolve, left))),
      ]);
      clearTimeout(timer);
    }
  }

  /** The reply to `step` if its stage has closed; throws when this device has no part in it. */
  private replyFor(round: LiveRound, id: DeviceId, step: SecureStep): StepReply | undefined {
    const after = (phase: Phase) => PHASES.indexOf(round.phase) > PHASES.indexOf(phase);
    if (step === 'result') return round.result && { kind: 'json', body: round.result };
    if (round.result?.status === 'abandoned') {
      throw new HearthError('HEARTH_E_SECAGG_THRESHOLD', `round abandoned: ${round.result.reason}`);
    }
    const part = <T>(map: Map<DeviceId, T> | undefined): T => {
      const value = map?.get(id);
      if (value === undefined) {
        throw new HearthError('HEARTH_E_SECAGG_STAGE', `device ${id} has dropped out of the round`);
      }
      return value;
    };
    switch (step) {
      case 'params':
        return round.info && { kind: 'json', body: round.info };
      case 'roster':
        return after('keys')
          ? { kind: 'bytes', body: encodeRoster(part(round.rosters)) }
          : undefined;
      case 'forwarded':
        return after('shares')
          ? { kind: 'bytes', body: encodeForwarded(part(round.forwarded)) }
          : undefined;
      case 'request':
        return after('masked')
          ? { kind: 'bytes', body: encodeRequest(part(round.requests)) }
          : undefined;
      default:
        throw new HearthError('HEARTH_E_SECAGG_STAGE', `${step} is not a fetch step`);
    }
  }

  /** Stops every timer and abandons the rounds in flight. */
  close(): void {
    this.closed = true;
    for (const round of this.rounds.values()) {
      if (round.phase !== 'done') this.finish(round, new HearthError('HEARTH_E_SECAGG_ROUND'));
      // Including the timer that forgets a finished round: the map is cleared below.
      clearTimeout(round.timer);
    }
    this.rounds.clear();
  }
}
