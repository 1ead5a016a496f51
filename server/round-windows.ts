/**
 * Round windows (`--round-window T`): rounds on a clock fixed in advance, so that which updates a
 * round holds, and when it closes, depend on no device's update. Window r takes every update that
 * arrives in [r T, (r + 1) T) seconds since the Unix epoch on the version current when it began,
 * with no cap at m, and nothing is carried over (s = 0: an update that misses its window is refused,
 * and a device flips one coin per window, worker/participation.ts). When a window ends:
 *
 * - its count c gets Gaussian noise of std σ_c (`--count-noise`), and it publishes only if
 *   ĉ = c + N(0, σ_c²) reaches m, as the mean over ĉ of its clipped updates plus N(0, (z S / ĉ)²):
 *   the sum with noise z S, divided by a number that is itself released with noise. Deciding on c
 *   itself would release c, which one device moves by 1;
 * - it is charged in the ledger whether or not it published: the noised sum and the noised count
 *   together are one Gaussian mechanism of noise multiplier (1/z² + 1/σ_c²)^(-1/2)
 *   (privacy.ts windowNoiseMultiplier), sampled at q, since a device is in a window only through
 *   that window's own coin. Windows that ended with no round at all are charged too, while the
 *   budget has room (store.ts RoundWindows): otherwise the ledger's length would tell them apart.
 *   Each of them draws its noised count as well, and publishes its noise if that reaches m
 *   (store-rules.ts emptyWindowRuns): publishing nothing for want of a round would decide on the
 *   count itself.
 *
 * A device joins naming the window its coin was flipped for, and the server refuses a join for any
 * other window (checkJoinWindow): a device whose clock is off by a few seconds could otherwise
 * spend the coins of two of its own windows in one of the server's, and be in it at rate 2q.
 *
 * A window folds its updates into a running sum of clipped updates m at a time as they arrive, and
 * erases their vectors, so that closing a busy window does not stall the server folding it all.
 *
 * Windows close lazily, like the round deadline they replace: when a device joins or posts, when
 * `GET /v1/privacy` is asked, and at start-up; the store closes every window that ended before the
 * request, in one transaction. Plaintext rounds only (config.ts checkWindows).
 */
import { HearthError } from '../protocol/errors.js';
import { roundWindowAt } from '../protocol/manifest.js';
import { ledgerEpsilon } from '../protocol/privacy/index.js';
import { addClipped } from './aggregate.js';
import type { ServerConfig } from './config.js';
import { cryptoGaussian, type GaussianRng } from './gaussian.js';
import { roundPolicy } from './ingest.js';
import { currentSettings } from './privacy.js';
import type { RoundPrivacy, RoundWindows } from './store.js';

/** The windows the store closes at `nowMs` under `config`; undefined when rounds are not windowed. */
export function roundWindows(
  config: ServerConfig,
  nowMs: number,
  rng?: GaussianRng,
): RoundWindows | undefined {
  if (config.roundWindowSeconds === 0) return undefined;
  const charge = currentSettings(config);
  return {
    seconds: config.roundWindowSeconds,
    current: roundWindowAt(nowMs, config.roundWindowSeconds),
    decide: (received) => {
      const noised = received + config.countNoise * (rng ?? cryptoGaussian())();
      if (!(noised >= config.minCohort)) return undefined;
      // Without noise (no privacy claimed) a window with no update has nothing to publish.
      if (received === 0 && !(config.noiseMultiplier > 0)) return undefined;
      return roundPolicy(config, rng, { denominator: noised });
    },
    // m at a time: closing a window then folds fewer than m updates, as a round of m would.
    foldEvery: config.minCohort,
    fold: (sum, updates) => addClipped(sum, updates, config.clipNorm),
    charge,
    chargeable: (ledger, count) => chargeableWindows(ledger, count, config),
  };
}

/**
 * The largest k <= count such that charging k more windows keeps epsilon within the budget
 * (binary search: epsilon grows with k). All of them without a budget.
 */
export function chargeableWindows(
  ledger: readonly RoundPrivacy[],
  count: number,
  config: ServerConfig,
): number {
  if (config.epsilonBudget === Infinity) return count;
  const charge = currentSettings(config);
  const fits = (k: number) =>
    k === 0 ||
    ledgerEpsilon([...ledger, { ...charge, steps: k }], config.delta).epsilon <=
      config.epsilonBudget;
  let low = 0;
  let high = count;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (fits(mid)) low = mid;
    else high = mid - 1;
  }
  return low;
}

/**
 * Refuses a join into window `current` unless its body names that window (`{ "window": r }`, the
 * index the device flipped its coin for) with HEARTH_E_ROUND_WINDOW; a device that flips a coin per
 * model version, or whose clock is in another window, would not be in the round at rate q.
 */
export function checkJoinWindow(body: unknown, current: number): void {
  const named =
    typeof body === 'object' && body !== null ? (body as { window?: unknown }).window : undefined;
  if (named !== current) {
    throw new HearthError(
      'HEARTH_E_ROUND_WINDOW',
      `the join names window ${Number.isInteger(named) ? String(named) : 'none'}; the current one is ${current}`,
    );
  }
}
