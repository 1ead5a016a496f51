/**
 * The optimiser behind online learning: updates that touch only what a visitor's sessions touch.
 *
 * A dense step (model/train.ts) updates every parameter, and on a 43k-item catalogue the item table
 * is 96% of them: its proximal term and Adam moments alone cost tens of milliseconds per step on
 * wasm. Here an update gathers the rows of the items in the sessions and of a uniform sample of
 * other items (the negatives, held: a sampled softmax over the sessions' items plus the sample; the
 * whole catalogue when it is small), differentiates those small tensors and the projection only
 * (by default the LSTM is held, its states computed once per update, so nothing backpropagates
 * through time), and applies Adam, restarted per update, plus the proximal pull toward the global
 * weights in plain JS on the flat weights. Items the visitor did not touch keep their weights
 * exactly; with `trainItems: false` (the engine's default) every item row is held, and only the
 * projection learns.
 *
 * Words: "trained" weights are the ones an update changes, "held" ones it reads and leaves exactly
 * as they are. The parts: a step's settings (online-step-options.ts), its inputs
 * (online-step-inputs.ts, online-step-held-lstm.ts, online-step-negatives.ts), its loss and
 * gradients by hand (online-step-hand.ts, online-step-softmax.ts) or through autodiff
 * (online-step-autodiff.ts), and what it writes (online-step-optimiser.ts).
 */
import type { ModelDims } from '../protocol/manifest.js';
import { blocksOf, diffLocal, type LocalCopy } from './local-copy.js';
import { FlatAdam } from '../model/flat-adam.js';
import type { TrainSession } from '../model/train.js';
import { autodiffGradients } from './online-step-autodiff.js';
import { handGradients } from './online-step-hand.js';
import { prepareUpdate, releaseUpdate } from './online-step-inputs.js';
import { applyStep, writtenRanges, type StepResult } from './online-step-optimiser.js';
import type { SparseStepOptions } from './online-step-options.js';
import { StepWeights, trainedTensors } from './online-step-weights.js';

export type { SparseStepOptions } from './online-step-options.js';
export type { StepGradients, StepResult } from './online-step-optimiser.js';

/** A local copy under sparse fine-tuning, anchored at the global weights it started from. */
export class SparseLearner {
  /** The fine-tuned flat weights (updated in place by every step). */
  readonly weights: Float32Array;
  private readonly flat: StepWeights;
  private readonly adam: FlatAdam;
  /** Blocks (local-copy.ts) where `weights` may differ from `anchor`: what the steps wrote. */
  private readonly touched: Set<number>;

  /** Starts from `start` (the local copy, or the global weights), pulled toward `anchor`. */
  constructor(
    readonly dims: ModelDims,
    readonly anchor: Float32Array,
    start: Float32Array,
  ) {
    this.weights = start.slice();
    this.flat = new StepWeights(dims, this.weights);
    this.adam = new FlatAdam(start.length);
    this.touched = start === anchor ? new Set() : new Set(diffLocal(0, anchor, start).blocks);
  }

  /** The weights as a LocalCopy of global `version` (comparing only the blocks steps wrote). */
  localCopy(version: number): LocalCopy {
    return diffLocal(version, this.anchor, this.weights, this.touched);
  }

  /**
   * `steps` steps on `sessions` (model indices), with one negative sample for all of them; returns
   * the data loss before the last step (NaN when there is nothing to learn from).
   */
  async update(
    sessions: readonly TrainSession[],
    steps: number,
    options: SparseStepOptions,
  ): Promise<number> {
    if (steps < 1) return NaN;
    const prepared = await prepareUpdate(this.flat, sessions, options);
    if (!prepared) return NaN;
    const { sessionItems, update } = prepared;
    // The item rows the steps write: the sessions' items, or none when the rows are held.
    const rows = options.trainItems === false ? [] : sessionItems;
    // What this update writes: Adam starts afresh there, and the stored copy compares it.
    const written = writtenRanges(this.flat, rows, trainedTensors(options));
    this.adam.restart(written);
    for (const [at, length] of written) blocksOf(at, length, this.touched);
    let loss = NaN;
    try {
      for (let step = 0; step < steps; step++) {
        const { loss: value, gradients } = update.hand
          ? await handGradients(this.flat, sessionItems, update, update.hand)
          : await autodiffGradients(this.flat, sessionItems, update, options);
        applyStep(this.adam, this.flat, this.anchor, rows, gradients, options);
        loss = value;
      }
    } finally {
      releaseUpdate(update);
    }
    return loss;
  }

  /**
   * The first step's loss and gradients of an update over `sessions` (the LSTM held), both through
   * tfjs' autodiff and by hand as steps compute them; changes nothing. For tests.
   */
  async gradientsBothWays(
    sessions: readonly TrainSession[],
    options: SparseStepOptions,
  ): Promise<StepResult[] | null> {
    const held = { ...options, trainLstm: false };
    const prepared = await prepareUpdate(this.flat, sessions, held);
    if (!prepared) return null;
    const { sessionItems, update } = prepared;
    try {
      return [
        await autodiffGradients(this.flat, sessionItems, update, held),
        await handGradients(this.flat, sessionItems, update, update.hand!),
      ];
    } finally {
      releaseUpdate(update);
    }
  }
}
