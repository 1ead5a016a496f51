/**
 * Runs recommenders over test pairs and streams ranks and top-20 lists into FullRankingMetrics:
 * the sparse baselines (exact ranks from CandidateScores) and trained SessionModels (dense scores
 * from tfjs, mapped into the dataset's indices through the manifest's itemIds).
 */
import type { NextItemPair } from '../../model/metrics.js';
import {
  popularityPercentiles,
  rankCandidates,
  rankDense,
  RankingAccumulator,
  topKCandidates,
  type FullRankingMetrics,
} from '../../model/full-ranking.js';
import type { SessionModel } from '../../model/session-model.js';
import { topK } from '../../model/top-k.js';
import type { Recommender } from '../baselines/session-index.js';
import type { SessionDataset } from '../data/yoochoose.js';

/** Cut-offs of every report. */
export const CUTOFFS = [5, 10, 20] as const;
/** Length of the lists coverage and popularity are measured on. */
export const LIST_K = 20;

/** Called after every `step` pairs with the number done so far. */
export type Progress = (done: number) => void;

/** A fresh accumulator for a dataset's catalogue and training popularity. */
export function accumulatorFor(data: SessionDataset): RankingAccumulator {
  return new RankingAccumulator(popularityPercentiles(data.popularity), CUTOFFS, LIST_K);
}

/** Evaluates a fitted baseline on `pairs` (each prefix scored on its own). */
export function evaluateRecommender(
  recommender: Recommender,
  data: SessionDataset,
  pairs: readonly NextItemPair[],
  progress?: Progress,
): FullRankingMetrics {
  const acc = accumulatorFor(data);
  const top = new Int32Array(LIST_K);
  const items = data.itemIds.length;
  pairs.forEach((pair, i) => {
    const c = recommender.score(pair.prefix);
    const filled = topKCandidates(c, LIST_K, items, top);
    acc.add(rankCandidates(c, pair.target), top, filled);
    if (progress && (i + 1) % 500 === 0) progress(i + 1);
  });
  progress?.(pairs.length);
  return acc.result();
}

/**
 * Where each dataset index lives in the model (-1: the model does not know the item), matched by
 * external id, so a model is evaluated correctly even if its catalogue was indexed differently.
 */
export function modelIndexOf(
  datasetIds: readonly string[],
  modelIds: readonly string[],
): Int32Array {
  const byId = new Map<string, number>();
  modelIds.forEach((id, i) => {
    if (i > 0) byId.set(id, i);
  });
  return Int32Array.from(datasetIds, (id, i) => (i === 0 ? -1 : (byId.get(id) ?? -1)));
}

/**
 * Evaluates a SessionModel: scores come from scoreNext in batches, are re-indexed into the dataset's
 * catalogue (unknown items score -Infinity: a target the model cannot name is a miss), and ranked with
 * rankDense (ties favour the target, like evaluateNext). Prefix items the model does not know are
 * dropped; a prefix left empty gets the popularity ranking, as the SDK does on cold start.
 */
export async function evaluateModel(
  model: SessionModel,
  modelIds: readonly string[],
  data: SessionDataset,
  pairs: readonly NextItemPair[],
  progress?: Progress,
  batchSize = 256,
): Promise<FullRankingMetrics> {
  const acc = accumulatorFor(data);
  const items = data.itemIds.length;
  const toModel = modelIndexOf(data.itemIds, modelIds);
  const fromModel = new Int32Array(modelIds.length).fill(-1);
  toModel.forEach((m, d) => {
    if (m >= 0) fromModel[m] = d;
  });
  const row = new Float64Array(items);
  const top = new Int32Array(LIST_K);
  const popular = { items: new Int32Array(0), scores: new Float64Array(0), count: 0 };
  for (let start = 0; start < pairs.length; start += batchSize) {
    const part = pairs.slice(start, start + batchSize);
    const mapped = part.map((p) => p.prefix.map((d) => toModel[d]!).filter((m) => m > 0));
    const scorable = mapped.flatMap((m, b) => (m.length ? [b] : []));
    let values: Float32Array = new Float32Array(0);
    if (scorable.length) {
      const scores = model.scoreNext(scorable.map((b) => mapped[b]!));
      values = (await scores.data()) as Float32Array;
      scores.dispose();
    }
    const n = modelIds.length;
    let r = 0;
    part.forEach((pair, b) => {
      if (!mapped[b]!.length) {
        const filled = topKCandidates(popular, LIST_K, items, top);
        acc.add(rankCandidates(popular, pair.target), top, filled);
        return;
      }
      row.fill(-Infinity);
      const offset = r++ * n;
      for (let m = 1; m < n; m++) {
        const d = fromModel[m]!;
        if (d > 0) row[d] = values[offset + m]!;
      }
      const best = topK(row, LIST_K).items;
      top.set(best);
      const filled = best.length;
      acc.add(rankDense(row, pair.target), top, filled);
    });
    progress?.(Math.min(start + batchSize, pairs.length));
  }
  return acc.result();
}
