/**
 * Norm and direction statistics of rounds over a window (`--round-guard`).
 *
 * Plaintext rounds: each accepted update adds its unit vector to its round's running sum, so a
 * published round of n updates has, in O(P) memory and one pass:
 *
 *   coherence = mean pairwise cosine = (|sum_i u_i / |u_i||^2 - n) / (n (n - 1))
 *   atBound   = the share of its updates whose norm is at the clip bound S
 *
 * Secure rounds: the server sees only the unmasked sum, which carries the devices' noise. Its
 * energy beyond the noise's expected energy, per the most n devices could put there,
 *
 *   sumEnergy = (|sum|^2 - L sigma^2) / (n S)^2     (about 1/n + coherence when every norm is S)
 *
 * is judged instead. Its floor is the spread the noise alone gives the energy of a sum s,
 * sqrt(2 L sigma^4 + 4 sigma^2 |s|^2) / (n S)^2 (the noise's own energy, and its cross term with the
 * sum), at the window's median energy.
 * It reads only the noisy sum, which the accountant already charges: a decision on it is
 * post-processing, and so allowed with noise on.
 *
 * Fake clients that push one way send updates that point alike and carry all of S; honest devices
 * train on different sessions. A round whose statistic stands more than `threshold` robust standard
 * deviations above the median of the last `window` rounds that were judged normal (median and MAD,
 * with a floor on the spread) is anomalous. The server logs it and counts it
 * (`hearth_round_anomalies_total`); with `--round-guard rollback` a plaintext round's base weights
 * are published again over it (Store.republish), as a validation rollback does, and a secure round
 * is abandoned before it is published (`HEARTH_E_SECAGG_ANOMALY`).
 *
 * What it is not: a window learns what is normal from the rounds it has seen, so an attack that is
 * there from the first round, or that grows slowly, becomes the norm; fake clients that decorrelate
 * their updates (each adds its own noise) lower the coherence they show. A plaintext decision reads
 * the raw updates, which the DP accountant does not cover, so plaintext rollback is refused with
 * noise on (config.ts). Each instance keeps its own window in memory: with several instances, the
 * one that completes a round judges it from the updates it received, and a restart starts an empty
 * window.
 */

import { median } from './robust.js';

/** What the guard does with an anomalous round. */
export const ROUND_GUARD_MODES = ['off', 'flag', 'rollback'] as const;
export type RoundGuardMode = (typeof ROUND_GUARD_MODES)[number];

/** The statistics a round is judged on. */
export const ROUND_STATISTICS = ['coherence', 'atBound', 'sumEnergy'] as const;
export type RoundStatistic = (typeof ROUND_STATISTICS)[number];

/** Rounds the window must hold before any round is judged. */
export const MIN_WINDOW = 5;

/**
 * Smallest robust standard deviation a statistic is judged with: rounds of honest devices can agree
 * so closely that their MAD is ~0, and then any small change would count.
 */
export const SPREAD_FLOOR = 0.01;

/** Relative distance below S at which a norm counts as at the bound (float16 uploads round it). */
const AT_BOUND = 1e-2;

/** One round's statistics: coherence and atBound of a plaintext round, sumEnergy of a secure one. */
export interface RoundStatistics {
  /** The round's id (a number for plaintext rounds, a string for secure ones). */
  readonly round: number | string;
  readonly updates: number;
  readonly coherence?: number;
  readonly atBound?: number;
  readonly sumEnergy?: number;
}

/** A statistic of a round beyond the window. */
export interface Anomaly {
  readonly round: number | string;
  readonly statistic: RoundStatistic;
  readonly value: number;
  readonly median: number;
  /** The robust standard deviation it was judged with (1.4826 MAD, at least SPREAD_FLOOR). */
  readonly spread: number;
}

/** A published round's statistics, and what of them stands out. */
export interface Judgement {
  readonly statistics: RoundStatistics;
  readonly anomalies: readonly Anomaly[];
}

interface OpenRound {
  readonly sum: Float64Array;
  n: number;
  atBound: number;
}

/** Open rounds kept at once (older ones were abandoned, or published by another instance). */
const OPEN_ROUNDS = 4;

/** The mean pairwise cosine of n unit vectors whose sum is `sum`; 0 for fewer than two. */
export function coherenceOf(sum: Float64Array, n: number): number {
  if (n < 2) return 0;
  let sq = 0;
  for (const x of sum) sq += x * x;
  return (sq - n) / (n * (n - 1));
}

/**
 * Judges `value` against the window's values of one statistic; undefined while it is normal.
 * `floor(median)` bounds the spread from below (SPREAD_FLOOR unless given).
 */
export function beyondWindow(
  value: number,
  window: readonly number[],
  threshold: number,
  floor: (median: number) => number = () => SPREAD_FLOOR,
): { median: number; spread: number } | undefined {
  if (window.length < MIN_WINDOW) return undefined;
  const mid = median(window);
  const mad = median(window.map((v) => Math.abs(v - mid)));
  const spread = Math.max(1.4826 * mad, floor(mid));
  return value > mid + threshold * spread ? { median: mid, spread } : undefined;
}

/**
 * The spread of a share p among n updates by chance alone, sqrt(p (1 - p) / n) with p at least 1/n
 * (a window where no update was at the bound still allows one), and at least SPREAD_FLOOR.
 */
export function atBoundFloor(p: number, n: number): number {
  const q = Math.min(Math.max(p, 1 / n), 1 - 1 / n);
  return Math.max(SPREAD_FLOOR, Math.sqrt((q * (1 - q)) / n));
}

/** Statistics of one instance's plaintext rounds, and the window they are judged against. */
export class RoundGuard {
  private readonly open = new Map<number, OpenRound>();
  private readonly closed = new Set<number>();
  private readonly normal: RoundStatistics[] = [];
  private readonly normalSums: RoundStatistics[] = [];
  private readonly counts = new Map<RoundStatistic, number>();
  private last: RoundStatistics | undefined;
  /** Anomalous rounds undone: republished over (plaintext) or abandoned (secure). */
  rollbacks = 0;

  constructor(
    private readonly options: {
      readonly window: number;
      readonly threshold: number;
      readonly clipNorm: number;
    },
  ) {}

  /** Adds an accepted update (its delta as counted in `round`, and its norm as received). */
  observe(round: number, delta: Float32Array, norm: number): void {
    if (this.closed.has(round) || !(norm > 0)) return;
    let open = this.open.get(round);
    if (!open) {
      open = { sum: new Float64Array(delta.length), n: 0, atBound: 0 };
      this.open.set(round, open);
      for (const old of [...this.open.keys()].sort((a, b) => a - b)) {
        if (this.open.size <= OPEN_ROUNDS) break;
        this.open.delete(old);
      }
    }
    // A round's updates share its layout; one that does not (a bug) is left out, never mixed in.
    if (delta.length !== open.sum.length) return;
    for (let i = 0; i < delta.length; i++) open.sum[i]! += delta[i]! / norm;
    open.n++;
    if (norm >= this.options.clipNorm * (1 - AT_BOUND)) open.atBound++;
  }

  /**
   * Closes a published round: its statistics and anomalies against the window. A normal round joins
   * the window (so an attack does not become the norm while it is flagged). Undefined when this
   * instance saw fewer than two of its updates.
   */
  close(round: number): Judgement | undefined {
    const open = this.open.get(round);
    this.open.delete(round);
    this.closed.add(round);
    if (this.closed.size > 4 * OPEN_ROUNDS) this.closed.delete(Math.min(...this.closed));
    if (!open || open.n < 2) return undefined;
    const statistics: RoundStatistics = {
      round,
      updates: open.n,
      coherence: coherenceOf(open.sum, open.n),
      atBound: open.atBound / open.n,
    };
    return this.judge(statistics, this.normal, {
      coherence: undefined,
      atBound: (p) => atBoundFloor(p, open.n),
    });
  }

  /**
   * Judges a secure round from its unmasked sum of n devices' updates (its L2 norm and length),
   * whose noise has variance `noiseVariance` per coordinate (the devices' noise and rounding, in
   * the update's units).
   */
  closeSum(
    round: string,
    sum: { readonly norm: number; readonly length: number },
    n: number,
    noiseVariance: number,
  ): Judgement {
    const most = (n * this.options.clipNorm) ** 2;
    const statistics: RoundStatistics = {
      round,
      updates: n,
      sumEnergy: (sum.norm ** 2 - sum.length * noiseVariance) / most,
    };
    // The spread of |s + noise|^2 over the noise, for a sum s of the window's median energy.
    const noiseSpread = (median: number) =>
      Math.sqrt(
        2 * sum.length * noiseVariance ** 2 + 4 * noiseVariance * Math.max(0, median) * most,
      ) / most;
    return this.judge(statistics, this.normalSums, {
      sumEnergy: (median) => Math.max(SPREAD_FLOOR, noiseSpread(median)),
    });
  }

  /** Judges the statistics `floors` names against `window`; a normal round joins the window. */
  private judge(
    statistics: RoundStatistics,
    window: RoundStatistics[],
    floors: Partial<Record<RoundStatistic, ((median: number) => number) | undefined>>,
  ): Judgement {
    const anomalies: Anomaly[] = [];
    for (const statistic of Object.keys(floors) as RoundStatistic[]) {
      const value = statistics[statistic]!;
      const beyond = beyondWindow(
        value,
        window.map((s) => s[statistic]!),
        this.options.threshold,
        floors[statistic],
      );
      if (beyond) anomalies.push({ round: statistics.round, statistic, value, ...beyond });
    }
    this.last = statistics;
    for (const { statistic } of anomalies) {
      this.counts.set(statistic, (this.counts.get(statistic) ?? 0) + 1);
    }
    if (anomalies.length === 0) {
      window.push(statistics);
      if (window.length > this.options.window) window.shift();
    }
    return { statistics, anomalies };
  }

  /** Anomalous rounds by statistic, and the last judged round, for the operator's metrics. */
  summary(): {
    readonly anomalies: ReadonlyMap<RoundStatistic, number>;
    readonly rollbacks: number;
    readonly last: RoundStatistics | undefined;
  } {
    return { anomalies: new Map(this.counts), rollbacks: this.rollbacks, last: this.last };
  }

  /** The rounds in the windows (plaintext, then secure), oldest first. */
  window(): readonly RoundStatistics[] {
    return [...this.normal, ...this.normalSums];
  }
}
