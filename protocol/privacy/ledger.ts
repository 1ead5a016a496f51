/**
 * Composing published rounds into one (epsilon, delta): the server's ledger of every round it
 * published (server/privacy.ts) and a device's ledger of the rounds it took part in
 * (worker/ledger.ts) are priced by the same code. RDP composes additively, so rounds under
 * different settings or mechanisms are summed per order before the one conversion.
 */
import { computeRdp, DEFAULT_ORDERS, epsilonFromRdp, type EpsilonResult } from './rdp.js';
import { computeSkellamRdp, SKELLAM_ORDERS } from './skellam.js';

/**
 * The distributed Skellam noise of a secure round (skellam.ts), in the integer units the devices
 * sent: mu, the noise variance per coordinate of the smallest sum the server could unmask, and the
 * L1 and L2 sensitivities of one device's rounded update.
 */
export interface SkellamRound {
  readonly mu: number;
  readonly l1: number;
  readonly l2: number;
}

/** The DP parameters a round was published under (z = 0: no noise). */
export interface RoundPrivacySettings {
  /**
   * z: with `skellam` absent, the round's mean got Gaussian noise of std z S / m from the server;
   * with it, the devices' noise, of about the same size (z = sqrt(mu) / Delta2 there).
   */
  readonly noiseMultiplier: number;
  /**
   * The sampling rate the round is charged at: for the server, the effective q_eff = min(1, (s + 1)
   * q) of server/privacy.ts; for a device pricing a round it knows it took part in, 1.
   */
  readonly sampleRate: number;
  /** Present when the noise came from the devices of a secure round, not from the server. */
  readonly skellam?: SkellamRound;
  /**
   * How many rounds under these same settings the entry stands for (round windows that closed
   * with no update, charged together: server/round-windows.ts); 1 when absent.
   */
  readonly steps?: number;
}

/**
 * The noise multiplier of a round window's release (server/round-windows.ts): its noised sum
 * (sensitivity S, noise z S) and its noised count (sensitivity 1, noise σ_c) together are one
 * Gaussian mechanism of L2 sensitivity sqrt(1/z^2 + 1/σ_c^2) in units of their noise, i.e. of noise
 * multiplier (1/z^2 + 1/σ_c^2)^(-1/2): 1.1915 for z = 1.2 and σ_c = 10. 0 with noise off.
 */
export function windowNoiseMultiplier(noiseMultiplier: number, countNoise: number): number {
  if (!(noiseMultiplier > 0)) return 0;
  return 1 / Math.sqrt(1 / noiseMultiplier ** 2 + 1 / countNoise ** 2);
}

/** The rounds a ledger entry stands for (RoundPrivacySettings.steps). */
export function stepsOf(round: RoundPrivacySettings): number {
  return round.steps ?? 1;
}

/** The rounds a ledger stands for, spans counted by their steps. */
export function ledgerRounds(rounds: readonly RoundPrivacySettings[]): number {
  return rounds.reduce((sum, round) => sum + stepsOf(round), 0);
}

/** Per-step RDP of a round's settings at `orders`, memoised: every join would otherwise redo it. */
const perStepRdp = new Map<string, readonly number[]>();

function rdpPerStep(settings: RoundPrivacySettings, orders: readonly number[]): readonly number[] {
  const { sampleRate: q, noiseMultiplier: z, skellam } = settings;
  const key = JSON.stringify([orders.length, q, z, skellam?.mu, skellam?.l1, skellam?.l2]);
  let rdp = perStepRdp.get(key);
  if (!rdp) {
    // A secure round's noise is the devices' Skellam noise (general subsampling bound); any other
    // round's is the server's Gaussian (exact sampled-Gaussian analysis).
    rdp = skellam
      ? computeSkellamRdp(skellam, skellam.mu, q, 1, orders)
      : computeRdp(q, z, 1, orders);
    perStepRdp.set(key, rdp);
  }
  return rdp;
}

/**
 * Epsilon at `delta` after the given rounds (any mix of settings and mechanisms). No rounds:
 * epsilon 0. Any round without noise (z = 0): Infinity, order NaN. With any secure round among
 * them, every round is taken at the integer orders the Skellam bound is stated for.
 */
export function ledgerEpsilon(
  rounds: readonly RoundPrivacySettings[],
  delta: number,
): EpsilonResult {
  const orders = ordersFor(rounds);
  const total = new Array<number>(orders.length).fill(0);
  for (const round of rounds) {
    if (!(round.noiseMultiplier > 0)) return { epsilon: Infinity, order: NaN };
    addRound(total, round, orders);
  }
  return epsilonFromRdp(orders, total, delta);
}

/**
 * Cumulative epsilon at `delta` after each round (the dashboard's and the device ledger's curve),
 * in one pass: RDP adds up per order, so each prefix costs one conversion rather than a re-sum.
 * Infinity from the first round without noise on.
 */
export function epsilonCurve(rounds: readonly RoundPrivacySettings[], delta: number): number[] {
  const orders = ordersFor(rounds);
  const total = new Array<number>(orders.length).fill(0);
  const curve: number[] = [];
  let infinite = false;
  for (const round of rounds) {
    infinite ||= !(round.noiseMultiplier > 0);
    if (infinite) {
      curve.push(Infinity);
      continue;
    }
    addRound(total, round, orders);
    curve.push(epsilonFromRdp(orders, total, delta).epsilon);
  }
  return curve;
}

function ordersFor(rounds: readonly RoundPrivacySettings[]): readonly number[] {
  return rounds.some((round) => round.skellam) ? SKELLAM_ORDERS : DEFAULT_ORDERS;
}

function addRound(total: number[], round: RoundPrivacySettings, orders: readonly number[]): void {
  const rdp = rdpPerStep(round, orders);
  const steps = stepsOf(round);
  for (let k = 0; k < total.length; k++) total[k] = total[k]! + steps * rdp[k]!;
}
