/**
 * The datasets the evaluator knows, each as a catalogue + training sessions + explicit test pairs,
 * so session data (every prefix -> next pair) and user-sequence data (leave-one-out) share one path.
 */
import { prefixPairs, type NextItemPair } from '../../model/metrics.js';
import { loadAmazonBeauty } from '../data/amazon-beauty.js';
import { loadDiginetica } from '../data/diginetica.js';
import { syntheticDataset } from '../data/synthetic.js';
import { loadYoochoose, type SessionDataset } from '../data/yoochoose.js';

/** Dataset names accepted by `--dataset` (folder names under the data directory, or `synthetic`). */
export const EVAL_DATASETS = [
  'diginetica',
  'yoochoose-rsc15-100k',
  'amazon-beauty',
  'synthetic',
] as const;
/** One of EVAL_DATASETS. */
export type EvalDatasetName = (typeof EVAL_DATASETS)[number];

/** What an evaluation run needs. */
export interface EvalData {
  /** Catalogue (itemIds, popularity) and training sessions in model indices. */
  readonly data: SessionDataset;
  /** Test cases in model indices. */
  readonly pairs: NextItemPair[];
  /** How `pairs` were made, for the report. */
  readonly protocol: 'every prefix -> next item' | 'leave-one-out (last item)';
}

/** True when `name` is in EVAL_DATASETS. */
export function isEvalDatasetName(name: string): name is EvalDatasetName {
  return (EVAL_DATASETS as readonly string[]).includes(name);
}

/**
 * Loads a dataset by name. Session datasets use the same loaders (and so the same indices) as
 * tools/train.ts; their pairs are prefixPairs(test), in session order, shortest prefix first.
 */
export async function loadEvalData(name: EvalDatasetName, dataDir: string): Promise<EvalData> {
  const sessions = (data: SessionDataset): EvalData => ({
    data,
    pairs: prefixPairs(data.test),
    protocol: 'every prefix -> next item',
  });
  switch (name) {
    case 'diginetica':
      return sessions(await loadDiginetica(dataDir));
    case 'yoochoose-rsc15-100k':
      return sessions(await loadYoochoose(dataDir));
    case 'synthetic':
      return sessions(syntheticDataset());
    case 'amazon-beauty': {
      const loo = await loadAmazonBeauty(dataDir);
      return { data: loo.data, pairs: loo.test, protocol: 'leave-one-out (last item)' };
    }
  }
}
