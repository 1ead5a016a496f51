/**
 * Checkpoints of a training run: writing them while the main epochs run, and resuming from one with
 * the settings it was written under.
 */
import type { ModelDims } from '../../protocol/manifest.js';
import type { TrainCheckpoint, TrainOptions } from '../../model/train.js';
import { loadCheckpoint, saveCheckpoint, type LoadedCheckpoint } from '../model-io.js';
import type { DatasetName } from '../data/datasets.js';
import type { Hyper } from './defaults.js';

/** Where and how often a run writes checkpoints, and whether it continues from one. */
export interface CheckpointOptions {
  /** Writes a checkpoint here after every epoch (and every checkpointEvery steps). */
  checkpointDir?: string;
  checkpointEvery?: number;
  /**
   * Continue from checkpointDir's checkpoint: its hyper-parameters win over the run's options,
   * except epochs and negatives.
   */
  resume?: boolean;
}

/** The checkpoint to resume from, or null: not resuming, or none written yet (then said in `log`). */
export async function checkpointToResume(
  options: CheckpointOptions,
  log: (line: string) => void,
): Promise<LoadedCheckpoint | null> {
  const resumed =
    options.resume && options.checkpointDir ? await loadCheckpoint(options.checkpointDir) : null;
  if (options.resume && !resumed) log('no checkpoint found: starting from scratch');
  return resumed;
}

/**
 * The hyper-parameters of a resumed run. The checkpoint's settings win, except an explicit epoch
 * count: it extends a run, or cuts it short (--epochs <done> exports the best weights so far without
 * training further); and an explicit number of sampled negatives (a later stage of a run may sample
 * more).
 */
export function resumedHyper(hyper: Hyper, given: Partial<Hyper>, saved: Partial<Hyper>): Hyper {
  const out: Hyper = { ...hyper, ...saved };
  if (given.epochs !== undefined) out.epochs = given.epochs;
  if (given.negatives !== undefined) out.negatives = given.negatives;
  // The recency stage runs after the checkpointed epochs: it may be added or changed on resume.
  for (const key of ['recentFraction', 'recentEpochs', 'recentLr'] as const) {
    out[key] = given[key] ?? saved[key] ?? out[key];
  }
  return out;
}

/**
 * trainSessions options that write every checkpoint to `options.checkpointDir`, with the dataset and
 * hyper-parameters a resume needs; none without a directory.
 */
export function checkpointWriter(
  options: CheckpointOptions,
  dims: ModelDims,
  run: { dataset: DatasetName; hyper: Hyper },
): Pick<TrainOptions, 'checkpointEvery' | 'onCheckpoint'> {
  const dir = options.checkpointDir;
  if (!dir) return {};
  return {
    checkpointEvery: options.checkpointEvery,
    onCheckpoint: (checkpoint: TrainCheckpoint) => saveCheckpoint(dir, dims, checkpoint, run),
  };
}
