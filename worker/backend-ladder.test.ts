import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { chooseBackend, pickRung } from './backend-ladder.js';
import { backendFingerprint, readBackendChoice } from './backend-cache.js';
import type { EngineConfig } from '../protocol/api.js';

const rung = (backend: string, ms: number) => ({ backend, ms });

describe('backend decision rule', () => {
  it('keeps the first correct rung unless another is at least 1.5x faster', () => {
    expect(pickRung([])).toBeUndefined();
    expect(pickRung([rung('webgpu', 10)])?.backend).toBe('webgpu');
    // 20% faster is noise on a shared machine: ladder order wins.
    expect(pickRung([rung('webgpu', 12), rung('wasm', 10)])?.backend).toBe('webgpu');
    // Software WebGPU against wasm, as measured in bench/browser.ts.
    expect(pickRung([rung('webgpu', 310), rung('webgl', 31), rung('wasm', 12)])?.backend).toBe(
      'wasm',
    );
    expect(pickRung([rung('webgl', 30), rung('wasm', 20)])?.backend).toBe('wasm');
  });
});

describe('backend ladder in Node', () => {
  it('skips what the platform lacks and chooses the rung that passes', async () => {
    const result = await chooseBackend(['webgpu', 'webgl', 'cpu'], { wasmPath: 'unused/' });
    expect(result.chosen).toBe('cpu');
    expect(result.attempts.map((a) => a.outcome)).toEqual(['skipped', 'skipped', 'chosen']);
    expect(result.attempts[2]!.ms).toBeGreaterThan(0);
    expect(tf.getBackend()).toBe('cpu');
  });

  it('uses a cached rung after re-running its self-test, and reports the others untried', async () => {
    const result = await chooseBackend(['webgpu', 'cpu'], { wasmPath: 'unused/', cached: 'cpu' });
    expect(result.chosen).toBe('cpu');
    expect(result.attempts).toMatchObject([
      { backend: 'webgpu', outcome: 'not-tried', detail: 'cached choice' },
      { backend: 'cpu', outcome: 'chosen' },
    ]);
  });

  it('walks the whole ladder when the cached rung is unavailable', async () => {
    const result = await chooseBackend(['webgpu', 'cpu'], {
      wasmPath: 'unused/',
      cached: 'webgpu',
    });
    expect(result.chosen).toBe('cpu');
    expect(result.attempts.map((a) => a.outcome)).toEqual(['skipped', 'chosen']);
  });
});

describe('backend cache', () => {
  const config = { backends: ['webgl', 'wasm'] } as unknown as EngineConfig;
  const key = backendFingerprint(config, null);

  it('returns a stored decision only for the same fingerprint and a known backend', () => {
    expect(readBackendChoice({ fingerprint: key, backend: 'wasm' }, key)).toBe('wasm');
    expect(
      readBackendChoice({ fingerprint: 'tfjs 0.0.1|x', backend: 'wasm' }, key),
    ).toBeUndefined();
    expect(readBackendChoice({ fingerprint: key, backend: 'quantum' }, key)).toBeUndefined();
    expect(readBackendChoice('wasm', key)).toBeUndefined();
    expect(readBackendChoice(null, key)).toBeUndefined();
  });

  it('changes with the tfjs version, the model layout and the configured ladder', () => {
    expect(key).toContain(tf.version_core);
    expect(backendFingerprint({ backends: ['wasm'] } as unknown as EngineConfig, null)).not.toBe(
      key,
    );
  });
});
