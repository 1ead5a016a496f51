/**
 * The small planted run the federated simulation's tests share: 8 topics of 8 items whose sessions
 * walk a topic in order 80% of the time, a tiny model, and settings that learn it in a few rounds.
 */
import { prefixPairs } from '../../model/metrics.js';
import type { ModelDims } from '../../protocol/manifest.js';
import type { LoadedDataset } from '../data/datasets.js';
import { syntheticDataset } from '../data/synthetic.js';
import type { RunSettings } from './run.js';

export const plantedData = syntheticDataset({
  topics: 8,
  itemsPerTopic: 8,
  trainSessions: 600,
  testSessions: 80,
});

export const plantedLoaded: LoadedDataset = {
  data: plantedData,
  testPairs: prefixPairs(plantedData.test),
  protocol: 'every prefix -> next item',
};

export const plantedDims: ModelDims = {
  items: plantedData.itemIds.length,
  embedding: 8,
  hidden: 8,
  maxSessionLength: 10,
};

/** A new site's run of 30 rounds at q = 0.2, no noise, FedAdam, the whole model in every update. */
export const plantedSettings: RunSettings = {
  scenario: 'new',
  rounds: 30,
  sampleRate: 0.2,
  noise: 0,
  clip: 5,
  delta: 1e-6,
  seed: 3,
  rowsPerRound: null,
  rowChoice: 'window',
  serverTau: null,
  serverItemTau: null,
  local: { steps: 1, optimizer: 'sgd', learningRate: 10, mu: 0, negatives: 100 },
  serverOptimizer: 'fedadam',
  serverLearningRate: 0.03,
  itemLearningRate: null,
  perDevice: false,
  updateDtype: 'float16',
  secure: false,
  evalEvery: 30,
  evalCases: 10_000,
};
