import { describe, expect, it } from 'vitest';
import { coldStartDims } from '../../model/init.js';
import { DEFAULTS, modelDims } from './defaults.js';

describe('coldStartDims', () => {
  it('is the shape the Diginetica defaults train (what a cold site starts from)', () => {
    expect(coldStartDims(1234)).toEqual(modelDims(1234, DEFAULTS.diginetica));
  });
});
