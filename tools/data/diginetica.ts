/**
 * Loads Diginetica (CIKM Cup 2016) in SR-GNN preprocessing from the derived text files (see
 * ../shared/data/README.md): one session per line, item ids separated by spaces, train sessions in
 * time order. Every prefix -> next pair of the test sessions is a test case: 60,858 pairs over
 * 43,097 items, the setting of the published SR-GNN / NARM / STAMP numbers.
 */
import { join } from 'node:path';
import { HearthError } from '../../protocol/errors.js';
import { readIdLines } from './item-lines.js';
import { datasetFromSessions, type SessionDataset } from './yoochoose.js';

/** Folder of the dataset under the data directory. */
export const DIGINETICA_DIR = 'diginetica';

/**
 * Reads `<dataDir>/diginetica/{train,test}_sessions.txt` and maps ids to model indices by training
 * popularity (datasetFromSessions), as for YOOCHOOSE, so a model trained on these indices and the
 * baselines rank the same catalogue. A session of one click has no next-item pair and cannot come
 * out of SR-GNN's preprocessing, so it is rejected as a malformed line.
 */
export async function loadDiginetica(dataDir: string): Promise<SessionDataset> {
  const dir = join(dataDir, DIGINETICA_DIR);
  const read = async (name: string) => {
    const file = join(dir, name);
    const sessions = await readIdLines(file);
    sessions.forEach((s, i) => {
      if (s.length < 2) {
        throw new HearthError('HEARTH_E_DATASET', `${file}:${i + 1} a session needs >= 2 clicks`);
      }
    });
    return sessions;
  };
  const train = await read('train_sessions.txt');
  const test = await read('test_sessions.txt');
  return datasetFromSessions('diginetica', train, test);
}
