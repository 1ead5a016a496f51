/**
 * Amazon Beauty for the replay simulation: a user-level hold-out, and a global model trained only on
 * the users that are not replayed.
 *
 * Users are shuffled with a seed; the first `trainShare` of them train the global model on their
 * whole sequences, the rest are held out for replay (and split again into tuning and reported users
 * by the simulation), so no replayed user's sequence ever reached the global model. The catalogue is
 * every item in the file (a site knows its whole catalogue), indexed by training count, so items
 * only held-out users touched exist in the model with their initial weights, as new items would.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { HearthError } from '../../protocol/errors.js';
import { batchesPerEpoch, toWindows } from '../../model/batches.js';
import { evaluateNext, type RankingMetrics } from '../../model/metrics.js';
import { mulberry32, shuffleInPlace } from '../../protocol/prng.js';
import { SessionModel } from '../../model/session-model.js';
import { trainSessions } from '../../model/train.js';
import { BEAUTY_DIR } from '../data/amazon-beauty.js';
import { readIdLines } from '../data/item-lines.js';
import { exportModel } from '../model-io.js';

/** Users of the Beauty file split for replay, in model indices. */
export interface BeautySplit {
  /** External id of each model index; [0] = ''. */
  readonly itemIds: string[];
  /** Whole sequences of the users the global model trains on. */
  readonly train: number[][];
  /** Whole sequences of the held-out users, in shuffled order. */
  readonly heldOut: number[][];
}

/** Reads `<dataDir>/amazon-beauty/beauty.txt` and splits its users (seeded). */
export async function splitBeauty(
  dataDir: string,
  seed: number,
  trainShare = 0.8,
): Promise<BeautySplit> {
  const file = join(dataDir, BEAUTY_DIR, 'beauty.txt');
  const users = new Map<string, string[]>();
  for (const [user, item] of await readIdLines(file, 2)) {
    const list = users.get(user!) ?? [];
    list.push(item!);
    users.set(user!, list);
  }
  if (users.size < 10) throw new HearthError('HEARTH_E_DATASET', `${file}: too few users`);
  const order = shuffleInPlace([...users.values()], mulberry32(seed));
  const cut = Math.round(order.length * trainShare);
  const counts = new Map<string, number>();
  for (const s of order) for (const id of s) counts.set(id, counts.get(id) ?? 0);
  for (const s of order.slice(0, cut)) for (const id of s) counts.set(id, counts.get(id)! + 1);
  const ids = [...counts.keys()].sort(
    (a, b) => counts.get(b)! - counts.get(a)! || Number(a) - Number(b),
  );
  const index = new Map(ids.map((id, i) => [id, i + 1]));
  const mapped = order.map((s) => s.map((id) => index.get(id)!));
  return { itemIds: ['', ...ids], train: mapped.slice(0, cut), heldOut: mapped.slice(cut) };
}

/** Hyper-parameters of the Beauty global model (d, h, L as the other datasets' defaults). */
export const BEAUTY_TRAINING = {
  dim: 64,
  hidden: 128,
  maxLen: 20,
  epochs: 5,
  batch: 128,
  lr: 0.005,
  dropout: 0.3,
  negatives: 2048,
  /**
   * Cosine scoring with the mean of the history's items, as the trainer's Amazon Beauty default
   * (tools/train/defaults.ts); no repeat bonus (a purchase is rarely bought again).
   */
  scoring: { normalize: true, scale: 10, lastItem: false, itemMean: 1 },
};

/**
 * The global model for `split` in `dir`: reused when already there (same seed, same split), else
 * trained on the training users with sampled softmax and exported like `npm run train` does.
 * Returns the model directory; `check` gets the held-out users' leave-one-out metrics.
 */
export async function beautyModel(
  split: BeautySplit,
  dir: string,
  seed: number,
  check?: (metrics: RankingMetrics) => void,
): Promise<string> {
  if (existsSync(join(dir, 'manifest.json'))) return dir;
  const h = BEAUTY_TRAINING;
  const dims = {
    items: split.itemIds.length,
    embedding: h.dim,
    hidden: h.hidden,
    maxSessionLength: h.maxLen,
    scoring: h.scoring,
  };
  const sessions = split.train.map((items) => ({ items }));
  const popularity = new Float64Array(dims.items);
  for (const s of split.train) for (const i of s) popularity[i]!++;
  const perEpoch = batchesPerEpoch(toWindows(sessions, h.maxLen).length, h.batch);
  const bar = new cliProgress.SingleBar(
    { format: 'train beauty |{bar}| {percentage}% | loss {loss} | ETA {eta_formatted}' },
    cliProgress.Presets.shades_classic,
  );
  bar.start(perEpoch * h.epochs, 0, { loss: '-' });
  const model = SessionModel.random(dims, seed);
  try {
    await trainSessions(model, sessions, {
      epochs: h.epochs,
      batchSize: h.batch,
      learningRate: h.lr,
      seed,
      loss: 'sampled',
      sampled: { negatives: h.negatives },
      popularity,
      dropout: h.dropout,
      schedule: 'linear',
      onStep: ({ step, loss }) => bar.update(step, { loss: loss.toFixed(3) }),
    });
    bar.stop();
    const pairs = split.heldOut.map((s) => ({ prefix: s.slice(0, -1), target: s[s.length - 1]! }));
    check?.(await evaluateNext(model, pairs, [10, 20]));
    const popular = [...popularity.keys()]
      .slice(1)
      .sort((a, b) => popularity[b]! - popularity[a]! || a - b)
      .slice(0, 100);
    await exportModel(dir, model, {
      itemIds: split.itemIds,
      popular,
      version: 1,
      training: {
        dataset: 'amazon-beauty',
        protocol: 'user hold-out for replay',
        seed,
        trainUsers: split.train.length,
        heldOutUsers: split.heldOut.length,
        ...h,
        scoring: JSON.stringify(h.scoring),
      },
    });
  } finally {
    bar.stop();
    model.dispose();
  }
  return dir;
}
