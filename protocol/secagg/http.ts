/**
 * Secure aggregation over HTTP, as both sides name it: the steps of a round a device takes part in,
 * the JSON the server answers at joining, at setup and at the end, and the checks a device runs on
 * the round's parameters before it sends anything (its privacy rests on them).
 *
 * A round, for one device: `POST /v1/secure/join` (a device index and a secret that authenticates
 * its later requests), then `POST /v1/secure/rounds/<round>/<step>` for each step in order. The
 * "fetch" steps (params, roster, forwarded, request, result) wait until the server closes the stage
 * before them, answering 204 when a poll's wait runs out first; the "send" steps carry one message
 * in the binary wire format (wire.ts).
 */
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { HearthError } from '../errors.js';
import type { RoundPrivacySettings } from '../privacy/ledger.js';
import { skellamSensitivity } from '../privacy/skellam.js';
import { MAX_SKELLAM_VARIANCE } from '../privacy/skellam-sampler.js';
import type { RandomBytes } from './crypto.js';
import { encodeFixedPoint, fixedPointScale, ROUNDING_BETA } from './fixed-point.js';
import { checkParams, type SecAggParams } from './params.js';
import {
  isRotationBlock,
  rotate,
  rotatedCoordinateBound,
  rotatedLength,
  rotationSigns,
  unrotate,
} from './rotation.js';

/**
 * The rings a round may sum in, narrowest first (fixed-point.ts): the server picks one
 * (server/secure-rounds.ts secureEncoding) and a device refuses any other. A device sends each
 * masked word in bits / 8 bytes (wire.ts), so 24 bits is three quarters of 32's upload and 16
 * bits half of it; the server takes 16 only with its vector rotated (rotation.ts).
 */
export const SECURE_RING_BITS: readonly number[] = [16, 24, 32];

/** The steps of a round, in the order a device takes them. */
export const SECURE_STEPS = [
  'params',
  'keys',
  'roster',
  'shares',
  'forwarded',
  'masked',
  'request',
  'unmask',
  'result',
] as const;
export type SecureStep = (typeof SECURE_STEPS)[number];

/** Steps that carry a device's message; the others fetch what the server has for it. */
export const SEND_STEPS: readonly SecureStep[] = ['keys', 'shares', 'masked', 'unmask'];

/** The header carrying the device's round secret (hex) on every step. */
export const SECURE_DEVICE_HEADER = 'x-hearth-device';

/** Content type of the send steps' bodies and the binary fetch replies. */
export const SECAGG_CONTENT_TYPE = 'application/vnd.hearth.secagg';

/** The reply to `POST /v1/secure/join`. */
export interface SecureJoinReply {
  /** The round's id (hex): the path segment of its steps. */
  readonly round: string;
  /** The device's index in the round. */
  readonly device: number;
  /** 32 hex characters only this device knows: its requests carry it in SECURE_DEVICE_HEADER. */
  readonly secret: string;
}

/** The reply to the `params` step: the round's public parameters and what its sum is of. */
export interface SecureRoundInfo {
  readonly roundId: string;
  readonly devices: readonly number[];
  readonly threshold: number;
  readonly neighbours: number;
  readonly shareThreshold: number;
  readonly length: number;
  /** 32 bytes, hex. */
  readonly graphSeed: string;
  /** The model version whose update layout the summed vector is in. */
  readonly version: number;
  /** The model's layout hash (protocol/manifest.ts): the shape the vector belongs to. */
  readonly layoutHash: number;
  /**
   * Fixed-point encoding (fixed-point.ts): clip S, summands and bits. `summands` is the round's n
   * plus headroom for the noise, so that n updates and the noise never wrap.
   */
  readonly clipNorm: number;
  readonly summands: number;
  readonly bits: number;
  /**
   * The rotation's block (rotation.ts), when the round sums rotated vectors: each device rotates
   * its update padded to whole blocks (`length` is then the padded length), clamps each rotated
   * coordinate to rotatedCoordinateBound and encodes at that bound instead of S. Absent: the
   * update as it is, each coordinate within S.
   */
  readonly rotation?: number;
  /**
   * The variance of the Skellam noise each device adds to every coordinate of its encoded update
   * (protocol/privacy/skellam-sampler.ts), in integer units; 0: no noise (a round without DP).
   */
  readonly noiseVariance: number;
}

/** The reply to the `result` step. */
export interface SecureResult {
  readonly status: 'published' | 'abandoned';
  /** The version the round published. */
  readonly version?: number;
  /** How many devices' inputs the published sum holds. */
  readonly survivors?: number;
  /** Why an abandoned round was abandoned (an error code). */
  readonly reason?: string;
}

/** The JSON form of the protocol's parameters plus the encoding (what the server sends). */
export function roundInfo(
  params: SecAggParams,
  model: { readonly version: number; readonly layoutHash: number; readonly clipNorm: number },
  encoding: {
    readonly summands: number;
    readonly bits: number;
    readonly noiseVariance: number;
    readonly rotation?: number;
  },
): SecureRoundInfo {
  return {
    roundId: params.roundId,
    devices: [...params.devices],
    threshold: params.threshold,
    neighbours: params.neighbours,
    shareThreshold: params.shareThreshold,
    length: params.length,
    graphSeed: bytesToHex(params.graphSeed),
    version: model.version,
    layoutHash: model.layoutHash,
    clipNorm: model.clipNorm,
    summands: encoding.summands,
    bits: encoding.bits,
    noiseVariance: encoding.noiseVariance,
    ...(encoding.rotation === undefined ? {} : { rotation: encoding.rotation }),
  };
}

function refuse(detail: string): never {
  throw new HearthError('HEARTH_E_SECAGG_PARAMS', detail);
}

/**
 * The protocol's parameters from a server's `params` reply, checked as the device must: the round
 * is well formed (checkParams), names this device, sums over at least `minimum` devices (the
 * manifest's m: a server that lowered t could unmask a sum of few), and encodes with the clip the
 * device clipped to, over the round's n summands.
 */
export function paramsFromInfo(
  info: SecureRoundInfo,
  self: number,
  expected: { readonly minimum: number; readonly clipNorm: number },
): SecAggParams {
  if (typeof info !== 'object' || info === null) refuse('round parameters are not an object');
  if (typeof info.graphSeed !== 'string' || !/^[0-9a-f]{64}$/.test(info.graphSeed)) {
    refuse('graphSeed must be 64 hex characters');
  }
  const params: SecAggParams = {
    roundId: info.roundId,
    devices: info.devices,
    threshold: info.threshold,
    neighbours: info.neighbours,
    shareThreshold: info.shareThreshold,
    length: info.length,
    graphSeed: hexToBytes(info.graphSeed),
  };
  checkParams(params);
  if (!info.devices.includes(self)) refuse(`device ${self} is not in the round`);
  if (info.threshold < Math.max(2, expected.minimum)) {
    refuse(`threshold ${info.threshold} is below the ${expected.minimum} devices a sum must hold`);
  }
  if (info.clipNorm !== expected.clipNorm) {
    refuse(
      `the round encodes with clip ${info.clipNorm}, the device clipped to ${expected.clipNorm}`,
    );
  }
  if (!(Number.isSafeInteger(info.summands) && info.summands >= info.devices.length)) {
    refuse(`the encoding must leave room for the round's ${info.devices.length} updates`);
  }
  if (!SECURE_RING_BITS.includes(info.bits)) refuse('the ring must be of 16, 24 or 32 bits');
  if (info.rotation !== undefined && !isRotationBlock(info.rotation)) {
    refuse(`rotation block ${info.rotation} is not a power of two up to 2^14`);
  }
  const variance = info.noiseVariance;
  if (!(typeof variance === 'number' && variance >= 0 && variance <= MAX_SKELLAM_VARIANCE)) {
    refuse(`noise variance ${variance} is not in [0, 2^50]`);
  }
  return params;
}

/**
 * The DP a secure round gives one device that knows it took part (sampling rate 1), from the
 * round's public parameters alone: each of the round's devices adds Skellam noise of variance
 * `noiseVariance`, so any sum the server can unmask (at least `threshold` devices) carries mu =
 * threshold * noiseVariance per coordinate; the sensitivities are those of the device's own
 * fixed-point rounding (server/secure-rounds.ts's secureEncoding is the other side).
 */
export function roundPrivacy(info: SecureRoundInfo): RoundPrivacySettings {
  const mu = info.threshold * info.noiseVariance;
  if (!(mu > 0)) return { noiseMultiplier: 0, sampleRate: 1 };
  const scale = encodingScale(info);
  return {
    noiseMultiplier: Math.sqrt(mu) / (info.clipNorm * scale),
    sampleRate: 1,
    skellam: { mu, ...roundingSensitivity(info.clipNorm, scale, info.length) },
  };
}

/**
 * The sensitivities of a device's encoded update, whose rounding is conditional (fixed-point.ts
 * ROUNDING_BETA): what the server records for a round (secure-rounds.ts) and a device prices. The
 * L2 one is also the bound a device's rounding is drawn within (roundingBound).
 */
export function roundingSensitivity(
  clip: number,
  scale: number,
  dimension: number,
): { readonly l1: number; readonly l2: number } {
  return skellamSensitivity({ clip, scale, dimension, beta: ROUNDING_BETA });
}

/** The L2 norm a device's rounded update must keep within, in the round of `info`. */
export function roundingBound(info: SecureRoundInfo): number {
  return roundingSensitivity(info.clipNorm, encodingScale(info), info.length).l2;
}

/**
 * The most one device's coordinate may be in the round of `info` (update units): S, or the
 * rotated bound when the round rotates. fixed-point.ts encodes and decodes at this bound.
 */
export function coordinateBound(info: {
  readonly clipNorm: number;
  readonly rotation?: number;
}): number {
  return info.rotation === undefined
    ? info.clipNorm
    : rotatedCoordinateBound(info.clipNorm, info.rotation);
}

/** Integer units per update unit in the round of `info`. */
export function encodingScale(info: SecureRoundInfo): number {
  return fixedPointScale(coordinateBound(info), info.summands, info.bits);
}

/**
 * The vector a device encodes for the round of `info` from its clipped update: the update itself,
 * or rotated (rotation.ts) when the round rotates. Throws HEARTH_E_SECAGG_PARAMS when the update's
 * length is not the one the round sums.
 */
export function summedVector(input: ArrayLike<number>, info: SecureRoundInfo): ArrayLike<number> {
  const { rotation } = info;
  const length = rotation === undefined ? input.length : rotatedLength(input.length, rotation);
  if (length !== info.length) {
    refuse(`the round sums ${info.length} values, the update has ${input.length}`);
  }
  if (rotation === undefined) return input;
  return rotate(input, rotationSigns(hexToBytes(info.graphSeed), info.length), rotation);
}

/**
 * A device's clipped update in the round's fixed point (`info`: clip, summands, ring, and the
 * rotation when the round rotates), rounded conditionally within the L2 bound its privacy is
 * priced at (roundingBound), before its share of the noise is added. Throws
 * HEARTH_E_SECAGG_PARAMS when the update is not of the length the round sums.
 */
export function encodeInput(
  input: ArrayLike<number>,
  info: SecureRoundInfo,
  random?: RandomBytes,
): Uint32Array {
  return encodeFixedPoint(
    summedVector(input, info),
    coordinateBound(info),
    info.summands,
    info.bits,
    {
      ...(random ? { random } : {}),
      maxNorm: roundingBound(info),
    },
  );
}

/**
 * The decoded sum of the round of `info` in the update's coordinates: the rotation undone and the
 * padding dropped, or the sum as it is when the round does not rotate.
 */
export function sumInUpdate(
  decoded: ArrayLike<number>,
  info: SecureRoundInfo,
  updateLength: number,
): Float64Array {
  const { rotation } = info;
  if (rotation === undefined) return Float64Array.from(decoded);
  return unrotate(
    decoded,
    rotationSigns(hexToBytes(info.graphSeed), info.length),
    rotation,
    updateLength,
  );
}
