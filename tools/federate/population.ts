/**
 * The simulated population: one device per training session (Diginetica, YOOCHOOSE) or per user
 * (Amazon Beauty: each training sequence is one user's history), in the dataset's time order, and
 * the coins that decide who takes part in each round.
 */
import type { LoadedDataset } from '../data/datasets.js';
import { prefixPairs, type NextItemPair } from '../../model/metrics.js';

/** Where the global model of a run starts. */
export const SCENARIOS = ['new', 'seed', 'central'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** Share of the oldest training sessions a 'seed' run trains on centrally before federating. */
export const SEED_FRACTION = 0.1;

/** Share of the newest training sessions held out as the validation split (`--eval validation`). */
export const VALIDATION_FRACTION = 0.05;

/** A run's data: who trains where, and what it is measured on. */
export interface Population {
  /** Each device's local history (model indices), oldest device first. */
  readonly devices: readonly (readonly number[])[];
  /** Sessions trained on centrally before the rounds: the seed model's, or everything ('central'). */
  readonly central: readonly (readonly number[])[];
  /** The cases measured every few rounds. */
  readonly pairs: readonly NextItemPair[];
}

/**
 * Splits `loaded` for a scenario. `evalOn` 'validation' holds out the newest 5% of training
 * sessions as the cases (they then neither train centrally nor belong to any device), so settings
 * can be tuned without looking at the test split; 'test' uses the dataset's test cases.
 */
export function populationOf(
  loaded: LoadedDataset,
  scenario: Scenario,
  evalOn: 'test' | 'validation',
): Population {
  let sessions = loaded.data.train;
  let pairs: readonly NextItemPair[] = loaded.testPairs;
  if (evalOn === 'validation') {
    if (loaded.validationPairs) {
      pairs = loaded.validationPairs;
    } else {
      const cut = sessions.length - Math.max(1, Math.round(sessions.length * VALIDATION_FRACTION));
      pairs = prefixPairs(sessions.slice(cut));
      sessions = sessions.slice(0, cut);
    }
  }
  if (scenario === 'central') return { devices: [], central: sessions, pairs };
  if (scenario === 'new') return { devices: sessions, central: [], pairs };
  const cut = Math.max(1, Math.round(sessions.length * SEED_FRACTION));
  return { devices: sessions.slice(cut), central: sessions.slice(0, cut), pairs };
}

/**
 * A device's participation coin for a round, uniform in [0, 1): a hash of (seed, round, device),
 * so a run is reproducible and can resume at any round. The device flips its own coin in the
 * browser (worker/participation.ts); here each device's coin is independent of every other's and
 * of the round, which is all the accountant assumes.
 */
export function coin(seed: number, round: number, device: number): number {
  let h = Math.imul(seed ^ 0x85ebca6b, 0x9e3779b1) ^ Math.imul(round + 0x27d4eb2f, 0xc2b2ae35);
  h = Math.imul(h ^ device, 0x85ebca6b) ^ (device >>> 16);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

/** The devices (indices into the population) whose coin says yes in `round`, ascending. */
export function participants(seed: number, round: number, devices: number, q: number): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < devices; i++) if (coin(seed, round, i) < q) out.push(i);
  return Int32Array.from(out);
}
