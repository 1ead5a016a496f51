/**
 * Output formats of the evaluator: a markdown table for people and flat JSON rows
 * `{ model, dataset, metric, k, value }` for scripts and dashboards.
 */
import type { FullRankingMetrics } from '../../model/full-ranking.js';
import { markdownRow } from '../lib/table.js';
import { CUTOFFS } from './evaluate.js';

/** One measured number. */
export interface MetricRow {
  readonly model: string;
  readonly dataset: string;
  readonly metric: 'hr' | 'mrr' | 'ndcg' | 'coverage' | 'popularity';
  readonly k: number;
  readonly value: number;
}

/** A model's metrics under its display name. */
export interface NamedMetrics {
  readonly model: string;
  readonly metrics: FullRankingMetrics;
}

/** Flattens results into JSON rows (coverage and popularity with k = the list length, 20). */
export function toRows(dataset: string, results: readonly NamedMetrics[]): MetricRow[] {
  const rows: MetricRow[] = [];
  for (const { model, metrics: m } of results) {
    for (const metric of ['hr', 'mrr', 'ndcg'] as const) {
      for (const k of CUTOFFS) rows.push({ model, dataset, metric, k, value: m[metric][k]! });
    }
    rows.push({ model, dataset, metric: 'coverage', k: m.listK, value: m.coverage });
    rows.push({ model, dataset, metric: 'popularity', k: m.listK, value: m.popularity });
  }
  return rows;
}

/** A markdown table: one row per model; HR, MRR, NDCG at 5/10/20, coverage@20, popularity@20. */
export function formatMarkdown(results: readonly NamedMetrics[]): string {
  const head = [
    'model',
    ...(['HR', 'MRR', 'NDCG'] as const).flatMap((m) => CUTOFFS.map((k) => `${m}@${k}`)),
    'Cov@20',
    'Pop@20',
  ];
  // Numbers right-aligned: the rule is written here, not by markdownTable, which aligns left.
  const lines = [markdownRow(head), `|${head.map((h, i) => (i ? '---:' : '---')).join('|')}|`];
  for (const { model, metrics: m } of results) {
    const cells = [
      model,
      ...(['hr', 'mrr', 'ndcg'] as const).flatMap((metric) =>
        CUTOFFS.map((k) => m[metric][k]!.toFixed(4)),
      ),
      m.coverage.toFixed(4),
      m.popularity.toFixed(4),
    ];
    lines.push(markdownRow(cells));
  }
  return lines.join('\n');
}
