/**
 * The round's shared negatives: uniform by default; drawn by the global model's item bias with
 * alpha > 0, each kept row carrying its inclusion probability, whose log the logits subtract.
 */
import { describe, expect, it } from 'vitest';
import type { ModelDims } from '../protocol/manifest.js';
import { packDevices, roundNegatives, sampleNegatives } from './device-batch.js';
import { initialWeights } from './init.js';

const dims: ModelDims = { items: 30, embedding: 2, hidden: 2, maxSessionLength: 5 };

/** Initial weights whose item bias rises with the row: row r has bias r / 10. */
function biased(): Float32Array {
  const w = initialWeights(dims, 1);
  const at = dims.items * dims.embedding;
  for (let r = 0; r < dims.items; r++) w[at + r] = r / 10;
  return w;
}

describe('sampleNegatives', () => {
  it('is the uniform draw, with no correction, at alpha 0', () => {
    const drawn = sampleNegatives(dims, biased(), 6, 9, 0);
    expect(Array.from(drawn.rows)).toEqual(Array.from(roundNegatives(dims.items, 6, 9)));
    expect(drawn.logInclusion).toBeNull();
  });

  it('includes each row as often as its stated inclusion probability (binomial bounds)', () => {
    const w = biased();
    const K = 5;
    const runs = 4000;
    const seen = new Float64Array(dims.items);
    const pi = new Float64Array(dims.items);
    for (let seed = 1; seed <= runs; seed++) {
      const { rows, logInclusion } = sampleNegatives(dims, w, K, seed, 1);
      rows.forEach((r, k) => {
        seen[r]! += 1;
        pi[r] = Math.exp(logInclusion![k]!);
      });
    }
    // Popular rows are drawn far more often than unpopular ones.
    expect(seen[29]!).toBeGreaterThan(5 * seen[2]!);
    for (let r = 1; r < dims.items; r++) {
      if (pi[r] === 0) continue; // never drawn: its probability is below 1 / runs
      const sd = Math.sqrt((pi[r]! * (1 - pi[r]!)) / runs);
      expect(Math.abs(seen[r]! / runs - pi[r]!), `row ${r}`).toBeLessThan(5 * sd + 1e-9);
    }
  });

  it("puts minus the log inclusion on each negative slot, nothing on the device's own items", () => {
    const { rows, logInclusion } = sampleNegatives(dims, biased(), 8, 3, 1);
    const own = rows[0]!; // the device saw one of the negatives: its own slot stands for it
    const p = packDevices(dims, [[{ items: [own, 1] }]], rows, { kind: 'full' }, logInclusion);
    const L = p.ownSlots;
    for (let slot = 0; slot < L; slot++) expect(p.offset[slot]).toBe(0);
    rows.forEach((row, k) => {
      const expected = row === own ? 0 : -logInclusion![k]!;
      expect(p.offset[L + k], `negative ${row}`).toBeCloseTo(expected, 6);
      expect(p.valid[L + k]).toBe(row === own ? 0 : 1);
    });
  });
});
