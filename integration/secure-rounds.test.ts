/**
 * Secure aggregation over HTTP, on a real socket and a real SQLite file: devices (the client the
 * worker runs, worker/secure-client.ts) join, take the four SecAgg+ stages, some leave mid-round,
 * and the server publishes the survivors' sum without ever storing one device's update.
 */
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HearthError } from '../protocol/errors.js';
import { PATHS, secureStepPath, weightsPath } from '../protocol/routes.js';
import {
  paramsFromInfo,
  SECURE_DEVICE_HEADER,
  type SecureRoundInfo,
} from '../protocol/secagg/http.js';
import { takePartSecurely, type SecureRoundRequest } from '../worker/secure-client.js';
import { resolveConfig, type ServerConfig } from '../server/config.js';
import { bytesToFloat32 } from '../server/float32-bytes.js';
import { neighboursFor, secureEncoding, shareThresholdFor } from '../server/secure-rounds.js';
import { startServer, type RunningServer } from '../server/start.js';
import { makeDelta, PARAMS, seedWeights, writeSeedDir } from '../server/test-helpers.js';
import { MIN_WINDOW } from '../server/round-guard.js';
import { mulberry32 } from '../protocol/prng.js';
import { parseManifest } from '../protocol/manifest.js';
import { roundSketch, unsketchUpdate } from '../protocol/item-sketch.js';
import { manifestLayout, updateLength } from '../protocol/update-layout.js';

const S = 1;
let dir: string;
let cleanupSeed: () => Promise<void>;
let server: RunningServer | undefined;

async function start(overrides: Partial<ServerConfig>): Promise<RunningServer> {
  const seed = await writeSeedDir();
  cleanupSeed = seed.cleanup;
  server = await startServer(
    resolveConfig({
      port: 0,
      dbPath: join(dir, 'hearth.db'),
      modelDir: seed.dir,
      weightsDtype: 'float32',
      noiseMultiplier: 0,
      clipNorm: S,
      aggregation: 'secure',
      // Stages close as soon as every device expected has answered; the deadline only runs out
      // for a stage someone left, so a generous one costs a leaver's stage, not every stage.
      secureStageSeconds: 4,
      secureJoinSeconds: 60,
      // Every device of this test is one loopback client.
      joinsPerRound: 0,
      ...overrides,
    }),
  );
  return server;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-secure-'));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await cleanupSeed?.();
  await rm(dir, { recursive: true, force: true });
});

/** A device of the test: its update (norm 0.9 S, salted) and where it leaves, if it does. */
function device(url: string, salt: number, leaveAfter?: SecureRoundRequest['leaveAfter']) {
  const delta = makeDelta(0.9 * S, salt);
  const request: SecureRoundRequest = {
    endpoint: url,
    expected: { minimum: 4, clipNorm: S },
    input: () => delta,
    ...(leaveAfter ? { leaveAfter } : {}),
  };
  return { delta, run: () => takePartSecurely(request) };
}

/**
 * A random direction of the model's length with L2 norm `norm`; with `part` of `parts`, one that is
 * zero outside that part of the coordinates, so that the parts' directions are orthogonal.
 */
function randomDelta(norm: number, seed: number, part = 0, parts = 1): Float32Array {
  const next = mulberry32(seed);
  const inPart = (i: number) => Math.floor((i * parts) / PARAMS) === part;
  const raw = Float64Array.from({ length: PARAMS }, (_, i) => (next() - 0.5) * +inPart(i));
  const n = Math.sqrt(raw.reduce((sum, v) => sum + v * v, 0));
  return Float32Array.from(raw, (v) => (v / n) * norm);
}

async function weights(url: string, version: number): Promise<Float32Array> {
  const res = await fetch(`${url}${weightsPath(version)}`);
  expect(res.status).toBe(200);
  return bytesToFloat32(new Uint8Array(await res.arrayBuffer()));
}

describe('secure aggregation rounds over HTTP', () => {
  it('publishes the sum of the devices that stayed, and stores no update', async () => {
    const { url } = await start({ minCohort: 4, secureCohort: 6 });
    // Six devices; one closes its tab after sending its keys (it never shares them), one after
    // sending its masked input (it never helps unmask): the first is out of the sum, the second in.
    const devices = [1, 2, 3, 4, 5, 6].map((salt) =>
      device(url, salt, salt === 2 ? 'keys' : salt === 5 ? 'masked' : undefined),
    );
    // The masked inputs as they go on the wire.
    const masked: number[] = [];
    const realFetch = globalThis.fetch;
    const spy = vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
      if (String(input).endsWith('/masked') && init?.body instanceof Uint8Array) {
        masked.push(init.body.length);
      }
      return realFetch(input, init);
    });
    const outcomes = await Promise.all(devices.map((d) => d.run())).finally(() =>
      spy.mockRestore(),
    );
    // A round this small sums its vectors rotated in a 16-bit ring: 2 bytes a coordinate (the 64
    // are one whole block), after the 12-byte framing.
    const { bits, length, scale } = secureEncoding(S, 0, 6, 4, PARAMS);
    expect({ bits, length }).toEqual({ bits: 16, length: PARAMS });
    expect(masked).toEqual(new Array(5).fill(12 + 2 * PARAMS));
    expect(outcomes[1]).toMatchObject({ left: 'keys' });
    expect(outcomes[4]).toMatchObject({ left: 'masked' });
    for (const i of [0, 2, 3, 5]) {
      expect(outcomes[i]).toMatchObject({ status: 'published', version: 2, survivors: 5 });
    }

    const survivors = devices.filter((_, i) => i !== 1);
    const expected = seedWeights();
    for (const { delta } of survivors) {
      for (let j = 0; j < expected.length; j++) expected[j]! += delta[j]! / survivors.length;
    }
    const published = await weights(url, 2);
    // FedAvg at server learning rate 1: the mean of the survivors' updates, to the fixed-point
    // rounding and float32. Each device's rounding has variance at most 1 / (4 scale^2) a
    // coordinate, which the (orthogonal) rotation keeps: the mean of 5 is off by a standard
    // deviation of at most sqrt(5 / 4) / (5 scale), 2.8e-5 S here, and a wrong rotation by about
    // a coordinate of the update itself (0.11 S).
    const spread = Math.sqrt(5 / 4) / (5 * scale);
    let worst = 0;
    for (let j = 0; j < expected.length; j++) {
      worst = Math.max(worst, Math.abs(published[j]! - expected[j]!));
    }
    expect(worst).toBeLessThan(5 * spread);
    expect(worst).toBeGreaterThan(0); // the sum did go through fixed point

    // The database holds the round (5 participants) and no update: no device's bytes in the file.
    await server!.close();
    server = undefined;
    const db = new Database(join(dir, 'hearth.db'), { readonly: true });
    expect(db.prepare('SELECT COUNT(*) AS n FROM updates').get()).toEqual({ n: 0 });
    expect(db.prepare("SELECT participants FROM rounds WHERE status = 'published'").all()).toEqual([
      { participants: 5 },
    ]);
    db.close();
    const file = await readFile(join(dir, 'hearth.db'));
    for (const { delta } of devices) {
      expect(file.includes(Buffer.from(delta.buffer, 0, 32))).toBe(false);
    }
  }, 30_000);

  it("reads a sum of item sketches back into every row with its version's hashes", async () => {
    const { url } = await start({ minCohort: 4, secureCohort: 4, itemSketch: 2 });
    const v1 = parseManifest(await (await fetch(`${url}${PATHS.model}`)).json());
    expect(v1.federation.itemSketch).toEqual(roundSketch(2, 1));
    const length = updateLength(v1.dims, manifestLayout(v1.federation));
    expect(length).toBeLessThan(PARAMS);
    const deltas = [1, 2, 3, 4].map((salt) => makeDelta(0.9 * S, salt).subarray(0, length));
    const outcomes = await Promise.all(
      deltas.map((delta) =>
        takePartSecurely({
          endpoint: url,
          expected: { minimum: 4, clipNorm: S },
          input: () => delta,
        }),
      ),
    );
    for (const outcome of outcomes) expect(outcome).toMatchObject({ status: 'published' });
    const mean = new Float32Array(length);
    for (const delta of deltas) for (let j = 0; j < length; j++) mean[j]! += delta[j]! / 4;
    const moved = unsketchUpdate(mean, v1.dims, roundSketch(2, 1), new Float32Array(PARAMS));
    const base = seedWeights();
    const published = await weights(url, 2);
    // The rounding of 4 devices in the round's ring (see above), read back into the rows.
    const { scale } = secureEncoding(S, 0, 4, 4, length);
    let worst = 0;
    for (let j = 0; j < PARAMS; j++) {
      worst = Math.max(worst, Math.abs(published[j]! - base[j]! - moved[j]!));
    }
    expect(worst).toBeLessThan(5 * (Math.sqrt(4 / 4) / (4 * scale)));
  }, 30_000);

  it("with noise on, the sum carries the devices' Skellam noise and the ledger prices it", async () => {
    const z = 1;
    const { url } = await start({ minCohort: 4, secureCohort: 4, noiseMultiplier: z });
    const devices = [1, 2, 3, 4].map((salt) => device(url, salt));
    const outcomes = await Promise.all(devices.map((d) => d.run()));
    for (const outcome of outcomes) expect(outcome).toMatchObject({ status: 'published' });
    const published = await weights(url, 2);
    const seed = seedWeights();
    // The fixed-denominator mean (m = 4) plus the noise: of std z S on the sum, z S / m on the mean.
    const residual = Array.from(seed, (w, j) => {
      const mean = devices.reduce((sum, d) => sum + d.delta[j]!, 0) / 4;
      return published[j]! - w - mean;
    });
    const std = Math.sqrt(residual.reduce((s, r) => s + r * r, 0) / residual.length);
    // 64 coordinates: the sample std is within 30% (over 3 of its standard errors) of z S / m.
    expect(std).toBeGreaterThan(0.7 * ((z * S) / 4));
    expect(std).toBeLessThan(1.3 * ((z * S) / 4));
    const privacy = await (await fetch(`${url}${PATHS.privacy}`)).json();
    expect(privacy.rounds).toBe(1);
    expect(privacy.epsilon).toBeGreaterThan(0);
    expect(privacy.epsilon).toBeLessThan(Infinity);
    const ledger = await server!.store.privacyLedger();
    expect(ledger[0]!.skellam!.mu).toBeGreaterThan(0);
    // z recorded for the round is the devices': sqrt(mu) / Delta2 is z up to the rounding slack.
    expect(Math.sqrt(ledger[0]!.skellam!.mu) / ledger[0]!.skellam!.l2).toBeCloseTo(z, 3);
  }, 30_000);

  it('abandons a round that falls below t, publishing nothing', async () => {
    const { url } = await start({ minCohort: 4, secureCohort: 4 });
    const devices = [1, 2, 3, 4].map((salt) =>
      device(url, salt, salt === 3 ? 'params' : undefined),
    );
    const outcomes = await Promise.allSettled(devices.map((d) => d.run()));
    expect(outcomes[2]).toMatchObject({ status: 'fulfilled', value: { left: 'params' } });
    for (const i of [0, 1, 3]) {
      const outcome = outcomes[i]!;
      expect(outcome.status).toBe('rejected');
      const reason = (outcome as PromiseRejectedResult).reason as HearthError;
      expect(reason).toBeInstanceOf(HearthError);
      expect(reason.code).toBe('HEARTH_E_SECAGG_THRESHOLD');
    }
    const health = (await (await fetch(`${url}${PATHS.health}`)).json()) as { version: number };
    expect(health.version).toBe(1);
  }, 30_000);

  it('with --round-guard rollback (noise on), abandons a sum whose devices point alike', async () => {
    // Noise on, small enough that the sums' energy shows through it (round-guard.ts: the guard's
    // floor is the spread the noise gives a sum's energy).
    const { url } = await start({
      minCohort: 4,
      secureCohort: 4,
      noiseMultiplier: 0.01,
      roundGuard: 'rollback',
      roundGuardWindow: MIN_WINDOW,
      // Nobody leaves here, so a long stage deadline costs nothing; at 4 s a device of a loaded
      // machine can miss one, and a sum of 3 of these devices has 4/3 the energy of a sum of 4.
      secureStageSeconds: 60,
    });
    const round = (deltas: Float32Array[]) =>
      Promise.allSettled(
        deltas.map((delta) =>
          takePartSecurely({
            endpoint: url,
            expected: { minimum: 4, clipNorm: S },
            input: () => delta,
          }),
        ),
      );
    // Honest devices pointing apart: orthogonal, so that every honest sum has the same energy
    // but for the noise (4 random directions of this 64-value model would vary it by about 0.03,
    // three times the guard's floor, and a window of 5 such rounds could judge the next one
    // anomalous by chance).
    const honest = (r: number) => [0, 1, 2, 3].map((i) => randomDelta(0.9 * S, 100 * r + i, i, 4));
    for (let r = 1; r <= MIN_WINDOW; r++) {
      for (const outcome of await round(honest(r))) {
        expect(outcome).toMatchObject({ status: 'fulfilled', value: { version: r + 1 } });
      }
    }
    const push = randomDelta(0.9 * S, 999);
    for (const outcome of await round([push, push, push, push])) {
      expect(outcome).toMatchObject({
        status: 'fulfilled',
        value: { status: 'abandoned', reason: 'HEARTH_E_SECAGG_ANOMALY' },
      });
    }
    const health = (await (await fetch(`${url}${PATHS.health}`)).json()) as { version: number };
    expect(health.version).toBe(MIN_WINDOW + 1);
    // Honest rounds go on.
    for (const outcome of await round(honest(MIN_WINDOW + 1))) {
      expect(outcome).toMatchObject({ status: 'fulfilled', value: { version: MIN_WINDOW + 2 } });
    }
  }, 60_000);

  it('refuses a stranger, a device posing as another, and the plaintext routes', async () => {
    const { url } = await start({ minCohort: 2, secureCohort: 3 });
    const join1 = await (await fetch(`${url}${PATHS.secureJoin}`, { method: 'POST' })).json();
    const stranger = await fetch(`${url}${secureStepPath(join1.round, 'params')}`, {
      method: 'POST',
      headers: { [SECURE_DEVICE_HEADER]: 'ab'.repeat(16) },
    });
    expect(stranger.status).toBe(404);
    expect((await stranger.json()).error.code).toBe('HEARTH_E_SECAGG_ROUND');
    const unknownStep = await fetch(`${url}${secureStepPath(join1.round, 'sum')}`, {
      method: 'POST',
      headers: { [SECURE_DEVICE_HEADER]: join1.secret },
    });
    expect(unknownStep.status).toBe(404);
    for (const path of [PATHS.join, PATHS.updates]) {
      const res = await fetch(`${url}${path}`, { method: 'POST' });
      expect(res.status).toBe(409);
      expect((await res.json()).error.code).toBe('HEARTH_E_AGGREGATION_MODE');
    }
  });

  it('is refused by a plaintext server', async () => {
    const { url } = await start({ aggregation: 'plaintext', minCohort: 2 });
    const res = await fetch(`${url}${PATHS.secureJoin}`, { method: 'POST' });
    expect(res.status).toBe(409);
    expect((await res.json()).error.code).toBe('HEARTH_E_AGGREGATION_MODE');
  });
});

describe('a device checks the round before it sends anything', () => {
  const info: SecureRoundInfo = {
    roundId: 'r',
    devices: [1, 2, 3, 4],
    threshold: 4,
    neighbours: 3,
    shareThreshold: 3,
    length: 10,
    graphSeed: '00'.repeat(32),
    version: 1,
    layoutHash: 1,
    clipNorm: 1,
    summands: 4,
    bits: 32,
    noiseVariance: 0,
  };
  const expected = { minimum: 4, clipNorm: 1 };

  it('takes a round that keeps to its m and its clip bound', () => {
    expect(paramsFromInfo(info, 2, expected).devices).toEqual([1, 2, 3, 4]);
    expect(paramsFromInfo({ ...info, bits: 24 }, 2, expected).devices).toEqual([1, 2, 3, 4]);
    const rotated = { ...info, bits: 16, rotation: 16, length: 16 };
    expect(paramsFromInfo(rotated, 2, expected).devices).toEqual([1, 2, 3, 4]);
  });

  it.each([
    ['a threshold below m', { threshold: 3 }],
    ['a round without this device', { devices: [1, 3, 4, 5] }],
    ['another clip bound', { clipNorm: 2 }],
    ['fewer summands than devices', { summands: 3 }],
    ['a noise variance out of range', { noiseVariance: -1 }],
    ['a malformed graph seed', { graphSeed: 'zz' }],
    ['a minority share threshold', { shareThreshold: 2 }],
    ['a ring of 8 bits', { bits: 8 }],
    ['a ring of 31 bits', { bits: 31 }],
    ['a rotation block that is not a power of two', { rotation: 12 }],
    ['a rotation block over 2^14', { rotation: 2 ** 15 }],
  ])('refuses %s', (_, change) => {
    expect(() => paramsFromInfo({ ...info, ...change }, 2, expected)).toThrow(
      expect.objectContaining({ code: 'HEARTH_E_SECAGG_PARAMS' }),
    );
  });

  it('gives each device enough neighbours to outlast the dropout, and no more', () => {
    // Small rounds are complete graphs; large ones grow like log n (the values the README states).
    expect(neighboursFor(10, 0.2)).toBe(9);
    expect([100, 1000, 10000].map((n) => neighboursFor(n, 0.1))).toEqual([18, 22, 26]);
    expect([100, 1000, 10000].map((n) => neighboursFor(n, 0.2))).toEqual([40, 50, 60]);
    expect([1000, 10000].map((n) => neighboursFor(n, 0.3))).toEqual([130, 154]);
  });

  it('has neighbourhoods whose share threshold is a strict majority', () => {
    for (const n of [2, 10, 30, 31, 100, 1000]) {
      const k = neighboursFor(n, 0.2);
      expect(k).toBeLessThanOrEqual(n - 1);
      expect(2 * shareThresholdFor(k)).toBeGreaterThan(k + 1);
      if (k < n - 1) expect(k % 2).toBe(0);
    }
  });
});
