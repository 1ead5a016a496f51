import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BEAUTY_DIR, leaveOneOut, loadAmazonBeauty } from './amazon-beauty.js';

async function dataDir(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-beauty-'));
  await mkdir(join(dir, BEAUTY_DIR));
  await writeFile(join(dir, BEAUTY_DIR, 'beauty.txt'), text);
  return dir;
}

describe('Amazon Beauty loader (leave-one-out)', () => {
  it('splits each user into train S[:-2], validation and test, ranking every item', async () => {
    const loo = await loadAmazonBeauty(await dataDir('1 10\n1 11\n1 12\n1 13\n2 11\n2 14\n2 10\n'));
    // Training clicks: 11 twice, 10 once; 12, 13, 14 only as held-out targets (count 0, by id).
    expect(loo.data.itemIds).toEqual(['', '11', '10', '12', '13', '14']);
    expect(loo.data.popularity).toEqual([0, 2, 1, 0, 0, 0]);
    expect(loo.data.train).toEqual([[2, 1], [1]]);
    expect(loo.data.test).toEqual([]);
    expect(loo.test).toEqual([
      { prefix: [2, 1, 3], target: 4 },
      { prefix: [1, 5], target: 2 },
    ]);
    expect(loo.validation).toEqual([
      { prefix: [2, 1], target: 3 },
      { prefix: [1], target: 5 },
    ]);
  });

  it.each([
    ['three fields', '1 10 3\n', 'beauty.txt:1 expected 2'],
    ['a tab separator', '1\t10\n', 'beauty.txt:1 expected 2'],
    ['users out of order', '2 1\n2 2\n2 3\n1 4\n', 'beauty.txt:4 users must ascend'],
    ['a user coming back', '1 1\n2 2\n1 3\n', 'beauty.txt:3 users must ascend'],
    ['a too short user', '1 1\n1 2\n', 'beauty.txt: user #1 has < 3 items'],
  ])('rejects %s with HEARTH_E_DATASET', async (_, text, where) => {
    const dir = await dataDir(text);
    const error = await loadAmazonBeauty(dir).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'HEARTH_E_DATASET' });
    expect((error as Error).message).toContain(join(dir, BEAUTY_DIR, where));
  });

  it('orders equally popular ids numerically', () => {
    const loo = leaveOneOut('x', [['9', '10', '2', '1', '1']]);
    expect(loo.data.itemIds).toEqual(['', '2', '9', '10', '1']);
  });
});
