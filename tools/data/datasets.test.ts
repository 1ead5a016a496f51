import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDataset } from './datasets.js';

describe('loadDataset amazon-beauty', () => {
  it('trains on S[:-2], validates on S[-2] and tests on S[-1] (leave-one-out)', async () => {
    const data = await mkdtemp(join(tmpdir(), 'hearth-beauty-'));
    await mkdir(join(data, 'amazon-beauty'));
    const lines = ['1 10', '1 11', '1 12', '1 13', '1 14', '2 11', '2 10', '2 12', '2 15', '2 16'];
    await writeFile(join(data, 'amazon-beauty', 'beauty.txt'), `${lines.join('\n')}\n`);
    const { data: set, testPairs, validationPairs } = await loadDataset('amazon-beauty', data);
    const id = (external: string) => set.itemIds.indexOf(external);
    expect(set.train).toEqual([['10', '11', '12'].map(id), ['11', '10', '12'].map(id)]);
    expect(validationPairs).toEqual([
      { prefix: set.train[0], target: id('13') },
      { prefix: set.train[1], target: id('15') },
    ]);
    expect(testPairs).toEqual([
      { prefix: ['10', '11', '12', '13'].map(id), target: id('14') },
      { prefix: ['11', '10', '12', '15'].map(id), target: id('16') },
    ]);
  });
});
