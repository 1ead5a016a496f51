/**
 * The LSTM state of the visitor's current session, carried from click to click. `scoreNext` runs
 * the recurrence over the whole session on every call; this keeps (h, c) after the last item, so a
 * new interaction costs one recurrent step and one catalogue scoring instead of a re-run.
 *
 * The step and the session vector repeat forward.ts's maths (gates i, f, g, o; step 0 starts from
 * h = c = 0; the manifest's scoring options: cosine, last-item skip, item mean, repeat bonus) and
 * match `scoreNext` to float rounding. The small vector work runs in JavaScript on weights read once
 * per model: a tfjs kernel costs tens of microseconds of overhead on wasm whatever its size, and a
 * step through tfjs ops was some twenty of them. What stays in tfjs is the two products worth a
 * kernel: the recurrent part of the gates for every kept state at once, and the catalogue scoring.
 */
import * as tf from '@tensorflow/tfjs-core';
import { NORM_EPSILON } from '../protocol/manifest.js';
import { outputRows } from '../model/forward.js';
import { lstmCells } from '../model/lstm-cells.js';
import { addSessionBonus } from '../model/reference-forward.js';
import type { SessionModel } from '../model/session-model.js';

/** What SessionState reads from a model once, when it attaches to it. */
interface Attached {
  readonly model: SessionModel;
  /** The item table as scored (row-normalised with cosine scoring), transposed [d, N]. */
  readonly tableT: tf.Tensor2D;
  /** lstm_recurrent [h, 4h]: one product gives h . U for every kept state. */
  readonly recurrent: tf.Tensor2D;
  /** lstm_kernel [d, 4h] and lstm_bias [4h]: x . W + b is one row, shared by every state. */
  readonly kernel: Float32Array;
  readonly gateBias: Float32Array;
  readonly projection: Float32Array;
  readonly projectionBias: Float32Array;
  readonly itemBias: Float32Array;
  /** The model's repeat bonus by age (dims.scoring.repeat). */
  readonly bonus: Float32Array | null;
}

/** One session's recurrent state for one model. Reset on a new session, rebuilt on a model swap. */
export class SessionState {
  private attached: Attached | null = null;
  /**
   * (h, c) after every suffix of `tail`, [R, hidden] row-major: row R - m holds the state after the
   * last m items, started from zero. `scoreNext` scores a session over its last maxSessionLength
   * items from zero state, so once a session outgrows that window its state cannot be carried: it
   * restarts one item later on every click. Advancing all the suffixes together (one product of at
   * most maxSessionLength rows per click) keeps the window's exact state ready without a replay.
   */
  private h: Float32Array = new Float32Array(0);
  private c: Float32Array = new Float32Array(0);
  /** The items consumed, oldest first: the last maxSessionLength of them (one per row). */
  private tail: number[] = [];
  /** Embedding rows of the items in `tail` (read one item at a time from the model's table). */
  private rows = new Map<number, Float32Array>();
  /** Scores for the current state and window length, computed at most once per state. */
  private cached: { length: number; scores: Float32Array } | null = null;
  /** Recurrent steps run so far, one per item consumed (tests check that a click costs one). */
  steps = 0;

  /**
   * Next-item scores [N] after `session` (model indices 1..N-1, non-empty), equal to
   * `model.scoreNext([session])` row 0 (index 0 is -Infinity): the last `maxSessionLength` items
   * from zero state. Steps only over the items new since the last call, found by aligning the
   * session's window with the items already consumed (the caller may keep its session list bounded,
   * so the list may have lost items at the front); a window that does not continue them (a new
   * session, a model swap) is replayed from zero state.
   */
  async scores(model: SessionModel, session: readonly number[]): Promise<Float32Array> {
    if (session.length === 0) throw new RangeError('SessionState.scores needs a non-empty session');
    if (model !== this.attached?.model) this.attach(model);
    const window = session.slice(-model.dims.maxSessionLength);
    for (const item of window) {
      if (!Number.isInteger(item) || item < 1 || item >= model.dims.items) {
        // Out-of-range gathers are not checked by every backend (wasm reads garbage).
        throw new RangeError(`item index ${item} is outside 1..${model.dims.items - 1}`);
      }
    }
    const fresh = this.newItems(window);
    if (fresh === null) this.resetState();
    for (const item of fresh ?? window) await this.step(item);
    if (this.cached?.length !== window.length) {
      this.cached = { length: window.length, scores: await this.score(window) };
    }
    return this.cached.scores;
  }

  /** Forgets the session (the next call starts from zero state); the model stays attached. */
  resetState(): void {
    this.h = new Float32Array(0);
    this.c = new Float32Array(0);
    this.tail = [];
    this.rows.clear();
    this.cached = null;
  }

  /** Frees every tensor held. */
  dispose(): void {
    this.resetState();
    this.attached?.tableT.dispose();
    this.attached?.recurrent.dispose();
    this.attached = null;
  }

  /**
   * The fewest items k such that `tail` followed by the window's last k items ends with the whole
   * window (then the suffix states cover it); null when no k does.
   */
  private newItems(window: readonly number[]): number[] | null {
    const n = window.length;
    for (let k = 0; k < n; k++) {
      const old = n - k;
      if (old > this.tail.length) continue;
      let match = true;
      for (let t = 0; t < old && match; t++) {
        match = this.tail[this.tail.length - old + t] === window[t];
      }
      if (match) return window.slice(old);
    }
    return this.tail.length === 0 ? [...window] : null;
  }

  private attach(model: SessionModel): void {
    this.dispose();
    const p = model.params;
    const read = (t: tf.Tensor) => t.dataSync() as Float32Array;
    this.attached = {
      model,
      tableT: tf.tidy(() => tf.transpose(outputRows(p, p.itemEmbedding))),
      recurrent: tf.clone(p.lstmRecurrent),
      kernel: read(p.lstmKernel),
      gateBias: read(p.lstmBias),
      projection: read(p.projectionKernel),
      projectionBias: read(p.projectionBias),
      itemBias: read(p.itemBias),
      bonus: p.repeatBonus ? read(p.repeatBonus) : null,
    };
  }

  /** The embedding row of `item`. */
  private embedding(item: number): Float32Array {
    let row = this.rows.get(item);
    if (!row) {
      const { itemEmbedding } = this.attached!.model.params;
      // A gather, not a slice: wasm's slice of a big table costs ~1 ms here, the gather ~0.1 ms.
      const gathered = tf.tidy(() => tf.gather(itemEmbedding, tf.tensor1d([item], 'int32')));
      row = gathered.dataSync() as Float32Array;
      gathered.dispose();
      this.rows.set(item, row);
    }
    return row;
  }

  /** Consumes `item` in every suffix state and starts a new one at it. */
  private async step(item: number): Promise<void> {
    const { model, recurrent, kernel, gateBias } = this.attached!;
    const { embedding: d, hidden, maxSessionLength: limit } = model.dims;
    const gates = 4 * hidden;
    // x . W + b, the same for every state.
    const x = this.embedding(item);
    const input = new Float64Array(gates);
    for (let j = 0; j < gates; j++) input[j] = gateBias[j]!;
    for (let r = 0; r < d; r++) {
      const value = x[r]!;
      for (let j = 0; j < gates; j++) input[j]! += value * kernel[r * gates + j]!;
    }
    // The oldest suffix is dropped once it would be longer than any window scored from now on;
    // the new suffix (the last row) starts from zero state, so h . U is zero for it.
    const kept = Math.min(this.tail.length, limit - 1);
    const from = this.tail.length - kept;
    const rows = kept + 1;
    let hU: Float32Array = new Float32Array(0);
    if (kept > 0) {
      const states = this.h.subarray(from * hidden, (from + kept) * hidden);
      const product = tf.tidy(() => tf.matMul(tf.tensor2d(states, [kept, hidden]), recurrent));
      hU = (await product.data()) as Float32Array;
      product.dispose();
    }
    // z [rows, 4h] = x . W + b (+ h . U for the kept states); their cells, the new one's zero.
    const z = new Float32Array(rows * gates);
    const cells = new Float32Array(rows * hidden);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < gates; j++) {
        z[r * gates + j] = input[j]! + (r < kept ? hU[r * gates + j]! : 0);
      }
    }
    cells.set(this.c.subarray(from * hidden, (from + kept) * hidden));
    const { h, c } = lstmCells(z, cells, rows, hidden);
    this.h = h;
    this.c = c;
    this.tail = [...this.tail.slice(from), item];
    for (const known of this.rows.keys()) if (!this.tail.includes(known)) this.rows.delete(known);
    this.cached = null;
    this.steps++;
  }

  /** Scores the window (the last `window.length` items consumed) over the whole catalogue. */
  private async score(window: readonly number[]): Promise<Float32Array> {
    const { model, tableT, projection, projectionBias, itemBias, bonus } = this.attached!;
    const { embedding: d, hidden } = model.dims;
    const scoring = model.params.scoring;
    const state = (this.tail.length - window.length) * hidden;
    const out = new Float64Array(d);
    for (let j = 0; j < d; j++) out[j] = projectionBias[j]!;
    for (let r = 0; r < hidden; r++) {
      const value = this.h[state + r]!;
      for (let j = 0; j < d; j++) out[j]! += value * projection[r * d + j]!;
    }
    if (scoring.lastItem) {
      const last = this.embedding(window[window.length - 1]!);
      for (let j = 0; j < d; j++) out[j]! += last[j]!;
    }
    if (scoring.itemMean !== undefined) {
      // Weight decay^age (age 0 = the last item), normalised to sum to 1, as prefixItemMeans.
      const weights = window.map((_, s) => scoring.itemMean! ** (window.length - 1 - s));
      const total = weights.reduce((a, b) => a + b, 0);
      window.forEach((item, s) => {
        const row = this.embedding(item);
        for (let j = 0; j < d; j++) out[j]! += (weights[s]! / total) * row[j]!;
      });
    }
    if (scoring.normalize) {
      let sq = 0;
      for (let j = 0; j < d; j++) sq += out[j]! ** 2;
      const scale = scoring.scale / Math.sqrt(sq + NORM_EPSILON);
      for (let j = 0; j < d; j++) out[j]! *= scale;
    }
    const product = tf.tidy(() => tf.matMul(tf.tensor2d(Float32Array.from(out), [1, d]), tableT));
    const values = (await product.data()) as Float32Array;
    product.dispose();
    for (let i = 0; i < values.length; i++) values[i]! += itemBias[i]!;
    if (bonus) addSessionBonus(window, bonus, values);
    values[0] = -Infinity; // padding is never recommended (as scoreNext's mask)
    return values;
  }
}
