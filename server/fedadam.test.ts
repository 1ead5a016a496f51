import { describe, expect, it } from 'vitest';
import { resolveConfig } from './config.js';
import { FEDADAM, fedAdamStep, initialFedAdamState } from './fedadam.js';
import { roundPolicy } from './ingest.js';

describe('FedAdam', () => {
  it('takes the step of Reddi et al. Algorithm 2 on a hand-computed example', () => {
    const global = Float32Array.of(1, -1);
    const delta = Float64Array.of(0.1, -0.2);
    const lr = 0.01;
    const first = fedAdamStep(global, delta, undefined, lr);
    // m1 = 0.1 * delta = (0.01, -0.02); v1 = 0.99 * 1e-6 + 0.01 * delta^2 = (1.0099e-4, 4.0099e-4).
    expect(Array.from(first.state.m)).toEqual(
      [0.1 * 0.1, 0.1 * -0.2].map((x) => expect.closeTo(x, 15)),
    );
    expect(first.state.v[0]).toBeCloseTo(1.0099e-4, 15);
    expect(first.state.v[1]).toBeCloseTo(4.0099e-4, 15);
    expect(first.state.step).toBe(1);
    // x1 = x0 + 0.01 * m1 / (sqrt(v1) + 1e-3)
    expect(first.weights[0]).toBeCloseTo(1 + (0.01 * 0.01) / (Math.sqrt(1.0099e-4) + 1e-3), 6);
    expect(first.weights[1]).toBeCloseTo(-1 + (0.01 * -0.02) / (Math.sqrt(4.0099e-4) + 1e-3), 6);

    // Second step with the same delta: m2 = 0.9 m1 + 0.1 d = 0.19 d; v2 = 0.99 v1 + 0.01 d^2.
    const second = fedAdamStep(first.weights, delta, first.state, lr);
    const m2 = 0.19 * 0.1;
    const v2 = 0.99 * 1.0099e-4 + 0.01 * 0.01;
    expect(second.state.m[0]).toBeCloseTo(m2, 15);
    expect(second.state.v[0]).toBeCloseTo(v2, 15);
    expect(second.weights[0]).toBeCloseTo(
      first.weights[0]! + (0.01 * m2) / (Math.sqrt(v2) + 1e-3),
      6,
    );
    // The inputs are left alone.
    expect(first.state.step).toBe(1);
    expect(Array.from(global)).toEqual([1, -1]);
  });

  it('starts from m = 0, v = tau^2 and refuses a state of another layout', () => {
    const state = initialFedAdamState(3);
    expect(Array.from(state.v)).toEqual([1e-6, 1e-6, 1e-6]);
    expect(FEDADAM).toEqual({ beta1: 0.9, beta2: 0.99, tau: 1e-3 });
    expect(() =>
      fedAdamStep(new Float32Array(2), new Float64Array(2), initialFedAdamState(3), 0.1),
    ).toThrow(/another model layout/);
  });

  it('steps the item span at its own rate and everything else at the server rate', () => {
    const global = new Float32Array(4);
    const delta = Float64Array.of(0.1, 0.1, 0.1, 0.1);
    const plain = fedAdamStep(global, delta, undefined, 0.01);
    const split = fedAdamStep(global, delta, undefined, {
      rate: 0.01,
      items: { start: 1, end: 3, rate: 0.05 },
    });
    expect(split.weights[0]).toBe(plain.weights[0]);
    expect(split.weights[3]).toBe(plain.weights[3]);
    expect(split.weights[1]).toBeCloseTo(5 * plain.weights[1]!, 6);
    expect(split.weights[2]).toBeCloseTo(5 * plain.weights[2]!, 6);
    expect(Array.from(split.state.m)).toEqual(Array.from(plain.state.m));
  });

  it("the round policy applies --item-learning-rate on the context's item span only", () => {
    const global = new Float32Array(4);
    const updates = [{ delta: Float32Array.of(0.5, 0.5, 0.5, 0.5), examples: 1 }];
    const run = (optimizer: 'fedavg' | 'fedadam', withSpan: boolean) =>
      Array.from(
        roundPolicy(
          resolveConfig({
            noiseMultiplier: 0,
            serverOptimizer: optimizer,
            itemLearningRate: 0.2,
            clipNorm: 10,
          }),
        ).aggregate(global, updates, {
          optimizerState: undefined,
          ledger: [],
          ...(withSpan ? { itemSpan: { start: 0, end: 2 } } : {}),
        }).weights,
      );
    // FedAvg: the items move by 0.2 * 0.5, the rest by the server rate 1 * 0.5.
    expect(run('fedavg', true)).toEqual([0.1, 0.1, 0.5, 0.5].map((x) => expect.closeTo(x, 6)));
    expect(run('fedavg', false)).toEqual([0.5, 0.5, 0.5, 0.5]);
    const adam = run('fedadam', true);
    expect(adam[0]! / adam[2]!).toBeCloseTo(0.2 / 0.01, 4);
  });

  it("the round policy takes FedAdam's tau from --fedadam-tau", () => {
    const global = new Float32Array(3);
    const updates = [{ delta: Float32Array.of(0.01, -0.01, 0), examples: 1 }];
    const step = (fedAdamTau?: number) =>
      roundPolicy(
        resolveConfig({
          noiseMultiplier: 0,
          serverOptimizer: 'fedadam',
          clipNorm: 10,
          ...(fedAdamTau === undefined ? {} : { fedAdamTau }),
        }),
      ).aggregate(global, updates, { optimizerState: undefined, ledger: [] }).weights;
    const mean = Float64Array.of(0.01, -0.01, 0);
    const expected = (tau: number) =>
      fedAdamStep(global, mean, undefined, 0.01, { ...FEDADAM, tau }).weights;
    expect(Array.from(step())).toEqual(Array.from(expected(1e-3)));
    expect(Array.from(step(0.5))).toEqual(Array.from(expected(0.5)));
    // A larger floor moves a small coordinate far less.
    expect(Math.abs(step(0.5)[0]!)).toBeLessThan(Math.abs(step()[0]!) / 10);
  });

  it("the round policy takes the item rows' tau from --fedadam-item-tau, the dense one's elsewhere", () => {
    const global = new Float32Array(4);
    const updates = [{ delta: Float32Array.of(0.01, 0.01, 0.01, 0.01), examples: 1 }];
    const weights = roundPolicy(
      resolveConfig({
        noiseMultiplier: 0,
        serverOptimizer: 'fedadam',
        clipNorm: 10,
        fedAdamItemTau: 0.5,
      }),
    ).aggregate(global, updates, {
      optimizerState: undefined,
      ledger: [],
      itemSpan: { start: 2, end: 4 },
    }).weights;
    const mean = Float64Array.of(0.01, 0.01, 0.01, 0.01);
    const small = fedAdamStep(global, mean, undefined, 0.01, { ...FEDADAM, tau: 1e-3 }).weights;
    // Every coordinate's moments start alike (v = 1e-3 squared); only the floor differs.
    const start = initialFedAdamState(4, 1e-3);
    const large = fedAdamStep(global, mean, start, 0.01, { ...FEDADAM, tau: 0.5 }).weights;
    const expected = [small[0]!, small[1]!, large[2]!, large[3]!];
    expect(Array.from(weights)).toEqual(expected.map((x) => expect.closeTo(x, 9)));
    // The item rows' larger floor moves them far less.
    expect(weights[2]!).toBeLessThan(weights[0]! / 100);
  });
});
