/**
 * Bounded influence with the server's defaults (equal weights, re-clipping to S, the fixed
 * denominator m, the Gaussian noise of z S / m): k fake clients in a round of m move the published
 * model along their chosen direction by at most k S / m, plus what the noise adds, whatever example
 * counts they claim; an update above S is refused outright. Real rounds over HTTP on the test model.
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { UpdateReply } from '../protocol/api.js';
import { mulberry32, normal } from '../protocol/prng.js';
import { DEFAULT_CONFIG } from './config.js';
import { bytesToFloat32 } from './float32-bytes.js';
import { joinRound, makeApp, makeDelta, PARAMS, postUpdate, updateBody } from './test-helpers.js';

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

/** The attack's direction: a fixed unit vector over every coordinate (not one coordinate). */
const direction = makeDelta(1, 7);

/** Runs one round of m updates, k of them fake; returns how far the model moved along `direction`. */
async function attackedRound(
  k: number,
  fake: { scale: number; examples: number },
  seed: number,
): Promise<{ moved: number; m: number; S: number; z: number }> {
  const { minCohort: m, clipNorm: S, noiseMultiplier: z } = DEFAULT_CONFIG;
  const rng = mulberry32(seed);
  // The defaults but plaintext (secure rounds are the device's own protocol; the policy is the same).
  const made = await makeApp(
    { noiseMultiplier: z, aggregation: 'plaintext' },
    { rng: () => normal(rng) },
  );
  close = made.close;
  const app: FastifyInstance = made.app;
  const before = bytesToFloat32((await made.store.getWeightBytes(1))!);
  let reply: UpdateReply | undefined;
  for (let i = 0; i < m; i++) {
    const { token } = await joinRound(app);
    const isFake = i < k;
    const delta = isFake
      ? Float32Array.from(direction, (v) => v * fake.scale * S)
      : makeDelta(0.1 * S, 100 + i);
    const body = updateBody({ token, delta, examples: isFake ? fake.examples : 1 });
    const res = await postUpdate(app, body);
    expect(res.statusCode, res.body).toBe(202);
    reply = res.json<UpdateReply>();
  }
  expect(reply).toMatchObject({ version: 2 });
  const after = bytesToFloat32((await made.store.getWeightBytes(2))!);
  let moved = 0;
  for (let i = 0; i < PARAMS; i++) moved += (after[i]! - before[i]!) * direction[i]!;
  await made.close();
  close = undefined;
  return { moved, m, S, z };
}

describe('k fake clients in a round of m, with the defaults', () => {
  it('move the model along their direction by at most k S / m (+ the noise), whatever they claim', async () => {
    for (const k of [1, 10]) {
      // Updates of norm S (just under: float32), each claiming 2^32 - 1 examples.
      const claimed = await attackedRound(k, { scale: 0.999_999, examples: 2 ** 32 - 1 }, k);
      const bound = (k * claimed.S) / claimed.m;
      // The noise along one unit direction is N(0, (z S / m)^2); the honest updates' share is at most
      // (m - k) 0.1 S / m in the worst case. Slack: 5 noise standard deviations.
      const slack =
        (5 * claimed.z * claimed.S) / claimed.m + ((claimed.m - k) * 0.1 * claimed.S) / claimed.m;
      expect(claimed.moved).toBeLessThan(bound + slack);
      // The same fake clients honest about their examples move it exactly as much: claims are ignored.
      const honest = await attackedRound(k, { scale: 0.999_999, examples: 1 }, k);
      expect(Math.abs(claimed.moved - honest.moved)).toBeLessThan(1e-6);
      // And the attack is there to be bounded: the move is of the size k S / m.
      expect(claimed.moved).toBeGreaterThan(bound - slack);
    }
  }, 120_000);

  it('refuses an update above S instead of scaling it down', async () => {
    const made = await makeApp({ aggregation: 'plaintext' });
    close = made.close;
    const { token } = await joinRound(made.app);
    const res = await postUpdate(
      made.app,
      updateBody({ token, delta: Float32Array.from(direction, (v) => v * 1000) }),
    );
    expect(res.statusCode).toBe(422);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('HEARTH_E_UPDATE_NORM');
    expect((await made.store.counts()).updates).toBe(0);
  });
});
