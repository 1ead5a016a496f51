import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { datasetFromSessions, loadYoochoose, readClickFile, YOOCHOOSE_DIR } from './yoochoose.js';

async function tempFile(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-yc-'));
  const file = join(dir, 'clicks.txt');
  await writeFile(file, text);
  return file;
}

const header = 'SessionId\tItemId\tTime\n';

describe('YOOCHOOSE loader', () => {
  it('groups clicks by session in time order', async () => {
    const file = await tempFile(`${header}1\t10\t5.5\n1\t11\t2.0\n2\t10\t1\n1\t12\t9\n2\t13\t1\n`);
    expect(await readClickFile(file)).toEqual([
      ['11', '10', '12'],
      ['10', '13'], // equal times keep file order
    ]);
  });

  it.each([
    ['a bad header', 'Session\tItem\tTime\n1\t2\t3\n', ':1 header'],
    ['a missing field', `${header}1\t2\t3\n4\t5\n`, ':3 expected 3'],
    ['a non-numeric item', `${header}1\tx\t3\n`, ':2 ItemId'],
    ['a bad time', `${header}1\t2\tsoon\n`, ':2 Time'],
    ['an empty line inside', `${header}1\t2\t3\n\n1\t2\t4\n`, ':3 expected 3'],
  ])('rejects %s with HEARTH_E_DATASET naming file:line', async (_, text, where) => {
    const file = await tempFile(text);
    const error = await readClickFile(file).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'HEARTH_E_DATASET' });
    expect((error as Error).message).toContain(`${file}${where}`);
  });

  it('rejects a missing dataset folder with HEARTH_E_DATASET', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-yc-'));
    await expect(loadYoochoose(dir)).rejects.toMatchObject({ code: 'HEARTH_E_DATASET' });
  });

  it('maps ids by popularity and filters test sessions', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-yc-'));
    await mkdir(join(dir, YOOCHOOSE_DIR));
    const train = `${header}1\t7\t1\n1\t5\t2\n2\t5\t1\n2\t9\t2\n3\t9\t1\n3\t5\t2\n3\t20\t3\n`;
    const test = `${header}8\t5\t1\n8\t99\t2\n9\t9\t1\n9\t99\t2\n9\t7\t3\n`;
    await writeFile(join(dir, YOOCHOOSE_DIR, 'yoochoose-clicks-100k_train_full.txt'), train);
    await writeFile(join(dir, YOOCHOOSE_DIR, 'yoochoose-clicks-100k_test.txt'), test);
    const data = await loadYoochoose(dir);
    // 5 (3 clicks), 9 (2), then ties 7 and 20 by numeric id.
    expect(data.itemIds).toEqual(['', '5', '9', '7', '20']);
    expect(data.popularity).toEqual([0, 3, 2, 1, 1]);
    expect(data.train).toEqual([
      [3, 1],
      [1, 2],
      [2, 1, 4],
    ]);
    // Session 8 loses unseen item 99 and is left with one item: dropped.
    expect(data.test).toEqual([[2, 3]]);
  });

  it('breaks popularity ties by id for non-numeric ids too', () => {
    const data = datasetFromSessions('x', [['b', 'a', 'c', 'a']], []);
    expect(data.itemIds).toEqual(['', 'a', 'b', 'c']);
  });
});
