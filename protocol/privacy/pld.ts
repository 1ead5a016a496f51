/**
 * Privacy-loss-distribution (PLD) accountant for the Poisson-subsampled Gaussian mechanism: the
 * exact (epsilon, delta) curve of the composed rounds, computed numerically, rather than the RDP
 * bound of rdp.ts, which it never exceeds by more than its discretisation (Koskela, Jälkö, Honkela
 * 2020, "Computing tight differential privacy guarantees using FFT",
 * https://arxiv.org/abs/1906.03049; Doroshenko et al. 2022, "Connect the dots",
 * https://arxiv.org/abs/2207.04380, for the pessimistic rounding). Written from the papers; checked
 * against Google's dp_accounting published test values, and against the Gaussian mechanism's closed
 * form (pld.test.ts).
 *
 * One round with sampling rate q and noise multiplier z, for add/remove-one neighbours: under
 * "remove" the round's output is P = (1 - q) N(0, z^2) + q N(1, z^2) against Q = N(0, z^2), under
 * "add" the two swap, and the privacy loss at output x is log P(x) / Q(x), monotone in x. Its
 * distribution under P is placed on a grid of step h, each loss rounded up to the grid, so every
 * delta read from it is at least the true one: the result stays an upper bound (pessimistic).
 * Rounds compose by convolving their loss distributions (FFT); delta at epsilon is
 * E_P[(1 - e^(epsilon - L))+] plus the mass at infinite loss, and a round set's epsilon is the
 * larger of the two neighbour directions'.
 *
 * Tails: a round's outputs are cut where a normal's tail holds less than 1e-30; the mass beyond an
 * upper cut counts as infinite loss (it adds to delta in full), the mass below a lower cut is moved
 * up to the lowest loss kept. Each round's distribution, and each convolution's, is then cut the
 * same way of tails holding up to 1e-14, to keep the grid from growing with the rounds; each cut
 * can only raise delta, by at most that mass. The FFT's rounding (about 1e-16 of the largest mass,
 * per bin) is the one error that is not pessimistic by construction; it is orders of magnitude
 * below the deltas Hearth reads (1e-6).
 */
import { logAdd, logSub, normalCdf } from './log-math.js';
import { checkDelta, checkNoise, checkSampleRate, checkSteps, invalid } from './rdp.js';

/** Rounds of one sampled Gaussian mechanism: noise multiplier z, sampling rate q, how many. */
export interface GaussianRounds {
  readonly noise: number;
  readonly sampleRate: number;
  readonly steps: number;
}

/** The grid's step in loss (nats), dp_accounting's default: epsilon errs up, by < steps × h. */
export const DEFAULT_LOSS_GRID = 1e-4;

/** Where a round's outputs are cut: a normal's tail beyond 11.5 sd holds under 1e-30 (6.4e-31). */
const TAIL_SD = 11.5;
/** Mass each side a distribution may lose to a cut (moved up, or to infinite loss). */
const TAIL_MASS = 1e-14;

/** A discrete loss distribution: mass[i] at loss (offset + i) h, and `infinite` at loss +∞. */
interface LossPmf {
  readonly offset: number;
  readonly mass: Float64Array;
  readonly infinite: number;
}

type Neighbour = 'remove' | 'add';

/**
 * One round's loss distribution under `neighbour`, on the grid of step h, every loss rounded up.
 * Bin i holds the losses in ((i - 1) h, i h], i.e. an interval of outputs found by inverting the
 * (monotone) loss; its mass is read from the normal CDF at the interval's ends.
 */
function roundPmf(q: number, z: number, neighbour: Neighbour, h: number): LossPmf {
  const logKeep = Math.log1p(-q); // log(1 - q); -Infinity at q = 1
  const logQ = Math.log(q);
  const twoVar = 2 * z * z;
  // log((1 - q) + q e^((2x - 1) / 2z²)): the loss under "remove", minus it under "add".
  const mixLoss = (x: number) => logAdd(logKeep, logQ + (2 * x - 1) / twoVar);
  // The output at which mixLoss equals l; -Infinity where no output reaches it (l <= log(1 - q)).
  const mixOutput = (l: number) =>
    l <= logKeep ? -Infinity : z * z * (logSub(l, logKeep) - logQ) + 0.5;
  const low = -TAIL_SD * z;
  const high = 1 + TAIL_SD * z;
  let first: number;
  let last: number;
  // upper(l): the mass of P at losses above l (small where it matters, so computed directly).
  let upper: (l: number) => number;
  if (neighbour === 'remove') {
    // P = (1 - q) N(0, z²) + q N(1, z²); loss increasing in the output x.
    const survival = (x: number) => (1 - q) * normalCdf(-x / z) + q * normalCdf((1 - x) / z);
    upper = (l) => survival(mixOutput(l));
    first = Math.ceil(mixLoss(low) / h);
    last = Math.ceil(mixLoss(high) / h);
  } else {
    // P = N(0, z²); loss -mixLoss, decreasing in x: loss above l means x below mixOutput(-l).
    upper = (l) => normalCdf(mixOutput(-l) / z);
    first = Math.ceil(-mixLoss(high) / h);
    last = Math.ceil(-mixLoss(low) / h);
  }
  const mass = new Float64Array(last - first + 1);
  // The lowest bin takes every loss at or below it, the cut tail included (moved up).
  let above = upper(first * h);
  mass[0] = 1 - above;
  for (let i = 1; i < mass.length; i++) {
    const next = upper((first + i) * h);
    mass[i] = Math.max(0, above - next);
    above = next;
  }
  return cut({ offset: first, mass, infinite: above });
}

/** In-place iterative radix-2 FFT of (re, im); length a power of two. Inverse unscaled. */
function fft(re: Float64Array, im: Float64Array, inverse: boolean): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      const r = re[i]!;
      re[i] = re[j]!;
      re[j] = r;
      const m = im[i]!;
      im[i] = im[j]!;
      im[j] = m;
    }
  }
  // Twiddles computed directly (not by repeated multiplication) to keep the rounding at 1 ulp.
  const half = n >> 1;
  const wRe = new Float64Array(half);
  const wIm = new Float64Array(half);
  const angle = ((inverse ? 2 : -2) * Math.PI) / n;
  for (let k = 0; k < half; k++) {
    wRe[k] = Math.cos(angle * k);
    wIm[k] = Math.sin(angle * k);
  }
  for (let len = 2; len <= n; len <<= 1) {
    const span = len >> 1;
    const stride = n / len;
    for (let start = 0; start < n; start += len) {
      for (let k = 0; k < span; k++) {
        const a = start + k;
        const b = a + span;
        const cRe = wRe[k * stride]!;
        const cIm = wIm[k * stride]!;
        const tRe = re[b]! * cRe - im[b]! * cIm;
        const tIm = re[b]! * cIm + im[b]! * cRe;
        re[b] = re[a]! - tRe;
        im[b] = im[a]! - tIm;
        re[a] = re[a]! + tRe;
        im[a] = im[a]! + tIm;
      }
    }
  }
}

/** The distribution of the sum of two independent losses (cut at TAIL_MASS). */
function convolve(a: LossPmf, b: LossPmf): LossPmf {
  const length = a.mass.length + b.mass.length - 1;
  let size = 1;
  while (size < length) size <<= 1;
  const aRe = new Float64Array(size);
  const aIm = new Float64Array(size);
  aRe.set(a.mass);
  fft(aRe, aIm, false);
  let bRe = aRe;
  let bIm = aIm;
  if (b !== a) {
    bRe = new Float64Array(size);
    bIm = new Float64Array(size);
    bRe.set(b.mass);
    fft(bRe, bIm, false);
  }
  const re = new Float64Array(size);
  const im = new Float64Array(size);
  for (let k = 0; k < size; k++) {
    re[k] = aRe[k]! * bRe[k]! - aIm[k]! * bIm[k]!;
    im[k] = aRe[k]! * bIm[k]! + aIm[k]! * bRe[k]!;
  }
  fft(re, im, true);
  const mass = new Float64Array(length);
  for (let i = 0; i < length; i++) mass[i] = Math.max(0, re[i]! / size);
  return cut({
    offset: a.offset + b.offset,
    mass,
    infinite: a.infinite + b.infinite - a.infinite * b.infinite,
  });
}

/** Cuts up to TAIL_MASS of mass each side: the low tail moved up, the high one to +∞. */
function cut(pmf: LossPmf): LossPmf {
  const { mass } = pmf;
  let lo = 0;
  let below = 0;
  while (lo < mass.length - 1 && below + mass[lo]! <= TAIL_MASS) below += mass[lo++]!;
  let hi = mass.length - 1;
  let above = 0;
  while (hi > lo && above + mass[hi]! <= TAIL_MASS) above += mass[hi--]!;
  if (lo === 0 && hi === mass.length - 1) return pmf;
  const kept = mass.slice(lo, hi + 1);
  kept[0] = kept[0]! + below;
  return { offset: pmf.offset + lo, mass: kept, infinite: pmf.infinite + above };
}

/** `steps` rounds of one distribution composed, by repeated squaring. */
function power(pmf: LossPmf, steps: number): LossPmf {
  let result: LossPmf | undefined;
  let base = pmf;
  for (let k = steps; k > 0; k >>= 1) {
    if (k & 1) result = result ? convolve(result, base) : base;
    if (k > 1) base = convolve(base, base);
  }
  return result!;
}

/** delta(epsilon) = P[loss = ∞] + Σ P[loss = l] (1 - e^(epsilon - l)) over l > epsilon. */
function hockeyStick(pmf: LossPmf, epsilon: number, h: number): number {
  let delta = pmf.infinite;
  const { mass, offset } = pmf;
  for (let i = mass.length - 1; i >= 0; i--) {
    const loss = (offset + i) * h;
    if (loss <= epsilon) break;
    delta += mass[i]! * -Math.expm1(epsilon - loss);
  }
  return Math.min(1, delta);
}

/** The smallest epsilon >= 0 with delta(epsilon) <= delta (to 1e-9), rounded up. */
function smallestEpsilon(pmf: LossPmf, delta: number, h: number): number {
  if (pmf.infinite > delta) return Infinity;
  if (hockeyStick(pmf, 0, h) <= delta) return 0;
  let lo = 0;
  let hi = Math.max(h, (pmf.offset + pmf.mass.length) * h);
  while (hi - lo > 1e-9) {
    const mid = (lo + hi) / 2;
    if (hockeyStick(pmf, mid, h) > delta) lo = mid;
    else hi = mid;
  }
  return hi;
}

function checkRounds(rounds: readonly GaussianRounds[], grid: number): void {
  if (!(Number.isFinite(grid) && grid > 0)) invalid(`loss grid must be a number > 0, got ${grid}`);
  for (const { noise, sampleRate, steps } of rounds) {
    checkSampleRate(sampleRate);
    checkNoise(noise);
    checkSteps(steps);
  }
}

/** The composed loss distribution of every round, in one neighbour direction. */
function composed(rounds: readonly GaussianRounds[], neighbour: Neighbour, h: number): LossPmf {
  let total: LossPmf = { offset: 0, mass: Float64Array.of(1), infinite: 0 };
  for (const { noise, sampleRate, steps } of rounds) {
    // q = 0: no device takes part; the round reveals nothing (loss 0).
    if (steps === 0 || sampleRate === 0) continue;
    total = convolve(total, power(roundPmf(sampleRate, noise, neighbour, h), steps));
  }
  return total;
}

const NEIGHBOURS: readonly Neighbour[] = ['remove', 'add'];

/**
 * delta at `epsilon` after the given rounds of the Poisson-subsampled Gaussian mechanism,
 * add/remove neighbours (the larger of the two directions), an upper bound within the grid's
 * rounding. Throws HEARTH_E_PRIVACY_PARAMS on bad input.
 */
export function pldDelta(
  rounds: readonly GaussianRounds[],
  epsilon: number,
  grid = DEFAULT_LOSS_GRID,
): number {
  checkRounds(rounds, grid);
  if (!(epsilon >= 0)) invalid(`epsilon must be a number >= 0, got ${epsilon}`);
  return Math.max(...NEIGHBOURS.map((n) => hockeyStick(composed(rounds, n, grid), epsilon, grid)));
}

/**
 * The smallest epsilon at which the given rounds are (epsilon, delta)-DP by their loss
 * distributions: add/remove neighbours (the larger of the two directions), rounded up, within the
 * grid's rounding of the exact value (at most one step h per round above it). 0 for no rounds.
 * Throws HEARTH_E_PRIVACY_PARAMS on bad input.
 */
export function pldEpsilon(
  rounds: readonly GaussianRounds[],
  delta: number,
  grid = DEFAULT_LOSS_GRID,
): number {
  checkRounds(rounds, grid);
  checkDelta(delta);
  return Math.max(
    ...NEIGHBOURS.map((n) => smallestEpsilon(composed(rounds, n, grid), delta, grid)),
  );
}
