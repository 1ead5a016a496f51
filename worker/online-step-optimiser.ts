/**
 * What an online update writes and how: the flat ranges of the item rows and dense tensors it
 * trains, and Adam (restarted per update) plus the proximal pull toward the global weights, applied
 * in plain JS to those ranges only. Everything else an update reads stays held, bit for bit.
 */
import type { TensorName } from '../protocol/manifest.js';
import type { FlatAdam } from '../model/flat-adam.js';
import type { SparseStepOptions } from './online-step-options.js';
import { trainedTensors, type StepWeights } from './online-step-weights.js';

/** One step's gradients: the session items' rows [T, d] and biases [T], then trainedTensors'. */
export interface StepGradients {
  readonly rows: Float32Array;
  readonly bias: Float32Array;
  readonly dense: Float32Array[];
}

/** A step's loss (before its update) and gradients. */
export interface StepResult {
  readonly loss: number;
  readonly gradients: StepGradients;
}

/**
 * The [start, length] ranges of the flat weights an update that trains the item rows `rows` and the
 * `dense` tensors writes. Adam restarts on them (the only moments the update reads): each update is
 * a short run of its own, as kept moments from earlier updates, several clicks old, made later
 * steps smaller and the updates measurably weaker.
 */
export function writtenRanges(
  weights: StepWeights,
  rows: readonly number[],
  dense: readonly TensorName[],
): [number, number][] {
  const d = weights.dims.embedding;
  const embedding = weights.at('item_embedding');
  const bias = weights.at('item_bias');
  return [
    ...rows.flatMap((item): [number, number][] => [
      [embedding + item * d, d],
      [bias + item, 1],
    ]),
    ...dense.map((name): [number, number] => [weights.at(name), weights.size(name)]),
  ];
}

/**
 * One Adam step (its moments restarted per update) plus the proximal pull toward `anchor`, on the
 * flat weights: the trained dense tensors, and the item rows in `rows` (the update's session items
 * in their order, gradient row r to rows[r]; none when the item rows are held).
 */
export function applyStep(
  adam: FlatAdam,
  weights: StepWeights,
  anchor: Float32Array,
  rows: readonly number[],
  gradients: StepGradients,
  options: SparseStepOptions,
): void {
  const d = weights.dims.embedding;
  const step = adam.next(options.learningRate);
  const proximal = { anchor, mu: options.mu };
  const w = weights.weights;
  adam.rows(w, weights.at('item_embedding'), d, rows, gradients.rows, step, proximal);
  adam.rows(w, weights.at('item_bias'), 1, rows, gradients.bias, step, proximal);
  trainedTensors(options).forEach((name, n) => {
    adam.range(w, weights.at(name), gradients.dense[n]!, step, proximal);
  });
}
