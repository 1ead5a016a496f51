/**
 * The LSTM state of the visitor's current session, carried from click to click. `scoreNext` runs
 * the recurrence over the whole session on every call; this keeps (h, c) after the last item, so a
 * new interaction costs one recurrent step and one catalogue scoring instead of a re-run (about a
 * dozen small kernels per step: on wasm the per-kernel overhead, not arithmetic, dominated).
 *
 * The step repeats forward.ts's maths (gates i, f, g, o; step 0 starts from h = c = 0) with plain
 * tfjs-core ops on the model's own variables; the session vector and the catalogue scores use
 * forward.ts's `project` and `outputRows`, so the manifest's scoring options (cosine, last-item skip)
 * apply here exactly as in `scoreNext`, which this matches to float rounding.
 */
import * as tf from '@tensorflow/tfjs-core';
import { itemMeansAt, outputRows, project } from './model/forward.js';
import { addSessionBonus } from './model/reference-forward.js';
import type { SessionModel } from './model/session-model.js';

/** One session's recurrent state for one model. Reset on a new session, rebuilt on a model swap. */
export class SessionState {
  private model: SessionModel | null = null;
  /**
   * The item table as scored (row-normalised with cosine scoring), transposed [d, N], kept per model:
   * transposing (and normalising) 10k rows on every call costs.
   */
  private tableT: tf.Tensor2D | null = null;
  /** The model's repeat bonus by age (dims.scoring.repeat), read once per model. */
  private bonus: Float32Array | null = null;
  private h: tf.Tensor2D | null = null;
  private c: tf.Tensor2D | null = null;
  /** The items (h, c) has consumed, oldest first. */
  private consumed: number[] = [];
  /** Scores for the current state, computed at most once per state. */
  private cached: Float32Array | null = null;
  /** Recurrent steps run so far (tests check that a click costs one). */
  steps = 0;

  /**
   * Next-item scores [N] after `session` (model indices 1..N-1, non-empty), equal to
   * `model.scoreNext([session])` row 0 (index 0 is -Infinity). Steps only over items not consumed
   * yet; a session that is not a continuation of the last one (a new session, a model swap, or
   * a session longer than the model's window, whose oldest item must drop out) is replayed from
   * zero state over its last `maxSessionLength` items, exactly what `scoreNext` sees.
   */
  async scores(model: SessionModel, session: readonly number[]): Promise<Float32Array> {
    if (session.length === 0) throw new RangeError('SessionState.scores needs a non-empty session');
    if (model !== this.model) this.attach(model);
    const window = session.slice(-model.dims.maxSessionLength);
    const continues =
      window.length >= this.consumed.length && this.consumed.every((item, t) => window[t] === item);
    if (!continues) this.resetState();
    const fresh = window.slice(this.consumed.length);
    for (const item of fresh) {
      if (!Number.isInteger(item) || item < 1 || item >= model.dims.items) {
        // Out-of-range gathers are not checked by every backend (wasm reads garbage).
        throw new RangeError(`item index ${item} is outside 1..${model.dims.items - 1}`);
      }
    }
    for (const item of fresh) this.step(item);
    if (!this.cached) this.cached = await this.score();
    return this.cached;
  }

  /** Forgets the session (the next call starts from zero state); the model stays attached. */
  resetState(): void {
    this.h?.dispose();
    this.c?.dispose();
    this.h = this.c = null;
    this.consumed = [];
    this.cached = null;
  }

  /** Frees every tensor held. */
  dispose(): void {
    this.resetState();
    this.tableT?.dispose();
    this.tableT = null;
    this.bonus = null;
    this.model = null;
  }

  private attach(model: SessionModel): void {
    this.dispose();
    this.model = model;
    this.tableT = tf.tidy(() => {
      const p = model.params;
      return tf.transpose(outputRows(p, p.itemEmbedding));
    });
    this.bonus = (model.params.repeatBonus?.dataSync() as Float32Array | undefined) ?? null;
  }

  private step(item: number): void {
    const p = this.model!.params;
    const [h, c] = tf.tidy(() => {
      const x = tf.gather(p.itemEmbedding, tf.tensor1d([item], 'int32')) as tf.Tensor2D;
      const xz = tf.add(tf.matMul(x, p.lstmKernel), p.lstmBias);
      const z = this.h ? tf.add(xz, tf.matMul(this.h, p.lstmRecurrent)) : xz;
      const [zi, zf, zg, zo] = tf.split(z, 4, 1) as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const ig = tf.mul(tf.sigmoid(zi), tf.tanh(zg));
      const cNext = this.c ? tf.add(tf.mul(tf.sigmoid(zf), this.c), ig) : ig;
      const hNext = tf.mul(tf.sigmoid(zo), tf.tanh(cNext));
      return [hNext as tf.Tensor2D, cNext as tf.Tensor2D];
    });
    this.h?.dispose();
    this.c?.dispose();
    this.h = h;
    this.c = c;
    this.consumed.push(item);
    this.cached = null;
    this.steps++;
  }

  private async score(): Promise<Float32Array> {
    const p = this.model!.params;
    const last = this.consumed[this.consumed.length - 1]!;
    const scores = tf.tidy(() => {
      const steps = this.consumed.length;
      const itemMeans = itemMeansAt(
        p,
        tf.tensor1d(this.consumed, 'int32'),
        steps,
        1,
        tf.tensor1d([steps - 1], 'int32'),
      );
      const out = project(p, this.h!, tf.tensor1d([last], 'int32'), itemMeans);
      return tf.add(tf.matMul(out, this.tableT!), p.itemBias);
    });
    const values = (await scores.data()) as Float32Array;
    scores.dispose();
    if (this.bonus) addSessionBonus(this.consumed, this.bonus, values);
    values[0] = -Infinity; // padding is never recommended (as scoreNext's mask)
    return values;
  }
}
