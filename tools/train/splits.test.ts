import { describe, expect, it } from 'vitest';
import { newestShare, splitValidation } from './splits.js';

describe('the recency stage', () => {
  it('takes the newest share of the sessions in file order', () => {
    const sessions = Array.from({ length: 20 }, (_, i) => [i + 1]);
    expect(newestShare(sessions, 0.1)).toEqual([[19], [20]]);
    expect(newestShare(sessions, 0)).toEqual([]);
    expect(newestShare(sessions, 1)).toEqual(sessions);
  });
});

describe('splitValidation', () => {
  it('holds out the latest sessions (file order = time order), never reordering', () => {
    const train = Array.from({ length: 20 }, (_, i) => [i + 1, i + 2]);
    const { fit, validation } = splitValidation(train, 0.1);
    expect(fit).toEqual(train.slice(0, 18));
    expect(validation).toEqual(train.slice(18));
    expect(splitValidation(train, 0).validation).toEqual([]);
    expect(splitValidation(train, 0).fit).toEqual(train);
  });
});
