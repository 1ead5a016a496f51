import { describe, expect, it } from 'vitest';
import { applyLocal, blocksOf, diffLocal, isLocalCopy, withLocal } from './local-copy.js';
import { mulberry32 } from '../protocol/prng.js';

describe('local copy as blocks', () => {
  const global = Float32Array.from({ length: 70 }, (_, i) => i / 7);

  it('stores only the blocks that changed and rebuilds the copy exactly', () => {
    const local = global.slice();
    local[3] = -1; // block 0
    local[17] = 2; // block 1
    local[18] = 3; // block 1 again
    local[69] = 9; // the last block, 6 floats long
    const copy = diffLocal(4, global, local);
    expect(Array.from(copy.blocks)).toEqual([0, 1, 4]);
    expect(copy.values).toHaveLength(48);
    expect(isLocalCopy(copy)).toBe(true);
    expect(applyLocal(global, copy)).toEqual(local);
  });

  it('round-trips random sparse changes and keeps nothing for an unchanged copy', () => {
    const random = mulberry32(3);
    const big = Float32Array.from({ length: 10_000 }, () => random());
    const local = big.slice();
    for (let n = 0; n < 40; n++) local[Math.floor(random() * local.length)]! += 0.5;
    const copy = diffLocal(1, big, local);
    expect(copy.blocks.length).toBeLessThanOrEqual(40);
    expect(applyLocal(big, copy)).toEqual(local);
    expect(diffLocal(1, big, big.slice()).blocks).toHaveLength(0);
    // -0 where there was +0 is a change; NaN staying NaN is not.
    const zeros = new Float32Array([0, NaN]);
    expect(diffLocal(1, zeros, new Float32Array([-0, NaN])).blocks).toHaveLength(1);
    expect(diffLocal(1, zeros, new Float32Array([0, NaN])).blocks).toHaveLength(0);
  });

  it('compares only the candidate blocks when given them', () => {
    const local = global.slice();
    local[20] = 7; // block 1
    local[40] = 7; // block 2, not a candidate
    const into = new Set<number>();
    blocksOf(15, 3, into); // weights 15..17: blocks 0 and 1
    expect([...into]).toEqual([0, 1]);
    const copy = diffLocal(1, global, local, into);
    expect(Array.from(copy.blocks)).toEqual([1]);
    expect(diffLocal(1, global, local, [4, 1, 1, 99]).blocks).toEqual(Int32Array.from([1]));
  });

  it('refuses weights of another length', () => {
    expect(() => diffLocal(1, global, new Float32Array(3))).toThrow(RangeError);
    const copy = diffLocal(1, global, global.slice());
    expect(applyLocal(new Float32Array(10), copy)).toBeNull();
  });

  it('rejects rows read back that it could not apply', () => {
    const good = diffLocal(
      2,
      global,
      Float32Array.from(global, (x) => x + 1),
    );
    expect(isLocalCopy(good)).toBe(true);
    const bad: unknown[] = [
      null,
      'copy',
      { ...good, version: 1.5 },
      { ...good, blockSize: 0 },
      { ...good, blocks: Array.from(good.blocks) },
      { ...good, values: good.values.subarray(1) },
      { ...good, blocks: Int32Array.from([0, 1, 2, 3, 5]) }, // past the last block
      { ...good, blocks: Int32Array.from([1, 0, 2, 3, 4]) }, // not ascending
    ];
    for (const row of bad) expect(isLocalCopy(row)).toBe(false);
  });

  it('joins a copy to the row of its own version only', () => {
    const local = global.slice();
    local[0] = 5;
    const row: { version: number; weights: Float32Array; local?: Float32Array } = {
      version: 2,
      weights: global,
    };
    expect(withLocal(row, diffLocal(2, global, local)).local).toEqual(local);
    expect(withLocal(row, diffLocal(3, global, local))).toBe(row);
    expect(withLocal(row, { garbage: true })).toBe(row);
    expect(
      withLocal({ version: 2, weights: new Float32Array(4) }, diffLocal(2, global, local)),
    ).not.toHaveProperty('local');
  });
});
