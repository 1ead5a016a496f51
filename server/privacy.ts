/**
 * The server's privacy accounting: cumulative (epsilon, delta) of everything published so far, from
 * the ledger of (z, q) per published round and the protocol's RDP accountant, and the budget check
 * that stops new rounds before publishing one would push epsilon past the operator's budget.
 *
 * One published round is one step of the sampled Gaussian mechanism: devices join with probability q,
 * each contributes one update clipped to S, and the fixed-denominator mean gets N(0, (z S / m)^2)
 * noise (see aggregate.ts). RDP composes additively, so rounds published under different (z, q) (an
 * operator changed the flags) are summed per order before the conversion. A round published without
 * noise has no finite epsilon, and nor does anything after it. Under a staleness bound s a round is
 * charged at the effective rate q_eff = min(1, (s + 1) q), not q (effectiveSampleRate).
 */
import { HearthError } from '../protocol/errors.js';
import {
  ledgerEpsilon,
  ledgerRounds,
  windowNoiseMultiplier,
  type RoundPrivacySettings,
} from '../protocol/privacy/index.js';
import type { ServerConfig } from './config.js';

/** What `GET /v1/privacy` reports (Infinity and NaN become null in the JSON reply). */
export interface PrivacyReport {
  readonly noise: 'on' | 'off';
  readonly noiseMultiplier: number;
  /** q: the configured chance of a device taking part, which its coin uses (the manifest's). */
  readonly sampleRate: number;
  /** s: how many versions behind an update may be and still be counted (`--max-staleness`). */
  readonly maxStaleness: number;
  /** The sampling rate the accountant charges each next round at: q_eff = min(1, (s + 1) q), q in windows. */
  readonly effectiveSampleRate: number;
  /** T: the round window in seconds (`--round-window`); 0 when rounds close on their m-th update. */
  readonly roundWindowSeconds: number;
  /** σ_c: the std of the noise on a window's count (meaningful only with windows). */
  readonly countNoise: number;
  /** The noise multiplier each next round is charged at: z, or the window's combined one. */
  readonly chargedNoiseMultiplier: number;
  readonly delta: number;
  readonly clipNorm: number;
  readonly minCohort: number;
  /** Rounds the accountant counts (every round in the ledger: with windows, every closed window). */
  readonly rounds: number;
  /** Cumulative epsilon at `delta` over those rounds; Infinity without noise. */
  readonly epsilon: number;
  /** RDP order that gave epsilon; NaN when epsilon is infinite. */
  readonly bestOrder: number;
  /** The configured budget; Infinity when none. */
  readonly epsilonBudget: number;
  /** True when publishing one more round under the current settings would exceed the budget. */
  readonly exhausted: boolean;
}

/**
 * The sampling rate one published round is charged at under the staleness bound s: q_eff =
 * min(1, (s + 1) q). Why: each device flips one coin per model version, heads with probability q
 * (worker/participation.ts), and an update computed on version v is counted in whichever round is
 * collecting when it arrives, any of the rounds on v..v+s. So the round on version w may hold this
 * device's update through the coin of any of the versions w-s..w: its taking part in that round is
 * the union of up to s + 1 independent events of probability q each, and Pr <= (s + 1) q (union
 * bound; the exact 1 - (1 - q)^(s+1) is smaller, so charging (s + 1) q over-counts, never under). It
 * still contributes at most one update to the round, because a round token is single use and a device
 * takes part in a round at most once; so one device still moves the fixed-denominator mean by at most
 * S / m, and each round stays one step of the sampled Gaussian mechanism, now at rate q_eff.
 * With s = 0 this is q: a device takes part only in the round of the version it flipped for.
 */
export function effectiveSampleRate(sampleRate: number, maxStaleness: number): number {
  return Math.min(1, (maxStaleness + 1) * sampleRate);
}

/** The noise multiplier of a round window's sum and count together (protocol/privacy/ledger.ts). */
export { windowNoiseMultiplier };

/** The settings that decide what a round (or a round window) is charged. */
export type ChargeConfig = Pick<
  ServerConfig,
  'noiseMultiplier' | 'sampleRate' | 'maxStaleness' | 'roundWindowSeconds' | 'countNoise'
>;

/**
 * The (z, q) the next round will be published under, as the ledger records it: z and q_eff for a
 * round that closes on its m-th update; for a round window, the combined multiplier of its sum and
 * count (windowNoiseMultiplier) at q itself (s = 0), whether or not it publishes.
 */
export function currentSettings(config: ChargeConfig): RoundPrivacySettings {
  if (config.roundWindowSeconds > 0) {
    return {
      noiseMultiplier: windowNoiseMultiplier(config.noiseMultiplier, config.countNoise),
      sampleRate: config.sampleRate,
    };
  }
  return {
    noiseMultiplier: config.noiseMultiplier,
    sampleRate: effectiveSampleRate(config.sampleRate, config.maxStaleness),
  };
}

/** True when publishing one more round under the config's settings would exceed the budget. */
export function budgetExhausted(
  ledger: readonly RoundPrivacySettings[],
  config: ServerConfig,
): boolean {
  // No budget: nothing to compute (and no ledger scan on every join).
  if (config.epsilonBudget === Infinity) return false;
  return (
    ledgerEpsilon([...ledger, currentSettings(config)], config.delta).epsilon > config.epsilonBudget
  );
}

/** Throws HEARTH_E_PRIVACY_BUDGET when another round would exceed the budget. */
export function assertBudgetAllowsRound(
  ledger: readonly RoundPrivacySettings[],
  config: ServerConfig,
): void {
  if (budgetExhausted(ledger, config)) {
    const spent = ledgerEpsilon(ledger, config.delta).epsilon;
    throw new HearthError(
      'HEARTH_E_PRIVACY_BUDGET',
      `epsilon ${spent} after ${ledgerRounds(ledger)} rounds; one more would exceed the budget ` +
        `${config.epsilonBudget} at delta ${config.delta}`,
    );
  }
}

/** The privacy report of a ledger under a config. */
export function privacyReport(
  ledger: readonly RoundPrivacySettings[],
  config: ServerConfig,
): PrivacyReport {
  const noiseOn = config.noiseMultiplier > 0;
  // With noise off the server promises nothing, whatever earlier rounds did.
  const spent = noiseOn ? ledgerEpsilon(ledger, config.delta) : { epsilon: Infinity, order: NaN };
  return {
    noise: noiseOn ? 'on' : 'off',
    noiseMultiplier: config.noiseMultiplier,
    sampleRate: config.sampleRate,
    maxStaleness: config.maxStaleness,
    effectiveSampleRate: currentSettings(config).sampleRate,
    roundWindowSeconds: config.roundWindowSeconds,
    countNoise: config.countNoise,
    chargedNoiseMultiplier: currentSettings(config).noiseMultiplier,
    delta: config.delta,
    clipNorm: config.clipNorm,
    minCohort: config.minCohort,
    rounds: ledgerRounds(ledger),
    epsilon: spent.epsilon,
    bestOrder: spent.order,
    epsilonBudget: config.epsilonBudget,
    exhausted: budgetExhausted(ledger, config),
  };
}

/** The report as JSON-safe values: non-finite numbers (no noise, no budget) become null. */
export function privacyReportJson(
  report: PrivacyReport,
): Record<string, string | number | boolean | null> {
  const finite = (n: number): number | null => (Number.isFinite(n) ? n : null);
  return {
    ...report,
    epsilon: finite(report.epsilon),
    bestOrder: finite(report.bestOrder),
    epsilonBudget: finite(report.epsilonBudget),
  };
}

/** What a steady traffic spends under a config (trafficEpsilon). */
export interface TrafficPrivacy {
  readonly visitorsPerDay: number;
  /** Updates a day, N q, and the rounds they fill, N q / m (with windows: windows a day). */
  readonly updatesPerDay: number;
  readonly roundsPerDay: number;
  /**
   * Whether a round fills before the round deadline abandons it (else nothing is published); with
   * round windows, whether a window expects m updates (else it mostly closes unpublished, charged).
   */
  readonly roundsFill: boolean;
  /** Epsilon at the config's delta after each of `days`, the ledger's rounds by then. */
  readonly epsilon: readonly {
    readonly days: number;
    readonly rounds: number;
    readonly epsilon: number;
  }[];
}

/**
 * The (epsilon, delta) a site's visitors are charged at a steady traffic of `visitorsPerDay`: each
 * visits once a day and joins with probability q, so N q updates a day fill N q / m rounds, each
 * charged at q_eff as the server's ledger charges it (currentSettings). Every visitor is charged
 * for every round, whether or not its coin came up (user-level DP). A round that needs longer than
 * the round deadline to fill is abandoned unpublished: it spends nothing, and nothing is learned.
 * With round windows of T seconds, every window is charged, published or not: 86,400 / T rounds a
 * day whatever the traffic, and `roundsFill` says whether a window expects its m updates.
 */
export function trafficEpsilon(
  config: Pick<ServerConfig, 'minCohort' | 'delta' | 'roundDeadlineSeconds'> & ChargeConfig,
  visitorsPerDay: number,
  days: readonly number[],
): TrafficPrivacy {
  const updatesPerDay = visitorsPerDay * config.sampleRate;
  const windows = config.roundWindowSeconds > 0;
  const windowsPerDay = 86_400 / config.roundWindowSeconds;
  const roundsPerDay = windows ? windowsPerDay : updatesPerDay / config.minCohort;
  const roundsFill = windows
    ? updatesPerDay / windowsPerDay >= config.minCohort
    : roundsPerDay > 0 && 86_400 / roundsPerDay <= config.roundDeadlineSeconds;
  const settings = currentSettings(config);
  return {
    visitorsPerDay,
    updatesPerDay,
    roundsPerDay,
    roundsFill,
    epsilon: days.map((d) => {
      const rounds = roundsFill || windows ? Math.floor(roundsPerDay * d + 1e-9) : 0;
      const { epsilon } = ledgerEpsilon(
        rounds > 0 ? [{ ...settings, steps: rounds }] : [],
        config.delta,
      );
      return { days: d, rounds, epsilon };
    }),
  };
}
