/**
 * Seeded initial weights, as one flat vector in manifest order, so every backend (and every device
 * rebuilding a model from a seed) starts from bit-identical values.
 */
import { parameterCount, splitFlat, tensorLayout, type ModelDims } from '../protocol/manifest.js';
import { mulberry32, normal } from '../protocol/prng.js';

/**
 * The shape of a model a site starts from its catalogue alone (no logs to train on): the session
 * defaults measured on Diginetica (tools/train/defaults.ts; its test holds the two equal), d = 64,
 * h = 128, cosine scoring at scale 8 with the session's item mean and the repeat bonus.
 */
export function coldStartDims(items: number): ModelDims {
  return {
    items,
    embedding: 64,
    hidden: 128,
    maxSessionLength: 20,
    scoring: { normalize: true, scale: 8, lastItem: false, itemMean: 1, repeat: true },
  };
}

/** Standard deviation of the initial item embeddings: small, so early scores are near-uniform. */
export const EMBEDDING_INIT_STD = 0.05;

/**
 * Initial weights: glorot-uniform matrices (not orthogonal: tfjs' orthogonal initialiser takes ~35 s
 * for an LSTM on cpu, ENV.md pitfall 4, and would need a QR we do not want in the worker), forget-gate
 * bias 1 (Jozefowicz et al. 2015: lets gradients flow through the cell early on), a small normal item
 * table with a zero padding row 0, zero item and projection biases.
 */
export function initialWeights(dims: ModelDims, seed: number): Float32Array {
  const layout = tensorLayout(dims);
  const flat = new Float32Array(parameterCount(layout));
  const parts = splitFlat(flat, layout);
  const rng = mulberry32(seed);
  const { embedding: d, hidden: h } = dims;

  const embedding = parts.get('item_embedding')!;
  // Row 0 (padding) stays zero: it is never an input to a real position nor a trainable target.
  for (let i = d; i < embedding.length; i++) embedding[i] = EMBEDDING_INIT_STD * normal(rng);

  glorotUniform(parts.get('lstm_kernel')!, d, 4 * h, rng);
  glorotUniform(parts.get('lstm_recurrent')!, h, 4 * h, rng);
  glorotUniform(parts.get('projection_kernel')!, h, d, rng);

  // Gates are ordered i, f, g, o: the forget gate is the second block of h.
  parts.get('lstm_bias')!.fill(1, h, 2 * h);
  return flat;
}

function glorotUniform(out: Float32Array, fanIn: number, fanOut: number, rng: () => number): void {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  for (let i = 0; i < out.length; i++) out[i] = (2 * rng() - 1) * limit;
}
