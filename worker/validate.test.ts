import { describe, expect, it } from 'vitest';
import { thrownCode as code } from '../protocol/testing.js';
import { validateRecommendOptions, validateTrackEvent } from './validate.js';

describe('engine input validation', () => {
  it('accepts good events, normalising numeric ids to strings', () => {
    expect(validateTrackEvent({ type: 'click', item: 'p-1', extra: 'dropped' })).toEqual({
      type: 'click',
      item: 'p-1',
    });
    expect(validateTrackEvent({ type: 'purchase', item: 17 })).toEqual({
      type: 'purchase',
      item: '17',
    });
  });

  it('rejects bad events with HEARTH_E_EVENT_INVALID', () => {
    for (const bad of [
      null,
      'click',
      { type: 'hover', item: 'a' },
      { type: 'click', item: '' },
      { type: 'click', item: 'x'.repeat(201) },
      { type: 'click', item: 1.5 },
      { type: 'click' },
    ]) {
      expect(code(() => validateTrackEvent(bad))).toBe('HEARTH_E_EVENT_INVALID');
    }
  });

  it('fills recommend defaults and rejects bad options with HEARTH_E_ARGUMENT', () => {
    const defaults = { exclude: [], allow: null, explain: false };
    expect(validateRecommendOptions(undefined)).toEqual({ k: 6, ...defaults });
    expect(validateRecommendOptions({ k: 3, exclude: ['a'] })).toEqual({
      ...defaults,
      k: 3,
      exclude: ['a'],
    });
    expect(validateRecommendOptions({ allow: ['b'], explain: true })).toEqual({
      ...defaults,
      k: 6,
      allow: ['b'],
      explain: true,
    });
    for (const bad of [
      { k: 0 },
      { k: 101 },
      { k: 2.5 },
      { exclude: 'a' },
      { exclude: [1] },
      'k',
      { allow: 'a' },
      { allow: [2] },
      { allow: Array.from({ length: 10_001 }, (_, i) => String(i)) },
      { explain: 'yes' },
    ]) {
      expect(code(() => validateRecommendOptions(bad))).toBe('HEARTH_E_ARGUMENT');
    }
  });
});
