import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseManifest, type ModelDims } from '../protocol/manifest.js';
import { SessionModel } from '../model/session-model.js';
import { trainSessions, type TrainCheckpoint, type TrainOptions } from '../model/train.js';
import { exportModel, loadCheckpoint, loadModel, saveCheckpoint } from './model-io.js';
import { initNodeBackend } from './tf-node.js';

const dims: ModelDims = { items: 6, embedding: 3, hidden: 2, maxSessionLength: 5 };
const cosine: ModelDims = { ...dims, scoring: { normalize: true, scale: 5, lastItem: true } };
const itemIds = ['', 'a', 'b', 'c', 'd', 'e'];

beforeAll(async () => {
  await initNodeBackend('cpu');
});

describe('model directory', () => {
  it('round-trips exportModel -> loadModel through parseManifest', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-model-'));
    const model = SessionModel.random(dims, 5);
    const result = await exportModel(dir, model, {
      itemIds,
      popular: [1, 2, 3],
      version: 1,
      training: { dataset: 'unit', hr20: 0.5 },
    });
    const manifest = parseManifest(JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')));
    expect(manifest.format).toBe('hearth-model/1');
    expect(manifest.weights).toEqual({
      url: 'weights.bin',
      dtype: 'float32',
      byteLength: result.weightsBytes,
    });
    expect(manifest.federation).toEqual({ clipNorm: 1, minCohort: 3, maxExamples: 1000 });
    expect((await stat(join(dir, 'weights.f16.bin'))).size).toBe(result.weightsBytes / 2);

    const loaded = await loadModel(dir);
    expect(loaded.manifest).toEqual(manifest);
    expect(Array.from(loaded.model.toFlat())).toEqual(Array.from(model.toFlat()));
    model.dispose();
    loaded.model.dispose();
  });

  it('carries cosine scoring through the manifest: the loaded model scores the same', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-model-'));
    const model = SessionModel.random(cosine, 6);
    await exportModel(dir, model, { itemIds, popular: [1], version: 1 });
    const loaded = await loadModel(dir);
    expect(loaded.manifest.dims.scoring).toEqual(cosine.scoring);
    const want = Array.from(model.scoreNext([[1, 3]]).dataSync());
    expect(Array.from(loaded.model.scoreNext([[1, 3]]).dataSync())).toEqual(want);
    // The same weights under dot-product scoring rank differently: the option is not ignored.
    const dot = SessionModel.fromFlat(dims, model.toFlat());
    expect(Array.from(dot.scoreNext([[1, 3]]).dataSync())).not.toEqual(want);
    model.dispose();
    loaded.model.dispose();
    dot.dispose();
  });

  it('rejects weights whose size does not match the manifest', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-model-'));
    const model = SessionModel.random(dims, 5);
    await exportModel(dir, model, { itemIds, popular: [1], version: 1 });
    model.dispose();
    await writeFile(join(dir, 'weights.bin'), new Uint8Array(8));
    await expect(loadModel(dir)).rejects.toMatchObject({ code: 'HEARTH_E_MODEL_INVALID' });
  });

  it('refuses to export a manifest that would not validate', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-model-'));
    const model = SessionModel.random(dims, 5);
    await expect(
      exportModel(dir, model, { itemIds: ['x'], popular: [], version: 1 }),
    ).rejects.toMatchObject({
      code: 'HEARTH_E_MODEL_INVALID',
    });
    model.dispose();
  });
});

describe('training checkpoints', () => {
  const sessions = Array.from({ length: 24 }, (_, s) => ({
    items: Array.from({ length: 2 + (s % 4) }, (_, t) => ((s + t) % 5) + 1),
  }));
  const options = (extra: Partial<TrainOptions> = {}): TrainOptions => ({
    epochs: 3,
    batchSize: 4,
    learningRate: 0.02,
    seed: 3,
    loss: 'sampled',
    sampled: { negatives: 3 },
    ...extra,
  });

  it.each([
    ['dot-product', dims],
    ['cosine + last-item', cosine],
  ])(
    'round-trips through files and resumes bit-identically on the cpu backend (%s)',
    async (_, d) => {
      const straight = SessionModel.random(d, 4);
      await trainSessions(straight, sessions, options());
      const want = Array.from(straight.toFlat());
      straight.dispose();

      const dir = await mkdtemp(join(tmpdir(), 'hearth-ckpt-'));
      expect(await loadCheckpoint(dir)).toBeNull();
      const first = SessionModel.random(d, 4);
      let last: TrainCheckpoint | null = null;
      await trainSessions(first, sessions, {
        ...options({ maxSteps: 9 }),
        onCheckpoint: async (c) => {
          last = c;
          await saveCheckpoint(dir, d, c, { note: 'unit' });
        },
      });
      first.dispose();
      const loaded = (await loadCheckpoint(dir))!;
      expect(loaded.dims).toEqual(d);
      expect(loaded.extra).toEqual({ note: 'unit' });
      expect(loaded.checkpoint).toEqual(last);

      const resumed = SessionModel.fromFlat(loaded.dims, loaded.checkpoint.weights);
      await trainSessions(resumed, sessions, options({ resume: loaded.checkpoint }));
      expect(Array.from(resumed.toFlat())).toEqual(want);
      resumed.dispose();
    },
  );
});
