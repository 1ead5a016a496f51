import { describe, expect, it } from 'vitest';
import { booleanFlag, oneOf, optionalNumber, positiveInteger, positiveNumber } from './args.js';

describe('flag checks', () => {
  it('leave an absent flag undefined', () => {
    expect(optionalNumber(undefined)).toBeUndefined();
    expect(positiveNumber('lr', undefined)).toBeUndefined();
    expect(positiveInteger('epochs', undefined)).toBeUndefined();
    expect(booleanFlag('logq', undefined)).toBeUndefined();
    expect(oneOf('loss', undefined, ['auto', 'full'])).toBeUndefined();
  });

  it('convert fitting values', () => {
    expect(optionalNumber('0')).toBe(0);
    expect(optionalNumber('-1')).toBe(-1);
    expect(positiveNumber('lr', '0.01')).toBe(0.01);
    expect(positiveInteger('epochs', '6')).toBe(6);
    expect(booleanFlag('logq', 'true')).toBe(true);
    expect(booleanFlag('logq', 'false')).toBe(false);
    expect(oneOf('backend', 'cpu', ['wasm', 'cpu'])).toBe('cpu');
  });

  it('refuse the rest with a message that names the flag', () => {
    for (const text of ['0', '-2', 'abc', 'Infinity', '']) {
      expect(() => positiveNumber('lr', text)).toThrow('--lr must be a positive number');
    }
    for (const text of ['0', '-2', '1.5', 'abc', '']) {
      expect(() => positiveInteger('limit', text)).toThrow('--limit must be a positive integer');
    }
    expect(() => booleanFlag('logq', 'yes')).toThrow('--logq true|false');
    expect(() => oneOf('backend', 'gpu', ['wasm', 'cpu'])).toThrow('--backend wasm|cpu');
  });
});
