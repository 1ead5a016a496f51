/**
 * Loads the YOOCHOOSE (RecSys Challenge 2015) 100k-line sample in GRU4Rec/session-rec preprocessing
 * (see ../shared/data/README.md) and maps it to model indices. Also holds the dataset shape and the
 * id -> index mapping every session dataset shares.
 */
import { readDatasetFile } from './item-lines.js';
import { join } from 'node:path';
import { HearthError } from '../../protocol/errors.js';

/** A session dataset in model indices (1..N-1; 0 is padding). */
export interface SessionDataset {
  readonly name: string;
  /** External item id of each model index; [0] = '' (padding). */
  readonly itemIds: string[];
  /** Training sessions, each in click order. */
  readonly train: number[][];
  /** Test sessions (items unseen in training dropped; sessions left shorter than 2 dropped). */
  readonly test: number[][];
  /** Training click count of each model index ([0] = 0). */
  readonly popularity: number[];
}

/** Folder of the sample under the data directory. */
export const YOOCHOOSE_DIR = 'yoochoose-rsc15-100k';
const HEADER = 'SessionId\tItemId\tTime';

/** Reads `<dataDir>/yoochoose-rsc15-100k/yoochoose-clicks-100k_{train_full,test}.txt`. */
export async function loadYoochoose(dataDir: string): Promise<SessionDataset> {
  const dir = join(dataDir, YOOCHOOSE_DIR);
  const train = await readClickFile(join(dir, 'yoochoose-clicks-100k_train_full.txt'));
  const test = await readClickFile(join(dir, 'yoochoose-clicks-100k_test.txt'));
  return datasetFromSessions('yoochoose-rsc15-100k', train, test);
}

/**
 * Parses one click file (TSV `SessionId ItemId Time`, header required) into sessions of external item
 * ids in time order (file order breaks ties). Every line is validated; the first bad one throws
 * HEARTH_E_DATASET naming `file:line`.
 */
export async function readClickFile(file: string): Promise<string[][]> {
  const text = await readDatasetFile(file);
  const lines = text.split('\n');
  const bad = (line: number, why: string): never => {
    throw new HearthError('HEARTH_E_DATASET', `${file}:${line} ${why}`);
  };
  if ((lines[0] ?? '').replace(/\r$/, '') !== HEADER) bad(1, `header must be "${HEADER}"`);
  const sessions = new Map<string, { item: string; time: number }[]>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line === '' && i === lines.length - 1) break; // the final newline
    const fields = line.split('\t');
    if (fields.length !== 3) bad(i + 1, `expected 3 tab-separated fields, got ${fields.length}`);
    const [session, item, time] = fields as [string, string, string];
    if (!/^\d+$/.test(session)) bad(i + 1, `SessionId "${session}" is not a non-negative integer`);
    if (!/^\d+$/.test(item)) bad(i + 1, `ItemId "${item}" is not a non-negative integer`);
    const seconds = Number(time);
    if (time.trim() === '' || !Number.isFinite(seconds))
      bad(i + 1, `Time "${time}" is not a number`);
    let clicks = sessions.get(session);
    if (!clicks) sessions.set(session, (clicks = []));
    clicks.push({ item, time: seconds });
  }
  // Array.prototype.sort is stable, so equal times keep file order.
  return [...sessions.values()].map((clicks) =>
    clicks.sort((a, b) => a.time - b.time).map((c) => c.item),
  );
}

/** Orders ids numerically when both are digit strings, else by code units: a stable tie-break. */
function compareIds(a: string, b: string): number {
  if (/^\d+$/.test(a) && /^\d+$/.test(b) && a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Maps external ids to model indices 1..N-1 by descending training popularity (ties by id), so index
 * order is also the POP ranking. Test items unseen in training are dropped, then test sessions left
 * shorter than 2 (no next-item pair).
 */
export function datasetFromSessions(
  name: string,
  train: readonly (readonly string[])[],
  test: readonly (readonly string[])[],
): SessionDataset {
  const counts = new Map<string, number>();
  for (const s of train) for (const id of s) counts.set(id, (counts.get(id) ?? 0) + 1);
  const ordered = [...counts.keys()].sort(
    (a, b) => counts.get(b)! - counts.get(a)! || compareIds(a, b),
  );
  const itemIds = ['', ...ordered];
  const index = new Map(ordered.map((id, i) => [id, i + 1]));
  const popularity = [0, ...ordered.map((id) => counts.get(id)!)];
  const trainIdx = train.map((s) => s.map((id) => index.get(id)!));
  const testIdx = test
    .map((s) => s.filter((id) => index.has(id)).map((id) => index.get(id)!))
    .filter((s) => s.length >= 2);
  return { name, itemIds, train: trainIdx, test: testIdx, popularity };
}
