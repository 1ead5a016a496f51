import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { SessionModel } from '../model/session-model.js';
import { SessionState } from './session-state.js';

const dims = { items: 30, embedding: 6, hidden: 5, maxSessionLength: 4 };

beforeAll(async () => {
  await tf.setBackend('cpu');
});

async function fullRun(model: SessionModel, session: number[]): Promise<Float32Array> {
  const scores = model.scoreNext([session]);
  const values = (await scores.data()) as Float32Array;
  scores.dispose();
  return values;
}

function expectClose(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  expect(actual[0]).toBe(-Infinity);
  let worst = 0;
  for (let i = 1; i < actual.length; i++)
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst).toBeLessThan(1e-5);
}

describe('incremental session state', () => {
  it.each([
    ['cosine scoring and the last-item skip', { normalize: true, scale: 7, lastItem: true }],
    ['the decayed item mean', { normalize: true, scale: 7, lastItem: false, itemMean: 0.6 }],
    ['the repeat bonus', { normalize: true, scale: 7, lastItem: false, repeat: true }],
  ])('matches a full re-run with %s', async (_, scoring) => {
    const model = SessionModel.random({ ...dims, scoring }, 15);
    if ('repeat' in scoring) {
      // The bonus starts at zero: give every age its own value, as a trained model has.
      const flat = model.toFlat();
      flat.set([3, 1.5, 0.5, 0.25], flat.length - dims.maxSessionLength);
      model.setFromFlat(flat);
    }
    const state = new SessionState();
    const session: number[] = [];
    for (const item of [3, 17, 3, 29, 8, 2]) {
      session.push(item);
      expectClose(await state.scores(model, session), await fullRun(model, session));
    }
    state.dispose();
    model.dispose();
  });

  it('matches a full re-run after every step, one recurrent step per new item', async () => {
    const model = SessionModel.random(dims, 11);
    const state = new SessionState();
    const session: number[] = [];
    for (const item of [3, 17, 3, 29]) {
      session.push(item);
      const before = state.steps;
      expectClose(await state.scores(model, session), await fullRun(model, session));
      expect(state.steps - before).toBe(1);
    }
    // Asking again for the same session costs no step at all.
    await state.scores(model, session);
    expect(state.steps).toBe(4);
    state.dispose();
    model.dispose();
  });

  it('replays the window once the session outgrows maxSessionLength, as scoreNext cuts it', async () => {
    const model = SessionModel.random(dims, 12);
    const state = new SessionState();
    const session = [1, 2, 3, 4];
    await state.scores(model, session);
    session.push(5);
    expectClose(await state.scores(model, session), await fullRun(model, session));
    state.dispose();
    model.dispose();
  });

  it('resets on a new session and rebuilds after a model swap', async () => {
    const first = SessionModel.random(dims, 13);
    const second = SessionModel.random(dims, 14);
    const state = new SessionState();
    await state.scores(first, [4, 5, 6]);
    // A new session that happens to share no prefix: replayed from zero state.
    expectClose(await state.scores(first, [9]), await fullRun(first, [9]));
    await state.scores(first, [9, 10]);
    const steps = state.steps;
    expectClose(await state.scores(second, [9, 10]), await fullRun(second, [9, 10]));
    expect(state.steps - steps).toBe(2);
    state.resetState();
    expectClose(await state.scores(second, [9, 10]), await fullRun(second, [9, 10]));
    await expect(state.scores(second, [0])).rejects.toThrow(RangeError);
    state.dispose();
    first.dispose();
    second.dispose();
  });
});

describe('sessions longer than the window', () => {
  it('costs one batched step per click past maxSessionLength and matches a full re-run', async () => {
    const model = SessionModel.random(
      {
        ...dims,
        scoring: { normalize: true, scale: 7, lastItem: false, itemMean: 0.6, repeat: true },
      },
      16,
    );
    const flat = model.toFlat();
    flat.set([3, 1.5, 0.5, 0.25], flat.length - dims.maxSessionLength);
    model.setFromFlat(flat);
    const state = new SessionState();
    const session: number[] = [];
    for (const item of [5, 9, 5, 21, 7, 7, 13, 2, 9, 28, 4]) {
      session.push(item);
      const before = state.steps;
      expectClose(await state.scores(model, session), await fullRun(model, session));
      expect(state.steps - before).toBe(1);
    }
    state.dispose();
    model.dispose();
  });

  it('follows a caller that keeps only the newest items of its session list', async () => {
    const model = SessionModel.random(dims, 17);
    const state = new SessionState();
    const kept: number[] = [];
    for (const item of [3, 4, 5, 6, 7, 8, 9]) {
      kept.push(item);
      if (kept.length > 5) kept.shift();
      const before = state.steps;
      expectClose(await state.scores(model, kept), await fullRun(model, kept));
      expect(state.steps - before).toBe(1);
    }
    state.dispose();
    model.dispose();
  });

  it('serves a new session that begins with the last item from the states it has', async () => {
    const model = SessionModel.random(dims, 18);
    const state = new SessionState();
    await state.scores(model, [3, 4, 5, 6, 7, 8]);
    const steps = state.steps;
    // [7, 8] is a suffix of what was consumed: its state is one of the rows, no step needed.
    expectClose(await state.scores(model, [7, 8]), await fullRun(model, [7, 8]));
    expect(state.steps).toBe(steps);
    expectClose(await state.scores(model, [11, 12]), await fullRun(model, [11, 12]));
    state.dispose();
    model.dispose();
  });
});
