/**
 * Hyper-parameters of a training run and their defaults per dataset, with the manifest's scoring
 * block they imply. Benchmarks size their random models from these, so what they time is what ships.
 */
import type { ModelDims } from '../../protocol/manifest.js';
import type { LossKind } from '../../model/train.js';
import type { DatasetName } from '../data/datasets.js';

/** Hyper-parameters of one run. */
export interface Hyper {
  epochs: number;
  batch: number;
  lr: number;
  dim: number;
  hidden: number;
  maxLen: number;
  seed: number;
  /** Output loss: 'auto' = sampled softmax above 20,000 items, full softmax below. */
  loss: LossKind;
  /** Sampled softmax: shared popularity-sampled negatives per batch, sampling exponent, logQ. */
  negatives: number;
  alpha: number;
  logQ: boolean;
  /** Share of training sessions (the latest) held out for early stopping; 0 = none. */
  valFraction: number;
  /** Epochs without validation improvement before stopping. */
  patience: number;
  /** Training-only dropout on input embeddings and final LSTM states. */
  dropout: number;
  /** Learning-rate schedule: constant, or linear decay to 10% over the planned steps. */
  schedule: 'constant' | 'linear';
  /** Cosine scoring (manifest dims.scoring): normalised session vector and item rows, times `scale`. */
  normalize: boolean;
  scale: number;
  /** Adds the last item's embedding to the session vector (manifest dims.scoring.lastItem). */
  lastItem: boolean;
  /** Adds the decay-weighted mean of the session's item embeddings (dims.scoring.itemMean); <0 = off. */
  itemMean: number;
  /** A learned bonus for the session's own items by recency (dims.scoring.repeat). */
  repeat: boolean;
  /**
   * The recency stage after the main epochs: `recentEpochs` more epochs at a constant `recentLr` over
   * the newest `recentFraction` of all training sessions, the validation split included (it is the
   * newest data, closest to what the model will be asked about); 0 = none. Session datasets only.
   */
  recentFraction: number;
  recentEpochs: number;
  recentLr: number;
}

/**
 * Defaults per dataset, measured with the wasm backend in Node, one thread, on a 2-core machine
 * shared with other jobs (timings are noisy). All three use cosine scoring (dims.scoring): on
 * Diginetica, one epoch on half the training sessions gave validation HR@20+MRR@20 0.300 for the
 * dot-product model, 0.354 with the last-item skip, 0.396 cosine (scale 16), 0.449 cosine (scale 12)
 * + skip at lr 0.01, and logQ correction helped cosine further (0.377 -> 0.438 at scale 16).
 * YOOCHOOSE 100k (N = 2,934, full softmax): 6 epochs of batch 64 at lr 0.01 decaying linearly,
 * dropout 0.3 on inputs and final states, cosine scale 12 + last-item skip: HR@20 0.6898 /
 * MRR@20 0.3771 (V-SKNN 0.6820 / 0.3608; the same set-up with dot-product scoring 0.6811 / 0.3637).
 * Diginetica (N = 43,098): sampled softmax (2048 negatives, alpha 0.75, logQ), batch 256, lr 0.01
 * decaying linearly over 5 epochs, cosine scale 8 with the session's item mean instead of the
 * last-item skip, the learned repeat bonus, early stopping on the last 5% of training sessions,
 * then the recency stage (2 epochs at lr 0.001 over the newest 10% of the training sessions)
 * (one epoch on half the sessions: 0.434 for scale 12 + skip, 0.477 scale 8 + item mean, 0.516 with
 * the repeat bonus too; README has the test figures). Amazon Beauty (N = 54,543, leave-one-out):
 * cosine scale 10 with the item mean, no skip and no repeat bonus (a user rarely buys the item just
 * bought), batch 128, lr 0.005 over 8 epochs, logQ, dropout 0.3. Synthetic (120 items, d=16,
 * h=32): ~3 s.
 */
export const DEFAULTS: Readonly<Record<DatasetName, Hyper>> = {
  'yoochoose-rsc15-100k': {
    epochs: 6,
    batch: 64,
    lr: 0.01,
    dim: 64,
    hidden: 128,
    maxLen: 20,
    seed: 1,
    loss: 'auto',
    negatives: 2048,
    alpha: 0.75,
    logQ: false,
    valFraction: 0,
    patience: 2,
    dropout: 0.3,
    schedule: 'linear',
    normalize: true,
    scale: 12,
    lastItem: true,
    itemMean: -1,
    repeat: false,
    recentFraction: 0,
    recentEpochs: 2,
    recentLr: 0.001,
  },
  // d = 64 keeps the float16 model under 6 MB (43,098 x 64 x 2 bytes = 5.5 MB for the item table).
  diginetica: {
    epochs: 5,
    batch: 256,
    lr: 0.01,
    dim: 64,
    hidden: 128,
    maxLen: 20,
    seed: 1,
    loss: 'sampled',
    negatives: 2048,
    alpha: 0.75,
    logQ: true,
    valFraction: 0.05,
    patience: 2,
    dropout: 0,
    schedule: 'linear',
    normalize: true,
    scale: 8,
    lastItem: false,
    itemMean: 1,
    repeat: true,
    recentFraction: 0.1,
    recentEpochs: 2,
    recentLr: 0.001,
  },
  // Leave-one-out: the validation split is each user's second-to-last item, so valFraction is unused.
  // 54,543 items: sampled softmax, like Diginetica.
  'amazon-beauty': {
    epochs: 8,
    batch: 128,
    lr: 0.005,
    dim: 64,
    hidden: 128,
    maxLen: 20,
    seed: 1,
    loss: 'sampled',
    negatives: 2048,
    alpha: 0.75,
    logQ: true,
    valFraction: 0,
    patience: 2,
    dropout: 0.3,
    schedule: 'linear',
    normalize: true,
    scale: 10,
    lastItem: false,
    itemMean: 1,
    repeat: false,
    recentFraction: 0,
    recentEpochs: 2,
    recentLr: 0.001,
  },
  synthetic: {
    epochs: 3,
    batch: 32,
    lr: 0.01,
    dim: 16,
    hidden: 32,
    maxLen: 20,
    seed: 1,
    loss: 'auto',
    negatives: 2048,
    alpha: 0.75,
    logQ: false,
    valFraction: 0,
    patience: 2,
    dropout: 0,
    schedule: 'constant',
    normalize: false,
    scale: 1,
    lastItem: false,
    itemMean: -1,
    repeat: false,
    recentFraction: 0,
    recentEpochs: 2,
    recentLr: 0.001,
  },
};

/**
 * The manifest's dims.scoring for `hyper`: absent unless asked for, so a dot-product model's
 * manifest stays what it always was.
 */
export function scoringDims(
  hyper: Pick<Hyper, 'normalize' | 'scale' | 'lastItem' | 'itemMean' | 'repeat'>,
): Pick<ModelDims, 'scoring'> {
  if (!hyper.normalize && !hyper.lastItem) return {};
  return {
    scoring: {
      normalize: hyper.normalize,
      scale: hyper.normalize ? hyper.scale : 1,
      lastItem: hyper.lastItem,
      ...(hyper.itemMean >= 0 ? { itemMean: hyper.itemMean } : {}),
      ...(hyper.repeat ? { repeat: true } : {}),
    },
  };
}

/** The model's shape for a catalogue of `items` indices, with the scoring block `hyper` asks for. */
export function modelDims(items: number, hyper: Hyper): ModelDims {
  return {
    items,
    embedding: hyper.dim,
    hidden: hyper.hidden,
    maxSessionLength: hyper.maxLen,
    ...scoringDims(hyper),
  };
}

/** DEFAULTS[dataset] with every hyper-parameter that `given` sets (undefined keeps the default). */
export function hyperFor(dataset: DatasetName, given: Partial<Hyper>): Hyper {
  const hyper: Hyper = { ...DEFAULTS[dataset] };
  const target = hyper as unknown as Record<string, unknown>;
  for (const key of Object.keys(hyper) as (keyof Hyper)[]) {
    const value = given[key];
    if (value !== undefined) target[key] = value;
  }
  return hyper;
}
