/**
 * The settings of one online update's steps. "Trained" weights are the ones an update changes;
 * "held" ones it reads as they are and leaves exactly so (by default the LSTM and every item row).
 */

/** Settings of one sparse step. */
export interface SparseStepOptions {
  readonly learningRate: number;
  /** Proximal strength: adds (mu / 2) * ||w - global||^2 over the parameters the step trains. */
  readonly mu: number;
  /** Negatives sampled uniformly per update (all other items when the catalogue is not bigger). */
  readonly negatives: number;
  /** Uniform [0, 1) stream for the negatives. */
  readonly random: () => number;
  /**
   * Trains the LSTM too (backpropagation through time); else it is held, its states computed once
   * per update, and only the projection and item rows can train.
   */
  readonly trainLstm: boolean;
  /**
   * Trains the output projection (shared by every session, default true); false holds it, so only
   * the session items' rows (and the LSTM with `trainLstm`) train.
   */
  readonly trainProjection?: boolean;
  /**
   * Trains the session items' own rows (default true); false holds every item row, so what an
   * update learns moves the shared tensors only and reaches similar items as much as the visitor's.
   */
  readonly trainItems?: boolean;
  /**
   * Learns only from clicks on items new to their session (default false): the engine never shows
   * a session's own items, so a return to one teaches nothing the visitor will see.
   */
  readonly newTargetsOnly?: boolean;
  /**
   * Adds log(pool / F) to the F sampled negatives' scores (pool: the items they were drawn from), so
   * the softmax over the sample estimates the one over the whole catalogue (default false: the
   * sample stands for itself, and the session's own items weigh as much as the rest together).
   */
  readonly correctNegatives?: boolean;
}
