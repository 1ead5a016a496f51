import { describe, expect, it } from 'vitest';
import { parseManifest } from '../protocol/manifest.js';
import { coldStartVersion, newestFirst } from './cold-start.js';
import { resolveConfig } from './config.js';

const items = [
  { id: 'old', title: 'Old', url: '/old', published: '2026-01-01T00:00:00.000Z' },
  { id: 'undated', title: 'Undated', url: '/undated' },
  { id: 'new', title: 'New', url: '/new', published: '2026-12-01T00:00:00.000Z' },
  { id: 'mid', title: 'Mid', url: '/mid', published: '2026-06-01T00:00:00.000Z' },
];

describe('coldStartVersion', () => {
  it('orders rows newest first, undated last in catalogue order', () => {
    expect(newestFirst(items)).toEqual([3, 4, 1, 2]);
  });

  it('publishes version 1 over exactly the catalogue, with the recency order and valid weights', () => {
    const config = resolveConfig({ dbPath: ':memory:' });
    const { manifest, weights } = coldStartVersion(items, config, new Date(0));
    expect(parseManifest(manifest)).toEqual(manifest);
    expect(manifest.version).toBe(1);
    expect(manifest.itemIds).toEqual(['', 'old', 'undated', 'new', 'mid']);
    expect(manifest.recent).toEqual([3, 4, 1, 2]);
    expect(manifest.popular).toEqual([]);
    expect(manifest.dims.items).toBe(5);
    expect(manifest.training).toEqual({ source: 'catalogue', items: 4 });
    expect(manifest.federation.clipNorm).toBe(config.clipNorm);
    expect(weights.length * 4).toBe(manifest.weights.byteLength);
    expect(weights.every(Number.isFinite)).toBe(true);
    // The same catalogue starts the same model.
    expect(coldStartVersion(items, config, new Date(0)).weights).toEqual(weights);
  });
});
