/**
 * A seed model directory for the server benches: deterministic small weights of `dims`, item ids
 * `item1`…, and federation parameters the server's own flags override.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { manifestFor, parameterCount, tensorLayout, type ModelDims } from '../protocol/manifest.js';

/** Writes manifest.json and weights.bin of a `dims` model into `dir` (which must exist). */
export async function writeSeedModel(
  dir: string,
  dims: ModelDims,
  minCohort: number,
): Promise<void> {
  const count = parameterCount(tensorLayout(dims));
  const weights = Float32Array.from({ length: count }, (_, i) => Math.sin(i) * 0.05);
  const manifest = manifestFor(dims, {
    createdAt: new Date().toISOString(),
    itemIds: Array.from({ length: dims.items }, (_, i) => (i === 0 ? '' : `item${i}`)),
    popular: [1, 2, 3],
    federation: { clipNorm: 1, minCohort, maxExamples: 1000 },
  });
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  await writeFile(join(dir, 'weights.bin'), new Uint8Array(weights.buffer));
}
