import { describe, expect, it } from 'vitest';
import { thrownCode } from '../testing.js';
import { neighbourGraph, ringOrder } from './graph.js';
import { checkParams } from './params.js';
import { testParams } from './testing.js';

function expectKRegularAndSymmetric(n: number, k: number): void {
  const graph = neighbourGraph(testParams(n, { neighbours: k }));
  const degree = Math.min(k, n - 1);
  expect(graph.size).toBe(n);
  for (const [u, near] of graph) {
    expect(near).toHaveLength(degree);
    expect(new Set(near).size).toBe(degree);
    expect(near).not.toContain(u);
    expect([...near]).toEqual([...near].sort((a, b) => a - b));
    for (const v of near) expect(graph.get(v)).toContain(u);
  }
}

describe('neighbour graph (Harary graph over a seeded ring)', () => {
  it.each([
    [10, 4],
    [11, 4],
    [100, 14],
    [10, 3],
    [12, 5],
    [7, 6],
    [7, 100],
    [2, 1],
  ])('n = %i, k = %i: every device has min(k, n - 1) neighbours, symmetrically', (n, k) => {
    expectKRegularAndSymmetric(n, k);
  });

  it('is the complete graph when k >= n - 1 (the 2017 protocol)', () => {
    const graph = neighbourGraph(testParams(6, { neighbours: 5 }));
    expect(graph.get(3)).toEqual([1, 2, 4, 5, 6]);
  });

  it('is deterministic in the public seed and changes with it', () => {
    const params = testParams(50, { neighbours: 6 });
    expect(neighbourGraph(params)).toEqual(
      neighbourGraph({ ...params, devices: [...params.devices].reverse() }),
    );
    const other = neighbourGraph({ ...params, graphSeed: new Uint8Array(32).fill(9) });
    expect(other).not.toEqual(neighbourGraph(params));
    expect(ringOrder(params.devices, params.graphSeed)).not.toEqual(params.devices);
  });

  it('keeps every device connected when fewer than k devices are removed (k-connected)', () => {
    const params = testParams(30, { neighbours: 4 });
    const graph = neighbourGraph(params);
    for (let start = 0; start < 30; start++) {
      const removed = new Set([1 + start, 1 + ((start + 7) % 30), 1 + ((start + 13) % 30)]);
      const alive = params.devices.filter((id) => !removed.has(id));
      const reached = new Set([alive[0]!]);
      for (const queue = [alive[0]!]; queue.length > 0;) {
        for (const v of graph.get(queue.pop()!)!) {
          if (removed.has(v) || reached.has(v)) continue;
          reached.add(v);
          queue.push(v);
        }
      }
      expect(reached.size).toBe(alive.length);
    }
  });

  it('refuses parameters no round can run with, with HEARTH_E_SECAGG_PARAMS', () => {
    const code = 'HEARTH_E_SECAGG_PARAMS';
    const bad = [
      testParams(11, { neighbours: 3 }), // k * n odd: no 3-regular graph on 11 devices
      testParams(10, { threshold: 1 }),
      testParams(10, { threshold: 11 }),
      testParams(10, { neighbours: 4, shareThreshold: 2 }), // not a majority of 5 holders
      testParams(10, { neighbours: 4, shareThreshold: 6 }),
      testParams(300, { neighbours: 255 }), // 256 holders: over the library's 255
      testParams(10, { devices: [1, 2, 3, 4, 5, 6, 7, 8, 9, 9] }),
      testParams(10, { devices: [1, 2, 3, 4, 5, 6, 7, 8, 9, -1] }),
      testParams(10, { length: 0 }),
      testParams(10, { graphSeed: new Uint8Array(16) }),
      testParams(10, { roundId: '' }),
    ];
    for (const params of bad) expect(thrownCode(() => checkParams(params))).toBe(code);
    expect(thrownCode(() => checkParams(testParams(300, { neighbours: 254 })))).toBeUndefined();
  });
});
