/**
 * Offline evaluation of next-item recommenders with full-catalogue ranking.
 *
 *   npm run eval -- --data <dir> --dataset <name> [--model <model-dir>] [--baselines]
 *                   [--json <file>] [--limit <n>] [--backend wasm|cpu]
 *                   [--weights-dtype float32,float16,int8,int8e]
 *
 * <dir> defaults to ../shared/data; <name> is a folder there (diginetica, yoochoose-rsc15-100k,
 * amazon-beauty) or `synthetic`. Without --model, --baselines is implied. Prints a markdown table
 * (HR, MRR, NDCG @5/10/20, coverage@20, mean popularity percentile@20) and optionally writes JSON rows
 * `{ model, dataset, metric, k, value }`. --limit n evaluates only the first n test pairs.
 * --weights-dtype evaluates the model as devices download it in each listed dtype, in one run.
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { WEIGHTS_DTYPES, type WeightsDtype } from '../protocol/manifest.js';
import { decodeWeights, encodeWeights } from '../protocol/weights-codec.js';
import { SessionModel } from '../model/session-model.js';
import { allBaselines } from './baselines/index.js';
import type { Recommender } from './baselines/session-index.js';
import {
  DEFAULT_DATA_DIR,
  loadDataset,
  parseDatasetName,
  type DatasetName,
} from './data/datasets.js';
import { evaluateModel, evaluateRecommender, type Progress } from './eval/evaluate.js';
import { formatMarkdown, toRows, type MetricRow, type NamedMetrics } from './eval/report.js';
import { oneOf, positiveInteger } from './lib/args.js';
import { isEntryPoint, runMain } from './lib/entry.js';
import { progressBar } from './lib/progress.js';
import { secondsSince } from './lib/timing.js';
import { loadModel } from './model-io.js';
import { initNodeBackend, type NodeBackend } from './tf-node.js';

/** Options of runEval (the CLI flags). */
export interface EvalOptions {
  dataset: DatasetName;
  /** Data directory (default DEFAULT_DATA_DIR). */
  data?: string;
  /** Model directory to evaluate (a tools/train.ts output). */
  model?: string;
  /**
   * The model as devices download it in each of these dtypes (weights encoded and decoded by
   * protocol/weights-codec.ts before scoring); default float32 alone. Rows `model`, `model-int8`, …
   */
  weightsDtypes?: readonly WeightsDtype[];
  /** Evaluate the classic baselines too (implied when no model is given). */
  baselines?: boolean;
  /** Only the first `limit` test pairs. */
  limit?: number;
  /** JSON rows go here. */
  json?: string;
  backend?: NodeBackend;
  /** Use these recommenders instead of allBaselines() (tests). */
  recommenders?: Recommender[];
  /** No progress bars, no printing. */
  quiet?: boolean;
}

/** One evaluated model with its timings. */
export interface EvalResult extends NamedMetrics {
  /** Seconds to fit a baseline, or to load a model directory. */
  readonly fitSeconds: number;
  /** Seconds to score and rank every test pair. */
  readonly evalSeconds: number;
}

/** Everything a run measured. */
export interface EvalReport {
  readonly dataset: string;
  readonly pairs: number;
  readonly items: number;
  readonly results: EvalResult[];
  readonly rows: MetricRow[];
  readonly table: string;
}

/** Loads the dataset, fits and evaluates every requested recommender, prints and writes the results. */
export async function runEval(options: EvalOptions): Promise<EvalReport> {
  const log = options.quiet ? () => {} : (line: string) => console.log(line);
  const loaded = performance.now();
  const {
    data,
    testPairs: allPairs,
    protocol,
  } = await loadDataset(options.dataset, options.data ?? DEFAULT_DATA_DIR);
  const pairs = options.limit === undefined ? allPairs : allPairs.slice(0, options.limit);
  log(
    `${data.name}: ${data.itemIds.length - 1} items, ${data.train.length} training sequences, ` +
      `${pairs.length}${pairs.length < allPairs.length ? ` of ${allPairs.length}` : ''} test pairs ` +
      `(${protocol}), loaded in ${secondsSince(loaded).toFixed(1)} s; full-catalogue ranking`,
  );

  const withBar = async <T>(label: string, run: (progress: Progress) => Promise<T> | T) => {
    const bar = options.quiet
      ? null
      : progressBar({
          format: `${label.padEnd(9)} |{bar}| {percentage}% | {value}/{total} pairs | ETA {eta_formatted}`,
          hideCursor: true,
        });
    bar?.start(pairs.length, 0);
    try {
      return await run((done) => bar?.update(done));
    } finally {
      bar?.stop();
    }
  };

  const results: EvalResult[] = [];
  if (options.model) {
    await initNodeBackend(options.backend ?? 'wasm');
    const started = performance.now();
    const { manifest, model } = await loadModel(options.model);
    const fitSeconds = secondsSince(started);
    const flat = model.toFlat();
    model.dispose();
    for (const dtype of options.weightsDtypes ?? ['float32']) {
      const name = dtype === 'float32' ? 'model' : `model-${dtype}`;
      const bytes = encodeWeights(flat, manifest.tensors, dtype);
      const served = SessionModel.fromFlat(
        manifest.dims,
        decodeWeights(bytes, manifest.tensors, dtype),
      );
      try {
        const evalStart = performance.now();
        const metrics = await withBar(name, (progress) =>
          evaluateModel(served, manifest.itemIds, data, pairs, progress),
        );
        results.push({ model: name, metrics, fitSeconds, evalSeconds: secondsSince(evalStart) });
        if (!options.quiet) console.log(`${name}: ${bytes.length} bytes of weights to download`);
      } finally {
        served.dispose();
      }
    }
  }
  if (options.baselines || !options.model) {
    for (const recommender of options.recommenders ?? allBaselines()) {
      const started = performance.now();
      recommender.fit(data.train, data.itemIds.length);
      const fitSeconds = secondsSince(started);
      const evalStart = performance.now();
      const metrics = await withBar(recommender.name, (progress) =>
        evaluateRecommender(recommender, data, pairs, progress),
      );
      results.push({
        model: recommender.name,
        metrics,
        fitSeconds,
        evalSeconds: secondsSince(evalStart),
      });
    }
  }

  const table = formatMarkdown(results);
  log(table);
  for (const r of results) {
    log(
      `${r.model}: ${r.model === 'model' ? 'load' : 'fit'} ${r.fitSeconds.toFixed(1)} s, evaluate ${r.evalSeconds.toFixed(1)} s`,
    );
  }
  const rows = toRows(data.name, results);
  if (options.json) {
    await writeFile(options.json, `${JSON.stringify(rows, null, 2)}\n`);
    log(`wrote ${rows.length} rows to ${options.json}`);
  }
  return {
    dataset: data.name,
    pairs: pairs.length,
    items: data.itemIds.length - 1,
    results,
    rows,
    table,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: DEFAULT_DATA_DIR },
      dataset: { type: 'string', default: 'yoochoose-rsc15-100k' },
      model: { type: 'string' },
      baselines: { type: 'boolean', default: false },
      json: { type: 'string' },
      limit: { type: 'string' },
      backend: { type: 'string', default: 'wasm' },
      'weights-dtype': { type: 'string', default: 'float32' },
    },
  });
  const weightsDtypes = values['weights-dtype']
    .split(',')
    .map((d) => oneOf('weights-dtype', d, WEIGHTS_DTYPES));
  const dataset = parseDatasetName(values.dataset);
  const backend = oneOf('backend', values.backend, ['wasm', 'cpu']);
  await runEval({
    dataset,
    data: resolve(values.data),
    model: values.model === undefined ? undefined : resolve(values.model),
    baselines: values.baselines,
    json: values.json === undefined ? undefined : resolve(values.json),
    limit: positiveInteger('limit', values.limit),
    backend,
    weightsDtypes,
  });
}

if (isEntryPoint(import.meta.url)) runMain(main);
