import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { evaluatePopularity, prefixPairs } from '../model/metrics.js';
import { syntheticDataset } from './data/synthetic.js';
import { loadModel } from './model-io.js';
import { loadDataset, newestShare, splitValidation, trainAndExport } from './train.js';

describe('trainAndExport on the synthetic log', () => {
  it('learns the planted order far better than popularity, and exports a loadable model', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'hearth-train-')), 'model');
    const result = await trainAndExport({ dataset: 'synthetic', out, quiet: true });
    expect(result.dir).toBe(out);
    expect(result.model.hr[5]).toBeGreaterThan(result.pop.hr[5]! + 0.4);
    expect(result.mrr20).toBeGreaterThan(3 * result.pop.mrr[20]!);
    const { manifest, model } = await loadModel(out);
    expect(manifest.itemIds[1]).toMatch(/^p-\d{3}$/);
    expect(manifest.training?.dataset).toBe('synthetic');
    // Cold start's recency list: real item indices, each once, from the newest training sessions.
    const recent = manifest.recent ?? [];
    expect(recent.length).toBeGreaterThan(0);
    expect(new Set(recent).size).toBe(recent.length);
    for (const i of recent) expect(i >= 1 && i < manifest.dims.items).toBe(true);
    model.dispose();
  });
});

describe('the recency stage', () => {
  it('trains further on the newest sessions, validation split included, and records it', async () => {
    const base = await mkdtemp(join(tmpdir(), 'hearth-train-'));
    const common = { dataset: 'synthetic', quiet: true, epochs: 1, valFraction: 0.1 } as const;
    await trainAndExport({ ...common, out: join(base, 'plain') });
    await trainAndExport({
      ...common,
      out: join(base, 'recent'),
      recentFraction: 0.25,
      recentEpochs: 1,
      recentLr: 0.01,
    });
    const plain = await loadModel(join(base, 'plain'));
    const recent = await loadModel(join(base, 'recent'));
    const sessions = syntheticDataset().train.length;
    expect(plain.manifest.training?.recentSessions).toBe(0);
    expect(recent.manifest.training?.recentSessions).toBe(Math.round(sessions * 0.25));
    expect(recent.manifest.training?.recentEpochs).toBe(1);
    // Same seed, same main epoch: only the stage makes the weights differ.
    const a = plain.model.toFlat();
    const b = recent.model.toFlat();
    expect(b.some((v, i) => v !== a[i])).toBe(true);
    plain.model.dispose();
    recent.model.dispose();
  });

  it('takes the newest share of the sessions in file order', () => {
    const sessions = Array.from({ length: 20 }, (_, i) => [i + 1]);
    expect(newestShare(sessions, 0.1)).toEqual([[19], [20]]);
    expect(newestShare(sessions, 0)).toEqual([]);
    expect(newestShare(sessions, 1)).toEqual(sessions);
  });
});

describe('syntheticDataset', () => {
  it('is seeded and has a weak popularity baseline', () => {
    const a = syntheticDataset({ seed: 3 });
    expect(syntheticDataset({ seed: 3 })).toEqual(a);
    expect(syntheticDataset({ seed: 4 }).train).not.toEqual(a.train);
    expect(a.itemIds).toHaveLength(121);
    const pop = evaluatePopularity(a.popularity, prefixPairs(a.test), [5]);
    expect(pop.hr[5]).toBeLessThan(0.3);
  });
});

describe('splitValidation', () => {
  it('holds out the latest sessions (file order = time order), never reordering', () => {
    const train = Array.from({ length: 20 }, (_, i) => [i + 1, i + 2]);
    const { fit, validation } = splitValidation(train, 0.1);
    expect(fit).toEqual(train.slice(0, 18));
    expect(validation).toEqual(train.slice(18));
    expect(splitValidation(train, 0).validation).toEqual([]);
    expect(splitValidation(train, 0).fit).toEqual(train);
  });
});

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
