/**
 * The datasets the trainer and the evaluator know, by name, each as a catalogue + training sessions
 * + explicit test cases, so session data (every prefix -> next item) and user-sequence data
 * (leave-one-out) share one path and one indexing.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prefixPairs, type NextItemPair } from '../../model/metrics.js';
import { loadAmazonBeauty } from './amazon-beauty.js';
import { loadDiginetica } from './diginetica.js';
import { syntheticDataset } from './synthetic.js';
import { loadYoochoose, type SessionDataset } from './yoochoose.js';

/** Dataset names accepted by `--dataset` (folder names under the data directory, or `synthetic`). */
export const DATASETS = [
  'yoochoose-rsc15-100k',
  'diginetica',
  'amazon-beauty',
  'synthetic',
] as const;
/** One of DATASETS. */
export type DatasetName = (typeof DATASETS)[number];

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The default data directory: ../shared/data relative to the repository root. */
export const DEFAULT_DATA_DIR = join(root, '..', 'shared', 'data');

/** True when `name` is in DATASETS. */
export function isDatasetName(name: string): name is DatasetName {
  return (DATASETS as readonly string[]).includes(name);
}

/** The `--dataset` flag's value, checked against DATASETS. */
export function parseDatasetName(text: string): DatasetName {
  if (!isDatasetName(text)) throw new Error(`--dataset must be one of ${DATASETS.join(', ')}`);
  return text;
}

/** A dataset as the trainer and the evaluator see it. */
export interface LoadedDataset {
  /** Catalogue (itemIds, popularity) and training sessions in model indices. */
  readonly data: SessionDataset;
  /**
   * Test cases in model indices: every prefix of every test session (prefixPairs, in session
   * order, shortest prefix first), or one leave-one-out case per user.
   */
  readonly testPairs: NextItemPair[];
  /**
   * Validation cases fixed by the protocol (leave-one-out: S[:-2] -> S[-2]); when absent, a
   * validation split may be carved from the training sessions by time.
   */
  readonly validationPairs?: NextItemPair[];
  /** How `testPairs` were made, for reports. */
  readonly protocol: 'every prefix -> next item' | 'leave-one-out (last item)';
}

/** Loads a dataset by name from `dataDir`. */
export async function loadDataset(name: DatasetName, dataDir: string): Promise<LoadedDataset> {
  const sessions = (data: SessionDataset): LoadedDataset => ({
    data,
    testPairs: prefixPairs(data.test),
    protocol: 'every prefix -> next item',
  });
  switch (name) {
    case 'synthetic':
      return sessions(syntheticDataset());
    case 'diginetica':
      return sessions(await loadDiginetica(dataDir));
    case 'yoochoose-rsc15-100k':
      return sessions(await loadYoochoose(dataDir));
    case 'amazon-beauty': {
      const loo = await loadAmazonBeauty(dataDir);
      return {
        data: loo.data,
        testPairs: loo.test,
        validationPairs: loo.validation,
        protocol: 'leave-one-out (last item)',
      };
    }
  }
}
