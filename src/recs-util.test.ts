import { describe, expect, it } from 'vitest';
import { normalizeCatalog, parseK, rowsFor, safeUrl } from './recs-util.js';

describe('recs-element helpers', () => {
  it('parses k within 1..100, defaulting to 6', () => {
    expect(parseK('4')).toBe(4);
    expect(parseK('100')).toBe(100);
    for (const bad of [null, '', '0', '101', '2.5', 'six']) expect(parseK(bad)).toBe(6);
  });

  it('counts rows for k items in c columns', () => {
    expect(rowsFor(6, 3)).toBe(2);
    expect(rowsFor(7, 3)).toBe(3);
    expect(rowsFor(6, 1)).toBe(6);
    expect(rowsFor(6, Number.NaN)).toBe(6);
    expect(rowsFor(1, 4)).toBe(1);
  });

  it('keeps only string fields of catalogue entries', () => {
    expect(
      normalizeCatalog({ a: { title: 'A', url: 5, image: '/a.png' }, b: null, c: 'x' }),
    ).toEqual({ a: { title: 'A', image: '/a.png' } });
    expect(normalizeCatalog([1, 2])).toEqual({});
    expect(normalizeCatalog(null)).toEqual({});
  });

  it('accepts only http(s) and relative URLs', () => {
    expect(safeUrl('/p/1', 'https://shop.example/x')).toBe('https://shop.example/p/1');
    expect(safeUrl('#item-1', 'https://shop.example/x')).toBe('https://shop.example/x#item-1');
    expect(safeUrl('javascript:alert(1)', 'https://shop.example/')).toBeUndefined();
    expect(safeUrl(undefined, 'https://shop.example/')).toBeUndefined();
  });
});
