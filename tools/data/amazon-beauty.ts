/**
 * Loads Amazon Beauty in BERT4Rec preprocessing (`beauty.txt`: `user item` per line, grouped by user,
 * each user's items in time order) for the leave-one-out protocol of sequential recommendation
 * (SASRec, BERT4Rec, Klenitskiy & Vasilev 2023): per user S, the last item is the test target with
 * input S[:-1], the second-to-last is the validation target with input S[:-2], and S[:-2] is training
 * data. All items are ranked.
 */
import { join } from 'node:path';
import { HearthError } from '../../protocol/errors.js';
import type { NextItemPair } from '../../model/metrics.js';
import { readIdLines } from './item-lines.js';
import type { SessionDataset } from './yoochoose.js';

/** Folder of the dataset under the data directory. */
export const BEAUTY_DIR = 'amazon-beauty';

/** A leave-one-out dataset: the catalogue and training sequences, plus explicit evaluation pairs. */
export interface LeaveOneOutDataset {
  /** `train` = S[:-2] per user; `test` is empty (the pairs below are the test cases). */
  readonly data: SessionDataset;
  /** Input S[:-1] -> target S[-1], one per user. */
  readonly test: NextItemPair[];
  /** Input S[:-2] -> target S[-2], one per user. */
  readonly validation: NextItemPair[];
}

/** Reads `<dataDir>/amazon-beauty/beauty.txt`; see leaveOneOut for the split. */
export async function loadAmazonBeauty(dataDir: string): Promise<LeaveOneOutDataset> {
  const file = join(dataDir, BEAUTY_DIR, 'beauty.txt');
  const rows = await readIdLines(file, 2);
  const users: string[][] = [];
  let current = '';
  rows.forEach(([user, item], i) => {
    if (user !== current) {
      // Grouped by user: a user id that comes back later would merge two histories silently.
      if (users.length && Number(user) <= Number(current)) {
        throw new HearthError('HEARTH_E_DATASET', `${file}:${i + 1} users must ascend`);
      }
      current = user!;
      users.push([]);
    }
    users[users.length - 1]!.push(item!);
  });
  users.forEach((s, u) => {
    if (s.length < 3) {
      throw new HearthError('HEARTH_E_DATASET', `${file}: user #${u + 1} has < 3 items`);
    }
  });
  return leaveOneOut('amazon-beauty', users);
}

/**
 * Splits user sequences (external ids, time order, each >= 3 long) leave-one-out. The catalogue is
 * every item of any sequence, indexed 1..N-1 by descending training (S[:-2]) count, ties by numeric
 * id, like datasetFromSessions; items seen only as validation or test targets come last with count 0
 * and still get ranked, as full ranking requires.
 */
export function leaveOneOut(
  name: string,
  users: readonly (readonly string[])[],
): LeaveOneOutDataset {
  const counts = new Map<string, number>();
  for (const s of users) for (const id of s) if (!counts.has(id)) counts.set(id, 0);
  for (const s of users) for (const id of s.slice(0, -2)) counts.set(id, counts.get(id)! + 1);
  const ordered = [...counts.keys()].sort(
    (a, b) =>
      counts.get(b)! - counts.get(a)! || a.length - b.length || (a < b ? -1 : a > b ? 1 : 0),
  );
  const index = new Map(ordered.map((id, i) => [id, i + 1]));
  const mapped = users.map((s) => s.map((id) => index.get(id)!));
  const data: SessionDataset = {
    name,
    itemIds: ['', ...ordered],
    train: mapped.map((s) => s.slice(0, -2)),
    test: [],
    popularity: [0, ...ordered.map((id) => counts.get(id)!)],
  };
  return {
    data,
    test: mapped.map((s) => ({ prefix: s.slice(0, -1), target: s[s.length - 1]! })),
    validation: mapped.map((s) => ({ prefix: s.slice(0, -2), target: s[s.length - 2]! })),
  };
}
