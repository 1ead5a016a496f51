/**
 * What an update with the LSTM held (the default) computes once for all its steps: the LSTM's
 * states at the scored positions, from the weights the update starts with, and the inputs of the
 * session vector the step by hand (online-step-hand.ts) reads besides them. With the states
 * constants of the update nothing backpropagates through time, and a step is a few small products.
 */
import * as tf from '@tensorflow/tfjs-core';
import { scoringOf, type ModelDims } from '../protocol/manifest.js';
import type { Batch } from '../model/batches.js';
import { lstmStatesAt } from '../model/lstm-cells.js';
import type { StepWeights } from './online-step-weights.js';

/** What the step by hand reads besides an update's inputs (everything before the projection). */
export interface HandInputs {
  /** The negatives' biases [F]. */
  readonly negativeBias: Float32Array;
  /** Local row (0 = padding) of the item each scored state consumed last [M]. */
  readonly lastRows: Int32Array;
  /**
   * The decayed item mean of each scored prefix as (local row, weight) pairs: row m's pairs are
   * meanRows/meanWeights[meanStart[m], meanStart[m + 1]). Empty without dims.scoring.itemMean.
   */
  readonly meanStart: Int32Array;
  readonly meanRows: Int32Array;
  readonly meanWeights: Float64Array;
}

/**
 * The held LSTM's states at `batch`'s scored positions, [M, hidden]. Without a gradient to keep,
 * the recurrence runs as one product per time step and the gates in JS (lstm-cells.ts): through
 * tfjs ops it was about a third of a 4-step update at 10k items. `localInputs` are the batch's
 * inputs as local rows (0 = padding, row r + 1 = sessionItems[r]); `lstm` the LSTM's tensors.
 */
export async function heldLstmStates(
  flat: StepWeights,
  sessionItems: readonly number[],
  localInputs: Int32Array,
  batch: Batch,
  lstm: readonly tf.Tensor[],
): Promise<tf.Tensor2D> {
  const d = flat.dims.embedding;
  const table = flat.rows(sessionItems);
  const embedded = new Float32Array(batch.inputs.length * d);
  localInputs.forEach((row, k) => {
    // Local row 0 is the padding, whose embedding is zero.
    if (row > 0) embedded.set(table.subarray((row - 1) * d, row * d), k * d);
  });
  const [kernel, recurrent] = lstm as [tf.Tensor2D, tf.Tensor2D];
  const states = await lstmStatesAt(
    { kernel, recurrent, bias: flat.slice('lstm_bias') },
    embedded,
    batch.steps,
    batch.size,
    batch.positions,
  );
  return tf.tensor2d(states, [batch.positions.length, recurrent.shape[0]]);
}

/**
 * HandInputs' item-mean pairs: for each scored row t*B + b, the local rows of session b's items
 * up to step t with weights decay^age / sum (prefixItemMeans' weights).
 */
export function meanPairs(
  dims: ModelDims,
  batch: Batch,
  localInputs: Int32Array,
): Pick<HandInputs, 'meanStart' | 'meanRows' | 'meanWeights'> {
  const decay = scoringOf(dims).itemMean;
  const count = batch.positions.length;
  const meanStart = new Int32Array(count + 1);
  const rows: number[] = [];
  const weights: number[] = [];
  if (decay !== undefined) {
    for (let i = 0; i < count; i++) {
      const position = batch.positions[i]!;
      const step = Math.floor(position / batch.size);
      const session = position % batch.size;
      let total = 0;
      for (let s = 0; s <= step; s++) total += decay ** (step - s);
      for (let s = 0; s <= step; s++) {
        rows.push(localInputs[s * batch.size + session]!);
        weights.push(decay ** (step - s) / total);
      }
      meanStart[i + 1] = rows.length;
    }
  }
  return {
    meanStart,
    meanRows: Int32Array.from(rows),
    meanWeights: Float64Array.from(weights),
  };
}
