import { describe, expect, it } from 'vitest';
import type { StoredInteraction } from '../protocol/api.js';
import { SESSION_GAP_MS, sessionFor, toTrainingSessions } from './sessions.js';

const row = (id: number, item: string, ts: number, session: number): StoredInteraction => ({
  id,
  item,
  type: id % 2 ? 'click' : 'purchase',
  ts,
  session,
});

describe('sessions', () => {
  it('starts a new session after 30 minutes of inactivity, or when the clock goes back', () => {
    const prev = row(1, 'a', 1_000_000, 999_000);
    expect(sessionFor(1_000_000 + SESSION_GAP_MS - 1, prev)).toBe(999_000);
    expect(sessionFor(1_000_000 + SESSION_GAP_MS, prev)).toBe(1_000_000 + SESSION_GAP_MS);
    expect(sessionFor(500, prev)).toBe(500);
    expect(sessionFor(42, undefined)).toBe(42);
  });

  it('groups rows into time-ordered sessions of known items with type weights', () => {
    const index = new Map([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
    const rows = [
      row(3, 'c', 30, 10),
      row(1, 'a', 10, 10),
      row(2, 'zzz', 20, 10), // unknown to the model: dropped
      row(4, 'b', 40, 10),
      row(5, 'a', 100, 100), // a one-item session holds no next-item example
    ];
    expect(toTrainingSessions(rows, index)).toEqual([{ items: [1, 3, 2], weights: [0.5, 0.5, 1] }]);
  });
});
