/**
 * The privacy maths shared by the server and the device: the RDP accountants (sampled Gaussian;
 * distributed Skellam), the PLD accountant (sampled Gaussian), their numerics, and the device's
 * Skellam noise.
 */
export {
  checkDelta,
  checkNoise,
  checkOrders,
  checkSampleRate,
  checkSteps,
  computeEpsilon,
  computeRdp,
  DEFAULT_ORDERS,
  epsilonFromRdp,
  OPACUS_ORDERS,
  type EpsilonResult,
  type PrivacyParams,
} from './rdp.js';
export {
  computeSkellamEpsilon,
  computeSkellamRdp,
  SKELLAM_ORDERS,
  skellamRdp,
  skellamSensitivity,
  type QuantisationParams,
  type SkellamPrivacyParams,
  type SkellamSensitivity,
} from './skellam.js';
export {
  epsilonCurve,
  ledgerEpsilon,
  ledgerRounds,
  stepsOf,
  windowNoiseMultiplier,
  type RoundPrivacySettings,
  type SkellamRound,
} from './ledger.js';
export { DEFAULT_LOSS_GRID, pldDelta, pldEpsilon, type GaussianRounds } from './pld.js';
export { poissonSubsampledRdp } from './subsampled-rdp.js';
export { addSkellamNoise, MAX_SKELLAM_VARIANCE, sampleSkellam } from './skellam-sampler.js';
export { MAX_POISSON_MEAN, poissonSampler, samplePoisson } from './poisson.js';
export { cryptoUniform, type UniformSource } from './uniform.js';
