import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { syntheticDataset } from '../data/synthetic.js';
import { loadModel } from '../model-io.js';
import { trainAndExport } from './train-and-export.js';

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
});
