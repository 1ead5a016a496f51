import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prefixPairs } from '../../model/metrics.js';
import { DIGINETICA_DIR, loadDiginetica } from './diginetica.js';

async function dataDir(train: string, test: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-digi-'));
  await mkdir(join(dir, DIGINETICA_DIR));
  await writeFile(join(dir, DIGINETICA_DIR, 'train_sessions.txt'), train);
  await writeFile(join(dir, DIGINETICA_DIR, 'test_sessions.txt'), test);
  return dir;
}

describe('Diginetica loader', () => {
  it('maps ids by training popularity and expands test sessions into prefix pairs', async () => {
    const data = await loadDiginetica(await dataDir('7 3\n3 9 3\n9 7 3\n', '9 3 7\n3 3'));
    // 3: 4 clicks, 7 and 9: 2 each (numeric id breaks the tie).
    expect(data.itemIds).toEqual(['', '3', '7', '9']);
    expect(data.popularity).toEqual([0, 4, 2, 2]);
    expect(data.train).toEqual([
      [2, 1],
      [1, 3, 1],
      [3, 2, 1],
    ]);
    expect(prefixPairs(data.test)).toEqual([
      { prefix: [3], target: 1 },
      { prefix: [3, 1], target: 2 },
      { prefix: [1], target: 1 },
    ]);
  });

  it.each([
    ['a non-numeric id', '1 2\n1 x\n', 'train_sessions.txt:2 id "x"'],
    ['a double space', '1  2\n', 'train_sessions.txt:1 id ""'],
    ['an id of 0', '0 2\n', 'train_sessions.txt:1 id "0"'],
    ['an empty line inside', '1 2\n\n1 2\n', 'train_sessions.txt:2 empty line'],
    ['a one-click session', '1 2\n3\n', 'train_sessions.txt:2 a session needs'],
    ['an empty file', '', 'train_sessions.txt: no data lines'],
  ])('rejects %s with HEARTH_E_DATASET naming file:line', async (_, train, where) => {
    const dir = await dataDir(train, '1 2\n');
    const error = await loadDiginetica(dir).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'HEARTH_E_DATASET' });
    expect((error as Error).message).toContain(join(dir, DIGINETICA_DIR, where));
  });

  it('validates the test file too, and a missing folder', async () => {
    const dir = await dataDir('1 2\n', '1 2\n2 y\n');
    await expect(loadDiginetica(dir)).rejects.toThrow(/test_sessions\.txt:2 id "y"/);
    const empty = await mkdtemp(join(tmpdir(), 'hearth-digi-'));
    await expect(loadDiginetica(empty)).rejects.toMatchObject({ code: 'HEARTH_E_DATASET' });
  });
});
