/**
 * Reading and reporting the JSON rows of the federated-learning simulation (`npm run federate`):
 * one markdown table per run and a summary table that sets each run's final HR@20 against the
 * centrally trained reference.
 */
import { readFile } from 'node:fs/promises';
import { HearthError } from '../../protocol/errors.js';
import { markdownTable } from '../lib/table.js';

/** The metrics a row may carry. */
export const FEDERATE_METRICS = [
  'hr',
  'mrr',
  'epsilon',
  'upload_bytes',
  'download_bytes',
  'wall_s',
  // With --new-items: the model on the cases whose target is a new item, and two baselines there.
  'hr_new',
  'mrr_new',
  'hr_new_newest',
  'mrr_new_newest',
  'hr_new_popular',
  'mrr_new_popular',
] as const;

/** Whether a metric is a ranking one (HR or MRR at k). */
const isRanked = (metric: unknown) =>
  typeof metric === 'string' && (metric.startsWith('hr') || metric.startsWith('mrr'));

/** The simulated scenarios: a new model, one seeded from a central model, and the central reference. */
export const FEDERATE_SCENARIOS = ['new', 'seed', 'central'] as const;

/** The cutoff the report and charts show HR and MRR at. */
export const REPORT_K = 20;

/** One measured number of one run at one round. */
export interface FederateRow {
  /** Label of the run, e.g. "seed q=0.01 z=0 S=1" (free text). */
  readonly run: string;
  readonly scenario: (typeof FEDERATE_SCENARIOS)[number];
  /** 0 = the starting model. */
  readonly round: number;
  readonly metric: (typeof FEDERATE_METRICS)[number];
  /** 20 for the HR and MRR metrics, null otherwise. */
  readonly k: number | null;
  /** Null for an infinite epsilon (JSON has no Infinity). */
  readonly value: number | null;
}

/** A run's last values, the numbers the summary table and the ε chart show. */
export interface RunSummary {
  readonly run: string;
  readonly scenario: FederateRow['scenario'];
  /** The largest round of any of the run's rows. */
  readonly finalRound: number;
  /** HR@20 at the last round that has one; undefined when the run has none. */
  readonly hr: number | undefined;
  readonly mrr: number | undefined;
  /** ε at the last round that has one: null is infinite (no noise), undefined is no ε rows. */
  readonly epsilon: number | null | undefined;
}

/** Why `row` is not a valid FederateRow, or undefined when it is one. */
function rowProblem(row: unknown): string | undefined {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) return 'is not an object';
  const r = row as Record<string, unknown>;
  if (typeof r.run !== 'string' || r.run === '') return 'run must be a non-empty string';
  if (!(FEDERATE_SCENARIOS as readonly unknown[]).includes(r.scenario)) {
    return `scenario must be one of ${FEDERATE_SCENARIOS.join('|')}`;
  }
  if (!Number.isInteger(r.round) || (r.round as number) < 0) {
    return 'round must be an integer >= 0';
  }
  if (!(FEDERATE_METRICS as readonly unknown[]).includes(r.metric)) {
    return `metric must be one of ${FEDERATE_METRICS.join('|')}`;
  }
  const ranked = isRanked(r.metric);
  if (ranked ? !Number.isInteger(r.k) || (r.k as number) <= 0 : r.k !== null) {
    return ranked ? 'k must be a positive integer for hr and mrr' : 'k must be null';
  }
  // null stands for Infinity, which only ε can be (a run without noise).
  if (r.value === null ? r.metric !== 'epsilon' : !Number.isFinite(r.value)) {
    return r.metric === 'epsilon'
      ? 'value must be a finite number or null (infinite)'
      : 'value must be a finite number';
  }
  return undefined;
}

/**
 * Reads and validates the rows of every file (each one JSON array). The first bad row throws
 * HEARTH_E_DATASET naming the file and the row's index; so do a run labelled with two scenarios and
 * a row repeated (same run, round, metric and k), which would make "final" ambiguous.
 */
export async function readRows(files: readonly string[]): Promise<FederateRow[]> {
  const rows: FederateRow[] = [];
  const scenarios = new Map<string, string>();
  const seen = new Set<string>();
  for (const file of files) {
    let data: unknown;
    try {
      data = JSON.parse(await readFile(file, 'utf8'));
    } catch (error) {
      throw new HearthError('HEARTH_E_DATASET', `${file}: ${(error as Error).message}`);
    }
    if (!Array.isArray(data)) throw new HearthError('HEARTH_E_DATASET', `${file}: not an array`);
    data.forEach((row: unknown, index) => {
      const bad = (why: string): never => {
        throw new HearthError('HEARTH_E_DATASET', `${file}[${index}]: ${why}`);
      };
      const problem = rowProblem(row);
      if (problem) bad(problem);
      const r = row as FederateRow;
      const scenario = scenarios.get(r.run) ?? r.scenario;
      if (scenario !== r.scenario) bad(`run "${r.run}" is already scenario ${scenario}`);
      scenarios.set(r.run, scenario);
      const key = JSON.stringify([r.run, r.round, r.metric, r.k]);
      if (seen.has(key)) bad(`repeats run "${r.run}" round ${r.round} ${r.metric}`);
      seen.add(key);
      rows.push({
        run: r.run,
        scenario: r.scenario,
        round: r.round,
        metric: r.metric,
        k: r.k,
        value: r.value,
      });
    });
  }
  return rows;
}

/** The rows of one metric (at REPORT_K for hr and mrr). */
function isMetric(row: FederateRow, metric: FederateRow['metric']): boolean {
  return row.metric === metric && (row.k === null || row.k === REPORT_K);
}

/** The runs in order of first appearance, each with its rows. */
export function groupRuns(rows: readonly FederateRow[]): Map<string, FederateRow[]> {
  const runs = new Map<string, FederateRow[]>();
  for (const row of rows) runs.set(row.run, [...(runs.get(row.run) ?? []), row]);
  return runs;
}

/** Each run's final round and last HR@20, MRR@20 and ε, in order of first appearance. */
export function summarise(rows: readonly FederateRow[]): RunSummary[] {
  return [...groupRuns(rows)].map(([run, own]) => {
    const last = (metric: FederateRow['metric']) =>
      own.filter((r) => isMetric(r, metric)).sort((a, b) => b.round - a.round)[0]?.value;
    return {
      run,
      scenario: own[0]!.scenario,
      finalRound: Math.max(...own.map((r) => r.round)),
      hr: last('hr') ?? undefined,
      mrr: last('mrr') ?? undefined,
      epsilon: last('epsilon'),
    };
  });
}

/** The reference: the first central run with an HR@20 above 0 (the runs are shown as % of it). */
export function centralRun(summaries: readonly RunSummary[]): RunSummary | undefined {
  return summaries.find((s) => s.scenario === 'central' && s.hr !== undefined && s.hr > 0);
}

const DASH = '–';

/** ε as text: "∞" for infinite, a dash for none. */
export function formatEpsilon(epsilon: number | null | undefined): string {
  if (epsilon === undefined) return DASH;
  return epsilon === null ? '∞' : epsilon.toFixed(2);
}

const fixed = (digits: number) => (value: number | null | undefined) =>
  value === undefined || value === null ? DASH : value.toFixed(digits);

/** A run label inside a table cell: a `|` would end the cell. */
const cell = (text: string) => text.replaceAll('|', '\\|');

/** One table per run (by round), then the summary; markdown. */
export function markdownReport(rows: readonly FederateRow[]): string {
  const parts: string[] = [];
  const columns = [
    ['hr', fixed(4)],
    ['mrr', fixed(4)],
    ['epsilon', formatEpsilon],
    ['upload_bytes', fixed(0)],
    ['download_bytes', fixed(0)],
    ['wall_s', fixed(1)],
  ] as const;
  const newColumns = [
    ['hr_new', fixed(4)],
    ['mrr_new', fixed(4)],
  ] as const;
  for (const [run, own] of groupRuns(rows)) {
    const withNew = own.some((r) => r.metric === 'hr_new');
    const shown = withNew ? [...columns, ...newColumns] : columns;
    const rounds = [...new Set(own.map((r) => r.round))].sort((a, b) => a - b);
    const value = (round: number, metric: FederateRow['metric']) =>
      own.find((r) => r.round === round && isMetric(r, metric))?.value;
    const table = rounds.map((round) => [
      String(round),
      ...shown.map(([metric, format]) => format(value(round, metric))),
    ]);
    const header = ['round', 'HR@20', 'MRR@20', 'ε', 'upload bytes', 'download bytes', 'wall s'];
    if (withNew) header.push('HR@20 new items', 'MRR@20 new items');
    parts.push(`### ${run} (${own[0]!.scenario})`, markdownTable(header, table));
    if (withNew) {
      const at = (metric: FederateRow['metric']) => fixed(4)(value(0, metric));
      parts.push(
        'On the cases whose target is a new item: newest first HR@20 / MRR@20 ' +
          `${at('hr_new_newest')} / ${at('mrr_new_newest')}, popularity ` +
          `${at('hr_new_popular')} / ${at('mrr_new_popular')}.`,
      );
    }
  }

  const summaries = summarise(rows);
  const central = centralRun(summaries);
  const header = ['run', 'scenario', 'final round', 'HR@20', 'MRR@20', 'ε'];
  if (central) header.push('HR@20 % of central');
  const table = summaries.map((s) => {
    const line = [
      cell(s.run),
      s.scenario,
      String(s.finalRound),
      fixed(4)(s.hr),
      fixed(4)(s.mrr),
      formatEpsilon(s.epsilon),
    ];
    if (central) {
      line.push(s.hr === undefined ? DASH : `${((100 * s.hr) / central.hr!).toFixed(1)}%`);
    }
    return line;
  });
  parts.push('### Summary', markdownTable(header, table));
  if (central) {
    parts.push(`Central reference: ${central.run}, HR@20 ${fixed(4)(central.hr)}.`);
  }
  return `${parts.join('\n\n')}\n`;
}
