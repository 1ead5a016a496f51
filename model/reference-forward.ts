/**
 * The session model's forward pass in plain JavaScript, float64, straight from the weights layout.
 * Slow and obvious on purpose: it is the known answer every tfjs backend is checked against before
 * Hearth trusts it, and the oracle for the model's unit tests.
 */
import {
  NORM_EPSILON,
  scoringOf,
  splitFlat,
  tensorLayout,
  type ModelDims,
} from '../protocol/manifest.js';

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** Next-item scores (length dims.items) after `session`, computed from flat weights. */
export function referenceScores(
  dims: ModelDims,
  flat: Float32Array,
  session: readonly number[],
): Float64Array {
  const { items: n, embedding: d, hidden: h } = dims;
  const w = splitFlat(flat, tensorLayout(dims));
  const emb = w.get('item_embedding')!;
  const kernel = w.get('lstm_kernel')!;
  const recurrent = w.get('lstm_recurrent')!;
  const bias = w.get('lstm_bias')!;
  const proj = w.get('projection_kernel')!;
  const projBias = w.get('projection_bias')!;
  const itemBias = w.get('item_bias')!;
  const scoring = scoringOf(dims);
  const window = session.slice(-dims.maxSessionLength);
  let hState = new Float64Array(h);
  let cState = new Float64Array(h);
  for (const item of window) {
    const z = new Float64Array(4 * h);
    for (let j = 0; j < 4 * h; j++) {
      let sum = bias[j]!;
      for (let r = 0; r < d; r++) sum += emb[item * d + r]! * kernel[r * 4 * h + j]!;
      for (let r = 0; r < h; r++) sum += hState[r]! * recurrent[r * 4 * h + j]!;
      z[j] = sum;
    }
    const nextH = new Float64Array(h);
    const nextC = new Float64Array(h);
    for (let j = 0; j < h; j++) {
      const i = sigmoid(z[j]!);
      const f = sigmoid(z[h + j]!);
      const g = Math.tanh(z[2 * h + j]!);
      const o = sigmoid(z[3 * h + j]!);
      nextC[j] = f * cState[j]! + i * g;
      nextH[j] = o * Math.tanh(nextC[j]!);
    }
    hState = nextH;
    cState = nextC;
  }
  const out = new Float64Array(d);
  const last = window[window.length - 1]!;
  for (let j = 0; j < d; j++) {
    let sum = projBias[j]!;
    for (let r = 0; r < h; r++) sum += hState[r]! * proj[r * d + j]!;
    if (scoring.lastItem) sum += emb[last * d + j]!;
    out[j] = sum;
  }
  if (scoring.itemMean !== undefined) {
    // Weight decay^age (age 0 = the last item), normalised to sum to 1.
    const weights = window.map((_, s) => scoring.itemMean! ** (window.length - 1 - s));
    const total = weights.reduce((a, b) => a + b, 0);
    window.forEach((item, s) => {
      for (let j = 0; j < d; j++) out[j]! += (weights[s]! / total) * emb[item * d + j]!;
    });
  }
  // Cosine scoring: out / |out| * scale against rows / |row|, norms as sqrt(sum x^2 + epsilon).
  const norm = (row: ArrayLike<number>, at: number): number => {
    let sq = 0;
    for (let j = 0; j < d; j++) sq += row[at + j]! ** 2;
    return Math.sqrt(sq + NORM_EPSILON);
  };
  const outScale = scoring.normalize ? scoring.scale / norm(out, 0) : 1;
  const scores = new Float64Array(n);
  for (let item = 0; item < n; item++) {
    let sum = 0;
    for (let j = 0; j < d; j++) sum += emb[item * d + j]! * out[j]!;
    const rowScale = scoring.normalize ? 1 / norm(emb, item * d) : 1;
    scores[item] = itemBias[item]! + sum * outScale * rowScale;
  }
  if (scoring.repeat) addSessionBonus(window, w.get('repeat_bonus')!, scores);
  return scores;
}

/** Adds the repeat bonus of a session of `window` items (bonus values in JS) to its scores [N]. */
export function addSessionBonus(
  window: readonly number[],
  bonus: ArrayLike<number>,
  scores: Float32Array | Float64Array,
): void {
  window.forEach((item, s) => {
    scores[item] = scores[item]! + bonus[window.length - 1 - s]!;
  });
}
