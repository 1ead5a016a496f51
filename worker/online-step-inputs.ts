/**
 * An online update's inputs, prepared once and shared by all its steps: the sessions packed as one
 * batch (returns dropped with newTargetsOnly), the local table of the sessions' items, the sampled
 * negatives (rows normalised and transposed once, as the update holds them), the repeat bonus on
 * the score columns, and, with the LSTM held, its states and what the step by hand reads.
 */
import * as tf from '@tensorflow/tfjs-core';
import { scoringOf } from '../protocol/manifest.js';
import { packBatch, toWindows, type Batch } from '../model/batches.js';
import { l2NormalizeRows } from '../model/forward.js';
import { ensureGradients } from '../model/gradients.js';
import { occurrences } from '../model/repeat.js';
import type { TrainSession } from '../model/train.js';
import { heldLstmStates, meanPairs, type HandInputs } from './online-step-held-lstm.js';
import { negativeShift, sampleNegatives } from './online-step-negatives.js';
import type { SparseStepOptions } from './online-step-options.js';
import { LSTM, PROJECTION, type StepWeights } from './online-step-weights.js';

/** An update's tensors, built once from the weights it starts with (the caller frees them). */
interface InputTensors {
  /** The negatives' rows as scored [F, d], transposed [d, F], and their biases [F]. */
  readonly negativeRows: tf.Tensor2D;
  readonly negativeRowsT: tf.Tensor2D;
  readonly negativeBias: tf.Tensor1D;
  readonly inputs: tf.Tensor1D;
  readonly positions: tf.Tensor1D;
  readonly lastItems: tf.Tensor1D;
  readonly weights: tf.Tensor1D;
  /** The LSTM tensors as the update starts (used as they are when the LSTM is held). */
  readonly lstm: tf.Tensor[];
  /** The projection's tensors as the update starts (used as they are when it is held). */
  readonly projection: tf.Tensor[];
}

/** What every step of one update shares: the batch and the tensors the update holds. */
export interface UpdateInputs extends InputTensors {
  readonly batch: Batch;
  /** Score column of each target: its session item's row (local index - 1). */
  readonly columns: Int32Array;
  /**
   * The repeat bonus (held, as the global model has it) on the session items' columns, [M, T],
   * for a model with dims.scoring.repeat; null without.
   */
  readonly repeat: Float32Array | null;
  /** What the sampled negatives' scores get added (correctNegatives), else 0. */
  readonly negativeShift: number;
  /** The held LSTM's states at the scored positions; null when the LSTM trains. */
  readonly lstmStates: tf.Tensor2D | null;
  /** With the LSTM held: what the step by hand reads. */
  readonly hand: HandInputs | null;
}

/** An update ready to step. */
export interface PreparedUpdate {
  /** The sessions' items: local row r + 1 (0 is the padding) is sessionItems[r]. */
  readonly sessionItems: number[];
  readonly update: UpdateInputs;
}

/** An update's inputs over `sessions`; null when they have nothing to learn from. */
export async function prepareUpdate(
  flat: StepWeights,
  sessions: readonly TrainSession[],
  options: SparseStepOptions,
): Promise<PreparedUpdate | null> {
  const batch = await learnableBatch(sessions, flat.dims.maxSessionLength, options);
  if (!batch) return null;
  // Local table: 0 = padding, then the session items. The negatives are scored apart.
  const sessionItems = [...new Set([...batch.inputs, ...batch.targets])].filter((i) => i > 0);
  const local = new Map(sessionItems.map((item, i) => [item, i + 1]));
  const { items } = flat.dims;
  const negatives = sampleNegatives(items, local, options.negatives, options.random);
  const toLocal = (ids: Int32Array) => Int32Array.from(ids, (i) => (i === 0 ? 0 : local.get(i)!));
  const localInputs = toLocal(batch.inputs);
  // The item each scored state consumed last (the model's last-item skip, when it has one).
  const lastRows = toLocal(Int32Array.from(batch.positions, (at) => batch.inputs[at]!));
  const negativeBias = flat.biases(negatives);
  const tensors = inputTensors(flat, batch, negatives, negativeBias, localInputs, lastRows);
  const held = !options.trainLstm;
  const update: UpdateInputs = {
    ...tensors,
    batch,
    columns: Int32Array.from(toLocal(batch.targets), (i) => i - 1),
    repeat: repeatAddend(flat, batch, local),
    negativeShift: negativeShift(
      items - 1 - sessionItems.length,
      negatives.length,
      options.correctNegatives === true,
    ),
    lstmStates: held
      ? await heldLstmStates(flat, sessionItems, localInputs, batch, tensors.lstm)
      : null,
    hand: held ? { negativeBias, lastRows, ...meanPairs(flat.dims, batch, localInputs) } : null,
  };
  return { sessionItems, update };
}

/** Frees an update's tensors. */
export function releaseUpdate(update: UpdateInputs): void {
  update.lstmStates?.dispose();
  const { negativeRows, negativeRowsT, negativeBias, inputs, positions, lastItems, weights } =
    update;
  [negativeRows, negativeRowsT, negativeBias, inputs, positions, lastItems, weights].forEach((x) =>
    x.dispose(),
  );
  [...update.lstm, ...update.projection].forEach((x) => x.dispose());
}

/** `sessions` packed as one batch; null when no target keeps a weight above 0. */
async function learnableBatch(
  sessions: readonly TrainSession[],
  maxSessionLength: number,
  options: SparseStepOptions,
): Promise<Batch | null> {
  const windows = toWindows(sessions, maxSessionLength);
  if (windows.length === 0) return null;
  await ensureGradients();
  const packed = packBatch(windows);
  const batch = options.newTargetsOnly ? withoutReturns(packed) : packed;
  return batch.weights.some((w) => w > 0) ? batch : null;
}

/** `batch` with a weight of 0 on every target its row's session already contained. */
function withoutReturns(batch: Batch): Batch {
  const weights = batch.weights.slice();
  const occ = occurrences(batch.inputs, batch.positions, batch.size);
  occ.rows.forEach((m, e) => {
    if (occ.items[e] === batch.targets[m]) weights[m] = 0;
  });
  return { ...batch, weights };
}

/** The update's tensors: the negatives as scored, the batch's indices and weights, the model's. */
function inputTensors(
  flat: StepWeights,
  batch: Batch,
  negatives: readonly number[],
  negativeBias: Float32Array,
  localInputs: Int32Array,
  lastRows: Int32Array,
): InputTensors {
  return tf.tidy(() => {
    const raw = tf.tensor2d(flat.rows(negatives), [negatives.length, flat.dims.embedding]);
    // The negatives are held within an update: normalised and transposed once.
    const negativeRows = scoringOf(flat.dims).normalize ? l2NormalizeRows(raw) : raw;
    return {
      negativeRows,
      negativeRowsT: tf.transpose(negativeRows),
      negativeBias: tf.tensor1d(negativeBias),
      inputs: tf.tensor1d(localInputs, 'int32'),
      positions: tf.tensor1d(batch.positions, 'int32'),
      lastItems: tf.tensor1d(lastRows, 'int32'),
      weights: tf.tensor1d(batch.weights),
      lstm: LSTM.map((name) => flat.tensor(name)),
      projection: PROJECTION.map((name) => flat.tensor(name)),
    };
  });
}

/** UpdateInputs.repeat for `batch` (`local`: item -> local index, session items from 1). */
function repeatAddend(
  flat: StepWeights,
  batch: Batch,
  local: ReadonlyMap<number, number>,
): Float32Array | null {
  if (!scoringOf(flat.dims).repeat) return null;
  const at = flat.at('repeat_bonus');
  const occ = occurrences(batch.inputs, batch.positions, batch.size);
  const columns = local.size;
  const addend = new Float32Array(batch.targets.length * columns);
  occ.rows.forEach((m, e) => {
    addend[m * columns + local.get(occ.items[e]!)! - 1]! += flat.weights[at + occ.ages[e]!]!;
  });
  return addend;
}
