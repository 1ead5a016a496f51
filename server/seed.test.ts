import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeFloat16, encodeFloat16 } from '../protocol/float16.js';
import { resolveConfig } from './config.js';
import { loadSeedModel } from './seed.js';
import { PARAMS, seedWeights, writeSeedDir } from './test-helpers.js';

const config = resolveConfig({ dbPath: ':memory:', clipNorm: 2, minCohort: 4 });

describe('seeding', () => {
  it('imports the seed as version 1 with the config federation params', async () => {
    const seed = await writeSeedDir();
    try {
      const { manifest, weights } = await loadSeedModel(seed.dir, config);
      expect(manifest.version).toBe(1);
      // q published is the q the accountant uses: the server's config.
      expect(manifest.federation).toEqual({
        clipNorm: 2,
        minCohort: 4,
        maxExamples: 1000,
        sampleRate: config.sampleRate,
        maxStaleness: config.maxStaleness,
        noiseMultiplier: config.noiseMultiplier,
        delta: config.delta,
        // Secure aggregation is the default: devices take part in secure rounds.
        aggregation: 'secure',
      });
      expect(manifest.weights).toEqual({
        url: '/v1/model/1/weights',
        dtype: 'float32',
        byteLength: PARAMS * 4,
      });
      expect(manifest.training).toEqual({ run: 'test' });
      expect(Array.from(weights)).toEqual(Array.from(seedWeights()));
    } finally {
      await seed.cleanup();
    }
  });

  it('decodes a float16 seed to float32', async () => {
    const seed = await writeSeedDir('float16');
    try {
      const { manifest, weights } = await loadSeedModel(seed.dir, config);
      expect(manifest.weights.dtype).toBe('float32');
      expect(Array.from(weights)).toEqual(Array.from(decodeFloat16(encodeFloat16(seedWeights()))));
    } finally {
      await seed.cleanup();
    }
  });

  it('rejects a weights file of the wrong size and non-finite weights', async () => {
    const seed = await writeSeedDir();
    try {
      await writeFile(join(seed.dir, 'weights.bin'), new Uint8Array(PARAMS * 4 - 4));
      await expect(loadSeedModel(seed.dir, config)).rejects.toThrow(/has 252 bytes/);
    } finally {
      await seed.cleanup();
    }
    const bad = seedWeights();
    bad[3] = NaN;
    const nan = await writeSeedDir('float32', bad);
    try {
      await expect(loadSeedModel(nan.dir, config)).rejects.toThrow(/NaN/);
    } finally {
      await nan.cleanup();
    }
  });

  it('rejects a missing or invalid manifest', async () => {
    const seed = await writeSeedDir();
    try {
      await writeFile(join(seed.dir, 'manifest.json'), JSON.stringify({ format: 'other' }));
      await expect(loadSeedModel(seed.dir, config)).rejects.toThrow(/bad field format/);
      await expect(loadSeedModel(join(seed.dir, 'missing'), config)).rejects.toThrow(/cannot read/);
    } finally {
      await seed.cleanup();
    }
  });
});
