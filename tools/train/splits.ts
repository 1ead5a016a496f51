/**
 * Which sessions and cases a training run uses: the fit / validation split by time, the share the
 * main epochs train on, and the newest sessions the recency stage revisits.
 */
import { prefixPairs, type NextItemPair } from '../../model/metrics.js';
import type { LoadedDataset } from '../data/datasets.js';
import type { Hyper } from './defaults.js';

/**
 * Splits training sessions by time: the last `fraction` of them (file order, which is time order for
 * the session datasets here) become the validation split. Early stopping must never look at the test
 * split, or the reported test numbers would be tuned on themselves.
 */
export function splitValidation(
  train: readonly number[][],
  fraction: number,
): { fit: number[][]; validation: number[][] } {
  if (!(fraction > 0)) return { fit: [...train], validation: [] };
  const cut = train.length - Math.max(1, Math.round(train.length * Math.min(fraction, 0.5)));
  return { fit: train.slice(0, cut), validation: train.slice(cut) };
}

/** The newest `fraction` of `sessions` (file order = time order), none for fraction <= 0. */
export function newestShare(sessions: readonly number[][], fraction: number): number[][] {
  if (!(fraction > 0)) return [];
  return sessions.slice(
    sessions.length - Math.max(1, Math.round(sessions.length * Math.min(fraction, 1))),
  );
}

/** At most `max` items of `items`, evenly spaced (deterministic, keeps the time spread). */
export function evenlySpaced<T>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return [...items];
  return Array.from({ length: max }, (_, i) => items[Math.floor((i * items.length) / max)]!);
}

/** The sessions and cases of one run. */
export interface TrainingSplits {
  /** Sessions the main epochs train on, oldest first. */
  readonly fit: number[][];
  /** Sessions held out for early stopping (none when the protocol fixes the validation cases). */
  readonly validation: number[][];
  /** Every validation case: the protocol's, or every prefix of every `validation` session. */
  readonly validationPairs: NextItemPair[];
  /**
   * The recency stage's sessions: the newest share of all training sessions, the validation split
   * included. None for leave-one-out user sequences, which have no global time order.
   */
  readonly recent: number[][];
}

/**
 * Splits `loaded`'s training sessions for a run; `trainFraction` < 1 keeps only the oldest share of
 * the fit sessions (quick sweeps whose relative ranking is what matters).
 */
export function trainingSplits(
  loaded: LoadedDataset,
  hyper: Pick<Hyper, 'valFraction' | 'recentFraction'>,
  trainFraction = 1,
): TrainingSplits {
  const { train } = loaded.data;
  const split = loaded.validationPairs
    ? { fit: train, validation: [] }
    : splitValidation(train, hyper.valFraction);
  const fraction = Math.min(1, trainFraction);
  return {
    fit: split.fit.slice(0, Math.max(1, Math.round(split.fit.length * fraction))),
    validation: split.validation,
    validationPairs: loaded.validationPairs ?? prefixPairs(split.validation),
    recent: loaded.validationPairs ? [] : newestShare(train, hyper.recentFraction),
  };
}
