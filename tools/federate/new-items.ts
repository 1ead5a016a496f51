/**
 * New items in a federated run (`npm run federate -- --new-items <fraction>`): the newest share of
 * the catalogue (by first appearance in the training log) is held out of the starting model and
 * reaches the catalogue after `--new-items-at` rounds; the server's own growth code
 * (server/catalog-growth.ts) then gives each a row, and the rounds learn it from there. Before that,
 * a device's history simply lacks those items, as the engine drops ids its model does not know.
 *
 * Model rows differ from dataset indices here: the items the model starts with keep their order
 * and the new ones come after them, in the order the server appends them. Devices' histories and
 * the central sessions are written in model rows; the cases measured stay in dataset indices
 * (tools/eval/evaluate.ts maps them through the model's item ids).
 */
import type { CandidateScores } from '../../model/full-ranking.js';
import type { NextItemPair } from '../../model/metrics.js';
import type { CatalogItem } from '../../protocol/catalog.js';
import type { Recommender } from '../baselines/session-index.js';
import type { SessionDataset } from '../data/yoochoose.js';
import type { Population } from './population.js';

/**
 * Days the training log spans, for an item's publication day (its first appearance): the derived
 * Diginetica files carry no timestamps, only time order, so the log is cut into this many equal
 * shares of sessions (Diginetica's training sessions span about 145 days: January to May 2016 less
 * the test week). The growth code starts a new row from items published within a day of it.
 */
export const LOG_DAYS = 145;

const DAY_MS = 86_400_000;
const LOG_START = Date.parse('2016-01-01T00:00:00Z');

/** Where the new items are and how a run sees them. */
export interface NewItemsPlan {
  /** Rows of the starting model (padding included): the items it knows. */
  readonly known: number;
  /** Item id of every model row, the new items last in the order they are added. */
  readonly modelIds: readonly string[];
  /** The catalogue the server holds once the new items arrive, in model-row order. */
  readonly catalog: readonly CatalogItem[];
  /** Each device's history in model rows, before the new items exist (those dropped) and after. */
  readonly devicesBefore: readonly (readonly number[])[];
  readonly devicesAfter: readonly (readonly number[])[];
  /** The central sessions in model rows, new items dropped (the starting model never saw them). */
  readonly central: readonly (readonly number[])[];
  /** The cases (dataset indices) whose target is a new item. */
  readonly newPairs: readonly NextItemPair[];
  /** Dataset indices newest first (by first appearance): the recency baseline's order. */
  readonly newestFirst: Int32Array;
}

/**
 * First appearance of every dataset index in `train` (time order): the position of the first
 * session holding it; items never seen come last (train.length).
 */
export function firstAppearance(data: SessionDataset): Int32Array {
  const first = new Int32Array(data.itemIds.length).fill(data.train.length);
  data.train.forEach((session, s) => {
    for (const item of session) if (first[item]! > s) first[item] = s;
  });
  first[0] = -1;
  return first;
}

/** Maps `sessions` through `toRow`, dropping rows at or above `limit` and emptied sessions' items. */
function inRows(
  sessions: readonly (readonly number[])[],
  toRow: Int32Array,
  limit: number,
): number[][] {
  return sessions.map((s) => s.map((item) => toRow[item]!).filter((row) => row < limit));
}

/**
 * The plan of a run whose newest `fraction` of items (by first appearance, ties by index) arrive
 * mid-run. Item i's publication day is the share of the log its first session falls in; `dated`
 * false leaves the catalogue without days (a new row then starts as a seeded random one).
 */
export function newItemsPlan(
  data: SessionDataset,
  population: Population,
  fraction: number,
  dated = true,
): NewItemsPlan {
  const items = data.itemIds.length;
  const first = firstAppearance(data);
  const byAge = Array.from({ length: items - 1 }, (_, i) => i + 1).sort(
    (a, b) => first[a]! - first[b]! || a - b,
  );
  const count = Math.min(items - 2, Math.max(1, Math.round((items - 1) * fraction)));
  const known = items - count;
  const held = byAge.slice(known - 1);
  const isNew = new Uint8Array(items);
  for (const item of held) isNew[item] = 1;
  // Known items keep their dataset order (popularity); new ones follow oldest first.
  const order = [0, ...byAge.slice(0, known - 1).sort((a, b) => a - b), ...held];
  const toRow = new Int32Array(items);
  order.forEach((item, row) => (toRow[item] = row));
  const perDay = Math.max(1, data.train.length / LOG_DAYS);
  const catalog = order.slice(1).map((item) => ({
    id: data.itemIds[item]!,
    title: `item ${data.itemIds[item]}`,
    url: `/items/${data.itemIds[item]}`,
    ...(dated
      ? {
          published: new Date(
            LOG_START + Math.floor(Math.min(first[item]!, data.train.length - 1) / perDay) * DAY_MS,
          ).toISOString(),
        }
      : {}),
  }));
  return {
    known,
    modelIds: order.map((item) => data.itemIds[item]!),
    catalog,
    devicesBefore: inRows(population.devices, toRow, known),
    devicesAfter: inRows(population.devices, toRow, items),
    central: inRows(population.central, toRow, known),
    newPairs: population.pairs.filter((pair) => isNew[pair.target] === 1),
    newestFirst: Int32Array.from(byAge.slice().reverse()),
  };
}

/** Recency: the newest items first (by first appearance), whatever the session. */
export class Newest implements Recommender {
  readonly name = 'newest first';
  private readonly scores: CandidateScores;

  /** Lists the `listed` newest items, enough for any cutoff up to that length. */
  constructor(newestFirst: Int32Array, listed = 100) {
    const items = newestFirst.slice(0, listed);
    const scores = Float64Array.from(items, (_, i) => items.length - i);
    this.scores = { items, scores, count: items.length };
  }

  fit(): void {}

  score(): CandidateScores {
    return this.scores;
  }
}
