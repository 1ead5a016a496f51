import { describe, expect, it } from 'vitest';
import { l2Norm } from '../clip.js';
import type { HearthError } from '../errors.js';
import { mulberry32 } from '../prng.js';
import { decodeFixedPointSum, encodeFixedPoint, fixedPointScale } from './fixed-point.js';
import { ringOrder } from './graph.js';
import { runRoundInProcess, type DropPoint } from './in-process.js';
import type { DeviceId, SecAggParams } from './params.js';
import { plainSum, randomInputs, seededRandomBytes, testParams } from './testing.js';

async function run(params: SecAggParams, drops: [DeviceId, DropPoint][] = [], seed = 1) {
  const random = seededRandomBytes(seed);
  const inputs = randomInputs(params.devices, params.length, random);
  const outcome = await runRoundInProcess({ params, inputs, drops: new Map(drops), random });
  return { ...outcome, inputs };
}

/**
 * Dropouts placed at ring positions of the neighbour graph (each device's neighbours are the 2 on
 * either side for k = 4), so that no neighbourhood loses more than k + 1 - t' of its holders.
 */
function atRing(params: SecAggParams, plan: [number, DropPoint][]): [DeviceId, DropPoint][] {
  const ring = ringOrder(params.devices, params.graphSeed);
  return plan.map(([position, point]) => [ring[position]!, point]);
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (error: HearthError) => error.code,
  );
}

describe('a secure aggregation round, in process', () => {
  it('tells onStep of every step as it starts and ends, devices and server apart', async () => {
    const params = testParams(6, { neighbours: 5, length: 8 });
    const random = seededRandomBytes(3);
    const inputs = randomInputs(params.devices, params.length, random);
    const started: string[] = [];
    const ended: string[] = [];
    const drops = new Map<DeviceId, DropPoint>([[params.devices[0]!, 'masked']]);
    await runRoundInProcess({
      params,
      inputs,
      drops,
      random,
      onStep: (stage, who) => {
        started.push(`${stage} ${who}`);
        return () => ended.push(`${stage} ${who}`);
      },
    });
    expect(ended).toEqual(started);
    const of = (who: string) =>
      started.filter((s) => s.endsWith(` ${who}`)).map((s) => s.split(' ')[0]);
    // A device that stays runs each of the four stages once; the dropped one stops before masking.
    expect(of(String(params.devices[1]))).toEqual(['keys', 'shares', 'masked', 'unmask']);
    expect(of(String(params.devices[0]))).toEqual(['keys', 'shares']);
    // The server accepts each message and closes each stage.
    expect(of('server').filter((s) => s === 'masked')).toHaveLength(params.devices.length - 1 + 1);
  });

  it('outputs the exact sum mod 2^32 with no dropouts: pairwise masks cancel on their own', async () => {
    const params = testParams(10, { neighbours: 4, length: 1000 });
    const { result, inputs, server, transcript } = await run(params);
    expect(result.sum).toEqual(plainSum(inputs, params.devices, params.length));
    expect(result.survivors).toEqual(params.devices);
    // Only self-mask seeds were rebuilt: no mask key, so the pairwise masks needed no removal.
    expect(transcript.unmask.every((r) => r.keyShares.length === 0)).toBe(true);
    expect(server.stage).toBe('done');
    // And no masked input resembles its input.
    for (const { from, masked } of transcript.masked) {
      const x = inputs.get(from)!;
      expect(masked.filter((word, i) => word === x[i]).length).toBeLessThan(3);
    }
  });

  it('sums the complete-graph round (k >= n - 1) exactly', async () => {
    const params = testParams(10, { length: 1000 });
    const { result, inputs, devices } = await run(params);
    expect(result.sum).toEqual(plainSum(inputs, params.devices, params.length));
    for (const device of devices.values()) expect(device.pairwise).toHaveLength(9);
  });

  it('recovers from dropouts at every stage: the sum of exactly the survivors', async () => {
    const params = testParams(10, { neighbours: 4, threshold: 5, length: 1000 });
    const drops = atRing(params, [
      [7, 'keys'],
      [2, 'shares'],
      [5, 'masked'], // sent its shares, not its masked input: its mask key is rebuilt
      [0, 'unmask'], // sent its masked input, not its shares of others: still summed
    ]);
    const [noKeys, noShares, noInput] = drops.map(([id]) => id);
    const { result, inputs, server, refused } = await run(params, drops);
    const survivors = params.devices.filter((id) => ![noKeys, noShares, noInput].includes(id));
    expect(refused.size).toBe(0);
    expect(result.survivors).toEqual(survivors);
    expect(result.sum).toEqual(plainSum(inputs, survivors, params.length));
    expect(server.keys.has(noKeys!)).toBe(false);
    expect(server.commitments.has(noShares!)).toBe(false);
    expect(server.commitments.has(noInput!)).toBe(true);
  });

  it('recovers when many devices drop after sharing keys (complete graph)', async () => {
    const params = testParams(10, { threshold: 4, length: 200 });
    const drops: [DeviceId, DropPoint][] = [2, 3, 5, 8].map((id) => [id, 'masked']);
    const { result, inputs } = await run(params, drops);
    const survivors = params.devices.filter((id) => ![2, 3, 5, 8].includes(id));
    expect(result.sum).toEqual(plainSum(inputs, survivors, params.length));
  });

  it('never gives the server both shares of one device', async () => {
    const params = testParams(10, { neighbours: 4, threshold: 5 });
    const drops = atRing(params, [
      [3, 'masked'],
      [6, 'masked'],
      [0, 'unmask'],
    ]);
    const [a, b, silent] = drops.map(([id]) => id);
    const { transcript } = await run(params, drops);
    const seedOwners = new Set(transcript.unmask.flatMap((r) => r.seedShares.map((s) => s.owner)));
    const keyOwners = new Set(transcript.unmask.flatMap((r) => r.keyShares.map((s) => s.owner)));
    expect(keyOwners).toEqual(new Set([a, b]));
    expect([...seedOwners].filter((id) => keyOwners.has(id))).toEqual([]);
    expect(seedOwners.has(silent!)).toBe(true);
  });

  it.each<[string, DropPoint]>([
    ['advertised keys', 'keys'],
    ['sent shares', 'shares'],
    ['sent masked inputs', 'masked'],
    ['answered the unmask request', 'unmask'],
  ])('abandons the round when fewer than t %s', async (_what, point) => {
    const params = testParams(6, { threshold: 4 });
    const drops: [DeviceId, DropPoint][] = [1, 2, 3].map((id) => [id, point]);
    expect(await codeOf(run(params, drops))).toBe('HEARTH_E_SECAGG_THRESHOLD');
  });

  it('is reproducible from a seeded RandomBytes, apart from the Shamir shares', async () => {
    const params = testParams(6, { neighbours: 2, threshold: 3 });
    const a = await run(params, [], 5);
    const b = await run(params, [], 5);
    expect(b.transcript.keys).toEqual(a.transcript.keys);
    expect(b.transcript.masked).toEqual(a.transcript.masked);
    expect(b.result.sum).toEqual(a.result.sum);
    const c = await run(params, [], 6);
    expect(c.transcript.masked[0]!.masked).not.toEqual(a.transcript.masked[0]!.masked);
  });

  it('scales with k, not n: at n = 100 and k = 14 each device masks with and shares to 14', async () => {
    // k = 14 ~ 2 log2(100); each device's work is 14 key agreements per stage, whatever n is.
    const params = testParams(100, { neighbours: 14, threshold: 50, length: 1000 });
    const drops: [DeviceId, DropPoint][] = [17, 42, 88].map((id) => [id, 'unmask']);
    const { result, inputs, devices, transcript } = await run(params, drops);
    expect(result.sum).toEqual(plainSum(inputs, params.devices, params.length));
    for (const device of devices.values()) {
      expect(device.pairwise).toHaveLength(14);
      expect(device.held.size).toBe(15);
    }
    for (const message of transcript.shares) expect(message.shares).toHaveLength(14);
  });

  it("carries clipped float updates: the decoded sum is the survivors' sum within quantisation", async () => {
    const params = testParams(10, { neighbours: 4, threshold: 5, length: 1000 });
    const [clip, m] = [1, params.devices.length];
    const rng = mulberry32(8);
    const random = seededRandomBytes(8);
    const floats = new Map(
      params.devices.map((id) => {
        const v = Float64Array.from({ length: params.length }, () => rng() - 0.5);
        const scale = clip / l2Norm(v);
        return [id, v.map((x) => x * scale)];
      }),
    );
    const inputs = new Map(
      [...floats].map(([id, v]) => [id, encodeFixedPoint(v, clip, m, 32, { random })]),
    );
    const drops = atRing(params, [[4, 'masked']]);
    const { result } = await runRoundInProcess({ params, inputs, drops: new Map(drops), random });
    const decoded = decodeFixedPointSum(result.sum, clip, m);
    const exact = new Float64Array(params.length);
    for (const id of result.survivors)
      floats.get(id)!.forEach((x, i) => (exact[i] = exact[i]! + x));
    const worst = Math.max(...decoded.map((x, i) => Math.abs(x - exact[i]!)));
    expect(result.survivors).toHaveLength(9);
    expect(worst).toBeLessThanOrEqual(m / fixedPointScale(clip, m));
  });
});
