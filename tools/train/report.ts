/**
 * What a training run prints: the run's settings, the training summary, and the test table of the
 * model against the POP baseline.
 */
import type { ModelDims } from '../../protocol/manifest.js';
import {
  evaluateNext,
  evaluatePopularity,
  type NextItemPair,
  type RankingMetrics,
} from '../../model/metrics.js';
import type { SessionModel } from '../../model/session-model.js';
import type { TrainResult } from '../../model/train.js';
import type { SessionDataset } from '../data/yoochoose.js';
import type { Hyper } from './defaults.js';

/** The manifest's scoring block as the reports write it: JSON, or `dot` for a dot-product model. */
export function scoringLabel(dims: ModelDims): string {
  return dims.scoring ? JSON.stringify(dims.scoring) : 'dot';
}

/** The opening line: dataset sizes, model size and hyper-parameters, and where a resume starts. */
export function runLine(
  run: { name: string; fit: number; validationPairs: number; testPairs: number },
  dims: ModelDims,
  hyper: Hyper,
  resumeStep?: number,
): string {
  return (
    `${run.name}: ${dims.items - 1} items, ${run.fit} train sessions, ` +
    `${run.validationPairs} validation / ${run.testPairs} test cases; ` +
    `d=${dims.embedding} h=${dims.hidden} ` +
    `L=${dims.maxSessionLength}, ${hyper.epochs} epochs, batch ${hyper.batch}, lr ${hyper.lr}, ` +
    `loss ${hyper.loss} (${hyper.negatives} negatives, alpha ${hyper.alpha}, logQ ${hyper.logQ}), ` +
    `dropout ${hyper.dropout}, ${hyper.schedule} lr, scoring ${scoringLabel(dims)}` +
    (resumeStep === undefined ? '' : `; resuming at step ${resumeStep}`)
  );
}

/** The training summary: steps, examples, time (validation's share), speed, loss, best epoch. */
export function summaryLine(
  result: TrainResult,
  run: {
    examples: number;
    seconds: number;
    trainSeconds: number;
    validationSeconds: number;
    examplesPerSecond: number;
  },
): string {
  return (
    `trained ${result.steps} steps, ${run.examples} examples in ${run.seconds.toFixed(1)} s ` +
    `(${run.validationSeconds.toFixed(1)} s of it validating; ${run.examplesPerSecond.toFixed(0)} ex/s, ` +
    `${(run.trainSeconds / Math.max(result.epochsDone, 1)).toFixed(1)} s/epoch), ` +
    `mean loss ${result.meanLoss.toFixed(3)}` +
    (result.bestEpoch >= 0
      ? `; best epoch ${result.bestEpoch + 1}${result.stoppedEarly ? ' (stopped early)' : ''}`
      : '')
  );
}

/** The model and the POP baseline on the test cases, ranked against the full catalogue. */
export interface TestMetrics {
  readonly model: RankingMetrics;
  readonly pop: RankingMetrics;
  readonly pairs: number;
}

/** Measures `model` and POP on `pairs` at 5, 10 and 20. */
export async function testMetrics(
  model: SessionModel,
  data: SessionDataset,
  pairs: readonly NextItemPair[],
): Promise<TestMetrics> {
  return {
    model: await evaluateNext(model, pairs, [5, 10, 20]),
    pop: evaluatePopularity(data.popularity, pairs, [5, 10, 20]),
    pairs: pairs.length,
  };
}

/** A small fixed-width table of model vs POP metrics. */
export function formatTable(pairs: number, model: RankingMetrics, pop: RankingMetrics): string {
  const cols = ['HR@5', 'HR@10', 'HR@20', 'MRR@5', 'MRR@10', 'MRR@20'];
  const row = (name: string, m: RankingMetrics) =>
    [
      name.padEnd(8),
      ...[5, 10, 20].map((k) => m.hr[k]!.toFixed(4).padStart(7)),
      ...[5, 10, 20].map((k) => m.mrr[k]!.toFixed(4).padStart(7)),
    ].join(' ');
  return [
    `test: ${pairs} next-item cases, full-catalogue ranking`,
    ['', ...cols].map((c, i) => (i === 0 ? ''.padEnd(8) : c.padStart(7))).join(' '),
    row('model', model),
    row('POP', pop),
  ].join('\n');
}
