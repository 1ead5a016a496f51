/**
 * Secure aggregation for Hearth's federated rounds: SecAgg+ (Bell, Bonawitz, Gascón, Lepoint,
 * Raykova, CCS 2020) on the protocol of Bonawitz et al. (CCS 2017). The server learns the sum of at
 * least t devices' inputs and nothing else, against an honest-but-curious server that keeps
 * everything and colludes with fewer than t devices, with devices dropping out at any stage.
 * Transport-free: the device and server steps take and return plain messages.
 */
export { type RandomBytes, defaultRandomBytes } from './crypto.js';
export {
  advertiseKeys,
  maskInput,
  shareKeys,
  unmaskShares,
  type DeviceRound,
  type HeldShares,
} from './device.js';
export {
  decodeFixedPointSum,
  encodeFixedPoint,
  fixedPointScale,
  ROUNDING_BETA,
  type EncodeOptions,
  type Rounding,
} from './fixed-point.js';
export { neighbourGraph, ringOrder, type NeighbourGraph } from './graph.js';
export {
  runRoundInProcess,
  type DropPoint,
  type InProcessResult,
  type InProcessRound,
  type Transcript,
} from './in-process.js';
export type {
  EncryptedShare,
  KeysMessage,
  MaskedInputMessage,
  OwnedShare,
  SharesMessage,
  UnmaskRequest,
  UnmaskResponse,
} from './messages.js';
export {
  checkParams,
  effectiveNeighbours,
  MAX_HOLDERS,
  MAX_LENGTH,
  type DeviceId,
  type SecAggParams,
} from './params.js';
export { acceptUnmask, finishRound, type RoundResult } from './server-unmask.js';
export {
  acceptKeys,
  acceptMaskedInput,
  acceptShares,
  closeKeys,
  closeMaskedInputs,
  closeShares,
  startRound,
  type ServerRound,
} from './server.js';
export {
  decodeForwarded,
  decodeKeys,
  decodeMasked,
  decodeRequest,
  decodeRoster,
  decodeShares,
  decodeUnmask,
  encodeForwarded,
  encodeKeys,
  encodeMasked,
  encodeRequest,
  encodeRoster,
  encodeShares,
  encodeUnmask,
  MAX_SHARE_BYTES,
  WIRE_TAGS,
  wordBytes,
  type WordBytes,
} from './wire.js';
