import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { parameterCount, splitFlat, tensorLayout } from '../protocol/manifest.js';
import { referenceScores } from './reference-forward.js';
import { SessionModel } from './session-model.js';

const dims = { items: 12, embedding: 4, hidden: 6, maxSessionLength: 4 };

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

describe('SessionModel', () => {
  it('scores [B, N] with the padding column at -Infinity', async () => {
    const model = SessionModel.random(dims, 1);
    const scores = model.scoreNext([[1], [2, 3, 4], [5, 6]]);
    expect(scores.shape).toEqual([3, dims.items]);
    const rows = (await scores.array()) as number[][];
    for (const row of rows) {
      expect(row[0]).toBe(-Infinity);
      expect(row.slice(1).every(Number.isFinite)).toBe(true);
    }
    scores.dispose();
    model.dispose();
  });

  it('matches the plain-JS float64 reference forward pass (layout, gate order i, f, g, o)', async () => {
    // Random biases too, so every tensor of the layout influences the scores.
    const flat = SessionModel.random(dims, 11)
      .toFlat()
      .map((v, i) => v + 0.1 * Math.sin(i));
    const model = SessionModel.fromFlat(dims, flat);
    const sessions = [[3], [1, 2, 3, 4, 5, 6]];
    const rows = (await model.scoreNext(sessions).array()) as number[][];
    sessions.forEach((session, b) => {
      const expected = referenceScores(dims, flat, session);
      for (let i = 1; i < dims.items; i++) expect(rows[b]![i]).toBeCloseTo(expected[i]!, 4);
    });
    model.dispose();
  });

  it('scores a padded batch exactly like each session alone', async () => {
    const model = SessionModel.random(dims, 2);
    const sessions = [[3], [1, 2, 3], [7, 8]];
    const batch = (await model.scoreNext(sessions).array()) as number[][];
    for (const [b, session] of sessions.entries()) {
      const alone = (await model.scoreNext([session]).array()) as number[][];
      expect(batch[b]![5]).toBeCloseTo(alone[0]![5]!, 5);
      expect(batch[b]![11]).toBeCloseTo(alone[0]![11]!, 5);
    }
    model.dispose();
  });

  it('cuts sessions to their last maxSessionLength items', async () => {
    const model = SessionModel.random(dims, 3);
    const long = (await model.scoreNext([[9, 8, 1, 2, 3, 4]]).data()) as Float32Array;
    const tail = (await model.scoreNext([[1, 2, 3, 4]]).data()) as Float32Array;
    expect(Array.from(long)).toEqual(Array.from(tail));
    model.dispose();
  });

  it('topK never returns padding or excluded items, best first', async () => {
    const model = SessionModel.random(dims, 4);
    const all = await model.topK([1, 2], dims.items + 5);
    expect(all.items).toHaveLength(dims.items - 1);
    expect(all.items).not.toContain(0);
    expect([...all.scores].sort((a, b) => b - a)).toEqual(all.scores);
    const exclude = new Set(all.items.slice(0, 3));
    const top = await model.topK([1, 2], 5, exclude);
    expect(top.items).toHaveLength(5);
    expect(top.items).toEqual(all.items.slice(3, 8));
    for (const item of top.items) expect(exclude.has(item)).toBe(false);
    expect(await model.topK([], 5)).toEqual({ items: [], scores: [] });
    model.dispose();
  });

  it('rejects indices outside 1..N-1', () => {
    const model = SessionModel.random(dims, 5);
    expect(() => model.scoreNext([[0]])).toThrow(RangeError);
    expect(() => model.scoreNext([[dims.items]])).toThrow(RangeError);
    expect(() => model.scoreNext([[]])).toThrow(RangeError);
    model.dispose();
  });

  it('round-trips through toFlat / fromFlat, and checks the length', async () => {
    const model = SessionModel.random(dims, 6);
    const flat = model.toFlat();
    expect(flat.length).toBe(parameterCount(tensorLayout(dims)));
    const copy = SessionModel.fromFlat(dims, flat);
    expect(Array.from(copy.toFlat())).toEqual(Array.from(flat));
    expect(await copy.topK([4, 5], 5)).toEqual(await model.topK([4, 5], 5));
    flat[0] = 123; // fromFlat copied: the caller's array is not aliased
    expect(copy.toFlat()[0]).not.toBe(123);
    expect(() => SessionModel.fromFlat(dims, new Float32Array(3))).toThrow(
      expect.objectContaining({ code: 'HEARTH_E_MODEL_INVALID' }),
    );
    const other = SessionModel.random(dims, 7);
    other.setFromFlat(model.toFlat());
    expect(Array.from(other.toFlat())).toEqual(Array.from(model.toFlat()));
    model.dispose();
    copy.dispose();
    other.dispose();
  });

  it('is seeded: same seed same weights, other seed other weights', () => {
    const a = SessionModel.random(dims, 42).toFlat();
    const b = SessionModel.random(dims, 42).toFlat();
    const c = SessionModel.random(dims, 43).toFlat();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    // Padding row zero, forget-gate bias 1 and the other gate biases 0 (gates i, f, g, o).
    const parts = splitFlat(a, tensorLayout(dims));
    expect(Array.from(parts.get('item_embedding')!.subarray(0, dims.embedding))).toEqual([
      0, 0, 0, 0,
    ]);
    const h = dims.hidden;
    const bias = Array.from(parts.get('lstm_bias')!);
    expect(bias).toEqual([...Array(h).fill(0), ...Array(h).fill(1), ...Array(2 * h).fill(0)]);
  });

  it('frees its tensors on dispose', () => {
    const before = tf.memory().numTensors;
    const model = SessionModel.random(dims, 8);
    model.scoreNext([[1, 2]]).dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
