import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../prng.js';
import {
  isRotationBlock,
  MAX_ROTATION_BLOCK,
  rotate,
  rotatedCoordinateBound,
  rotatedLength,
  rotationBlock,
  rotationSigns,
  unrotate,
} from './rotation.js';

const SEED = Uint8Array.from({ length: 32 }, (_, i) => i * 7);

function norm(values: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i]! ** 2;
  return Math.sqrt(total);
}

describe('rotation', () => {
  it('pads to whole blocks of the next power of two, at most 2^14', () => {
    expect(rotationBlock(1)).toBe(1);
    expect(rotationBlock(5)).toBe(8);
    expect(rotationBlock(4096)).toBe(4096);
    expect(rotationBlock(240_212)).toBe(MAX_ROTATION_BLOCK);
    expect(rotatedLength(240_212, MAX_ROTATION_BLOCK)).toBe(245_760);
    expect(rotatedLength(5, 8)).toBe(8);
    expect(isRotationBlock(3)).toBe(false);
    expect(isRotationBlock(2 ** 15)).toBe(false);
    expect(isRotationBlock(1024)).toBe(true);
  });

  it('draws the same signs from the same seed, other signs from another', () => {
    const a = rotationSigns(SEED, 1000);
    expect(Array.from(rotationSigns(SEED, 1000))).toEqual(Array.from(a));
    const other = rotationSigns(
      Uint8Array.from(SEED, (b) => b ^ 1),
      1000,
    );
    const same = a.filter((s, i) => s === other[i]).length;
    expect(same).toBeGreaterThan(400);
    expect(same).toBeLessThan(600);
    const plus = a.filter((s) => s === 1).length;
    expect(plus).toBeGreaterThan(430);
    expect(plus).toBeLessThan(570);
  });

  it('keeps the norm and is undone exactly', () => {
    const random = mulberry32(3);
    const values = Array.from({ length: 3000 }, () => random() - 0.5);
    const block = rotationBlock(values.length);
    const signs = rotationSigns(SEED, rotatedLength(values.length, block));
    const rotated = rotate(values, signs, block);
    expect(rotated.length).toBe(4096);
    expect(norm(rotated)).toBeCloseTo(norm(values), 9);
    const back = unrotate(rotated, signs, block, values.length);
    for (let i = 0; i < values.length; i++) expect(back[i]).toBeCloseTo(values[i]!, 12);
    // Blocks smaller than the vector: each is rotated on its own.
    const small = rotate(values, rotationSigns(SEED, rotatedLength(3000, 256)), 256);
    expect(small.length).toBe(3072);
    const smallBack = unrotate(small, rotationSigns(SEED, 3072), 256, 3000);
    for (let i = 0; i < values.length; i++) expect(smallBack[i]).toBeCloseTo(values[i]!, 12);
  });

  it('spreads a vector whose norm sits on one coordinate over its block', () => {
    const values = new Float64Array(20_000);
    values[17] = 1;
    values[19_000] = 1e-3;
    const block = rotationBlock(values.length);
    const rotated = rotate(values, rotationSigns(SEED, rotatedLength(values.length, block)), block);
    // The spike's block: every coordinate is +-1 / sqrt(B), within the clamp for a norm of 1.
    let largest = 0;
    for (let i = 0; i < block; i++) largest = Math.max(largest, Math.abs(rotated[i]!));
    expect(largest).toBeCloseTo(1 / Math.sqrt(block), 9);
    expect(largest).toBeLessThan(rotatedCoordinateBound(1, block));
  });

  it('puts a random unit vector within the clamp at every coordinate', () => {
    const random = mulberry32(8);
    const values = Array.from({ length: 40_000 }, () => random() - 0.5);
    const scale = 1 / norm(values);
    const unit = values.map((v) => v * scale);
    const block = rotationBlock(unit.length);
    const rotated = rotate(unit, rotationSigns(SEED, rotatedLength(unit.length, block)), block);
    let largest = 0;
    for (const v of rotated) largest = Math.max(largest, Math.abs(v));
    expect(largest).toBeLessThan(rotatedCoordinateBound(1, block));
  });

  it('refuses blocks that are not powers of two and mismatched lengths', () => {
    expect(() => rotatedLength(10, 3)).toThrow(/power of two/);
    expect(() => rotate([1, 2, 3], rotationSigns(SEED, 8), 4)).toThrow(/signs/);
    expect(() => unrotate(new Float64Array(8), rotationSigns(SEED, 8), 4, 9)).toThrow(/hold/);
  });
});
