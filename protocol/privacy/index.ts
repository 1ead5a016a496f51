/** The privacy maths shared by the server and the device: the RDP accountant and its numerics. */
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
