/**
 * A seeded click log with planted structure, for newcomers without ../shared/data and for fast tests.
 * Items belong to topics; a session stays in one topic and mostly walks that topic's items in a fixed
 * order, with some noise. A sequence model must learn "after p-017 comes p-018"; popularity cannot.
 */
import { mulberry32 } from '../../protocol/prng.js';
import { datasetFromSessions, type SessionDataset } from './yoochoose.js';

/** Knobs of the generator (all optional). */
export interface SyntheticOptions {
  topics?: number;
  itemsPerTopic?: number;
  trainSessions?: number;
  testSessions?: number;
  /** Chance that the next click follows the topic's order (else: a random item, mostly same topic). */
  follow?: number;
  seed?: number;
}

/** Builds the synthetic dataset ('synthetic'); same shape as loadYoochoose's result. */
export function syntheticDataset(options: SyntheticOptions = {}): SessionDataset {
  const {
    topics = 12,
    itemsPerTopic = 10,
    trainSessions = 3000,
    testSessions = 500,
    follow = 0.8,
    seed = 1,
  } = options;
  const rng = mulberry32(seed);
  const total = topics * itemsPerTopic;
  const width = String(total).length < 3 ? 3 : String(total).length;
  const id = (topic: number, pos: number) =>
    `p-${String(topic * itemsPerTopic + pos + 1).padStart(width, '0')}`;
  // Topics have Zipf-like traffic, so popularity is a real (if weak) baseline.
  const topicWeights = Array.from({ length: topics }, (_, t) => 1 / (t + 1));
  const weightSum = topicWeights.reduce((a, b) => a + b, 0);
  const pickTopic = () => {
    let u = rng() * weightSum;
    for (let t = 0; t < topics; t++) {
      u -= topicWeights[t]!;
      if (u <= 0) return t;
    }
    return topics - 1;
  };
  const session = (): string[] => {
    const topic = pickTopic();
    const length = 3 + Math.floor(rng() * 8); // 3..10 clicks
    let pos = Math.floor(rng() * itemsPerTopic);
    const out = [id(topic, pos)];
    while (out.length < length) {
      const u = rng();
      if (u < follow) pos = (pos + 1) % itemsPerTopic;
      else if (u < follow + (1 - follow) * 0.75) pos = Math.floor(rng() * itemsPerTopic);
      else {
        out.push(id(Math.floor(rng() * topics), Math.floor(rng() * itemsPerTopic)));
        continue;
      }
      out.push(id(topic, pos));
    }
    return out;
  };
  const train = Array.from({ length: trainSessions }, session);
  const test = Array.from({ length: testSessions }, session);
  return datasetFromSessions('synthetic', train, test);
}
