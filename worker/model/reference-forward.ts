/**
 * The session model's forward pass in plain JavaScript, float64, straight from the weights layout.
 * Slow and obvious on purpose: it is the known answer every tfjs backend is checked against before
 * Hearth trusts it, and the oracle for the model's unit tests.
 */
import { splitFlat, tensorLayout, type ModelDims } from '../../protocol/manifest.js';

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
  let hState = new Float64Array(h);
  let cState = new Float64Array(h);
  for (const item of session.slice(-dims.maxSessionLength)) {
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
  for (let j = 0; j < d; j++) {
    let sum = projBias[j]!;
    for (let r = 0; r < h; r++) sum += hState[r]! * proj[r * d + j]!;
    out[j] = sum;
  }
  const scores = new Float64Array(n);
  for (let item = 0; item < n; item++) {
    let sum = itemBias[item]!;
    for (let j = 0; j < d; j++) sum += emb[item * d + j]! * out[j]!;
    scores[item] = sum;
  }
  return scores;
}
