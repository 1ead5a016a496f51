/**
 * The attacks read a visitor's items off an update the worker computes: on a small model, the rows
 * the visitor touched move most, and the projection's change points at where the visitor went;
 * an update that says nothing about the visitor (noise) gives chance. Then the attacks on what a
 * server holds: each device's masked input in a real SecAgg+ round, and the database file of a real
 * server after a real secure round (no better than guessing by popularity), against the plaintext
 * updates and a plaintext server's file (where they succeed).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionModel } from '../../model/session-model.js';
import { manifestFor, type ModelManifest } from '../../protocol/manifest.js';
import { mulberry32, normal } from '../../protocol/prng.js';
import { updateLength, type UpdateLayout } from '../../protocol/update-layout.js';
import {
  decodeFixedPointSum,
  encodeFixedPoint,
  runRoundInProcess,
  wordBytes,
} from '../../protocol/secagg/index.js';
import { seededRandomBytes, testParams } from '../../protocol/secagg/testing.js';
import {
  coordinateBound,
  encodeInput,
  roundInfo,
  sumInUpdate,
} from '../../protocol/secagg/http.js';
import { secureEncoding } from '../../server/secure-rounds.js';
import { clipForUpload, encodeDeviceUpdate } from '../../worker/federated-client.js';
import { learnLocally } from '../../worker/local-training.js';
import { projectionAttack, rowsAttack, scoreGuess } from './attacks.js';
import {
  roundSketch,
  sketchLength,
  sketchSlot,
  sketchUpdate,
  unsketchUpdate,
} from '../../protocol/item-sketch.js';
import { resolveConfig } from '../../server/config.js';
import { bytesToFloat32 } from '../../server/float32-bytes.js';
import { startServer } from '../../server/start.js';
import { bytesToDelta } from '../../server/store-codecs.js';
import { updateBody, writeSeedDir } from '../../server/test-helpers.js';
import { takePartSecurely } from '../../worker/secure-client.js';
import { joinRound } from '../../worker/federated-client.js';
import { PATHS } from '../../protocol/routes.js';
import { UPDATE_CONTENT_TYPE, decodeUpdate } from '../../protocol/update-format.js';
import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dims = { items: 60, embedding: 8, hidden: 8, maxSessionLength: 6 };
let weights: Float32Array;

beforeAll(async () => {
  await tf.setBackend('cpu');
  const model = SessionModel.random(dims, 5);
  weights = model.toFlat();
  model.dispose();
});

function manifestWith(rows?: number[]): ModelManifest {
  return manifestFor(dims, {
    itemIds: Array.from({ length: dims.items }, (_, i) => (i ? `i${i}` : '')),
    federation: {
      clipNorm: 1e9,
      minCohort: 1,
      maxExamples: 1000,
      ...(rows ? { updateRows: rows } : {}),
    },
  });
}

const visitors = [
  [3, 17, 42, 17, 8],
  [11, 29, 5],
  [50, 2, 33, 21],
  [7, 44, 7, 38],
];

describe('attacks on one upload', () => {
  it("the rows attack names the visitor's items from the whole-model update, float16 or int4; noise does not", async () => {
    const layout: UpdateLayout = { kind: 'full' };
    let recall = 0;
    let recallInt4 = 0;
    let noise = 0;
    const rng = mulberry32(3);
    const int4 = manifestWith();
    const int4Manifest = {
      ...int4,
      federation: { ...int4.federation, updateDtype: 'int4' as const },
    };
    for (const items of visitors) {
      const { update, model } = await learnLocally({ manifest: manifestWith(), weights }, [
        { items },
      ]);
      model.dispose();
      const truth = new Set(items);
      recall += scoreGuess(rowsAttack(update.delta, dims, layout), truth).recall;
      // What the server decodes from an int4 body: rounding keeps every untouched row at exactly 0.
      const body = encodeDeviceUpdate(int4Manifest, update.delta, 1, new Uint8Array(16));
      const received = decodeUpdate(body, update.delta.length).delta;
      recallInt4 += scoreGuess(rowsAttack(received, dims, layout), truth).recall;
      const random = Float32Array.from({ length: updateLength(dims, layout) }, () => normal(rng));
      noise += scoreGuess(rowsAttack(random, dims, layout), truth).recall;
    }
    expect(recall / visitors.length).toBeGreaterThan(0.9);
    expect(recallInt4 / visitors.length).toBeGreaterThan(0.9);
    expect(noise / visitors.length).toBeLessThan(0.3);
  });

  it('from an item sketch read back, ranks bucket mates alike and recalls few of the visitor items', async () => {
    const layout: UpdateLayout = { kind: 'full' };
    const sketch = roundSketch(6, 1);
    const bucketOf = (item: number) => Math.abs(sketchSlot(item, sketch));
    let full = 0;
    let sketched = 0;
    for (const items of visitors) {
      const { update, model } = await learnLocally({ manifest: manifestWith(), weights }, [
        { items },
      ]);
      model.dispose();
      const truth = new Set(items);
      const sent = sketchUpdate(
        update.delta,
        dims,
        sketch,
        new Float32Array(sketchLength(dims, sketch)),
      );
      const back = unsketchUpdate(sent, dims, sketch, new Float32Array(update.delta.length));
      const ranking = rowsAttack(back, dims, layout);
      // Bucket mates are moved alike, so they are ranked together, by row number among themselves.
      for (let k = 1; k < ranking.length; k++) {
        if (bucketOf(ranking[k]!) === bucketOf(ranking[k - 1]!)) {
          expect(ranking[k]!).toBeGreaterThan(ranking[k - 1]!);
        }
      }
      full += scoreGuess(rowsAttack(update.delta, dims, layout), truth).recall;
      sketched += scoreGuess(ranking, truth).recall;
    }
    // 59 items in 6 buckets, about 10 mates an item, every row moved by the local step: the
    // visitor's rows no longer stand out (measured recall 0 here, against over 0.9 unsketched).
    expect(full / visitors.length).toBeGreaterThan(0.9);
    expect(sketched / visitors.length).toBeLessThan(0.3);
  });

  it('ranks rows moved alike by the prior it is given, then by row number', () => {
    const layout: UpdateLayout = { kind: 'rows', rows: [2, 5, 9] };
    const delta = new Float32Array(updateLength(dims, layout));
    const dense = updateLength(dims, { kind: 'rows', rows: [] });
    // Rows 2 and 5 moved alike (opposite signs), row 9 less.
    delta[dense] = 1;
    delta[dense + (dims.embedding + 1)] = -1;
    delta[dense + 2 * (dims.embedding + 1)] = 0.5;
    expect(rowsAttack(delta, dims, layout)).toEqual([2, 5, 9]);
    const prior = Float64Array.from({ length: dims.items }, (_, i) => (i === 5 ? 0 : 1));
    expect(rowsAttack(delta, dims, layout, prior)).toEqual([5, 2, 9]);
  });

  it('reads only the rows the layout carries, and the projection attack needs none', async () => {
    const rows = [3, 8, 11, 21, 29, 33, 40, 41];
    const layout: UpdateLayout = { kind: 'rows', rows };
    let projection = 0;
    let chance = 0;
    for (const items of visitors) {
      const { update, model } = await learnLocally({ manifest: manifestWith(rows), weights }, [
        { items },
      ]);
      model.dispose();
      expect(update.delta.length).toBe(updateLength(dims, layout));
      const ranking = rowsAttack(update.delta, dims, layout);
      expect(new Set(ranking)).toEqual(new Set(rows));
      const truth = new Set(items);
      // The layout's rows the visitor touched come first.
      const visible = rows.filter((r) => truth.has(r));
      expect(new Set(ranking.slice(0, visible.length))).toEqual(new Set(visible));
      projection += scoreGuess(projectionAttack(update.delta, dims, layout, weights), truth).recall;
      chance += truth.size / (dims.items - 1);
    }
    expect(projection / visitors.length).toBeGreaterThan(3 * (chance / visitors.length));
  });
});

describe('attacks on what a secure aggregation server receives', () => {
  it('find the items in the plaintext updates, and no more than popularity does in the masked ones', async () => {
    // 120 visitors of 3 to 5 items each, in one SecAgg+ round of the real protocol code.
    const clip = 1;
    const { sessions, deltas, recall, popularity } = await visitorsWithUpdates(120, 11, clip);
    const layout: UpdateLayout = { kind: 'full' };
    const n = sessions.length;
    const random = seededRandomBytes(4);
    const params = testParams(n, { length: deltas[0]!.length, neighbours: 8 });
    const inputs = new Map(
      params.devices.map((id, i) => [id, encodeFixedPoint(deltas[i]!, clip, n, 32, { random })]),
    );
    const { transcript, result } = await runRoundInProcess({ params, inputs, random });
    expect(result.survivors).toHaveLength(n);
    // What the server receives from device i: its masked input, read as the server would a sum.
    const received = (i: number) =>
      Float32Array.from(
        decodeFixedPointSum(
          transcript.masked.find((m) => m.from === params.devices[i])!.masked,
          clip,
          n,
        ),
      );
    const plaintext = recall((i) => rowsAttack(deltas[i]!, dims, layout));
    const maskedRows = recall((i) => rowsAttack(received(i), dims, layout));
    const maskedProjection = recall((i) => projectionAttack(received(i), dims, layout, weights));
    // Plaintext: the attack works, visibly; masked: no better than guessing by popularity (within
    // 0.02 above it, the bar), and not far below it either (the attack is not broken).
    expect(plaintext).toBeGreaterThan(0.9);
    for (const masked of [maskedRows, maskedProjection]) {
      expect(masked).toBeLessThan(popularity + 0.02);
      expect(masked).toBeGreaterThan(popularity - 0.05);
    }
  }, 60_000);

  it('find the items in rotated 16-bit inputs, and no more than popularity does once masked', async () => {
    const clip = 1;
    const { sessions, deltas, recall, popularity } = await visitorsWithUpdates(120, 11, clip);
    const layout: UpdateLayout = { kind: 'full' };
    const n = sessions.length;
    // The encoding a server with the defaults' noise (z = 1.2) gives a round of these 120
    // devices: rotated, 16 bits. The noise itself is left out, so that only the masks hide the
    // inputs (each device's own share of the noise would blur them too).
    const encoding = secureEncoding(clip, 1.2, n, n, deltas[0]!.length);
    expect(encoding).toMatchObject({ bits: 16, rotation: expect.any(Number) });
    const random = seededRandomBytes(5);
    const params = testParams(n, { length: encoding.length, neighbours: 8 });
    const info = roundInfo(
      params,
      { version: 1, layoutHash: 0, clipNorm: clip },
      { ...encoding, noiseVariance: 0 },
    );
    const inputs = new Map(
      params.devices.map((id, i) => [id, encodeInput(deltas[i]!, info, random)]),
    );
    const { transcript, result } = await runRoundInProcess({
      params,
      inputs,
      random,
      wordBytes: wordBytes(encoding.bits),
    });
    expect(result.survivors).toHaveLength(n);
    // The server's best reading of a device's words: decoded and rotated back, as it reads a sum.
    const read = (words: Uint32Array, i: number) =>
      Float32Array.from(
        sumInUpdate(
          decodeFixedPointSum(words, coordinateBound(info), info.summands, info.bits),
          info,
          deltas[i]!.length,
        ),
      );
    const device = (i: number) => params.devices[i]!;
    const unmasked = (i: number) => read(inputs.get(device(i))!, i);
    const received = (i: number) =>
      read(transcript.masked.find((m) => m.from === device(i))!.masked, i);
    // Unmasked, the rotated words give the items away as a plain update does.
    expect(recall((i) => rowsAttack(unmasked(i), dims, layout))).toBeGreaterThan(0.9);
    const maskedRows = recall((i) => rowsAttack(received(i), dims, layout));
    const maskedProjection = recall((i) => projectionAttack(received(i), dims, layout, weights));
    for (const masked of [maskedRows, maskedProjection]) {
      expect(masked).toBeLessThan(popularity + 0.02);
      expect(masked).toBeGreaterThan(popularity - 0.05);
    }
  }, 60_000);
});

/** `n` visitors of 3 to 5 items each, and their clipped updates as the worker computes them. */
async function visitorsWithUpdates(n: number, seed: number, clip: number) {
  const rng = mulberry32(seed);
  const sessions = Array.from({ length: n }, () =>
    Array.from({ length: 3 + Math.floor(rng() * 3) }, () => 1 + Math.floor(rng() * 59)),
  );
  const deltas: Float32Array[] = [];
  for (const items of sessions) {
    const { update, model } = await learnLocally({ manifest: manifestWith(), weights }, [
      { items },
    ]);
    model.dispose();
    deltas.push(clipForUpload(update.delta, clip));
  }
  /** Recall of `guess(i)` over the visitors. */
  const recall = (guess: (i: number) => readonly number[]) =>
    sessions.reduce((sum, items, i) => sum + scoreGuess(guess(i), new Set(items)).recall, 0) / n;
  /** Items by how many visitors hold them, leaving out visitor `except` (-1: none). */
  const popularExcept = (except: number) => {
    const counts = new Float64Array(dims.items);
    sessions.forEach((items, j) => {
      if (j !== except) for (const item of new Set(items)) counts[item]! += 1;
    });
    return Array.from({ length: dims.items - 1 }, (_, r) => r + 1).sort(
      (a, b) => counts[b]! - counts[a]! || a - b,
    );
  };
  return {
    sessions,
    deltas,
    recall,
    // Popularity among the other visitors: the guess that needs nothing from visitor i.
    popularity: recall(popularExcept),
    // The cohort's own item counts, visitor i's included: the most a sum of the cohort's updates
    // can tell about which items its visitors hold.
    cohortCounts: recall(() => popularExcept(-1)),
  };
}

/** Every BLOB of every table of the SQLite file at `path`, by table. */
function blobsOf(path: string): Map<string, Uint8Array[]> {
  const db = new Database(path, { readonly: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
      name: string;
    }[];
    const out = new Map<string, Uint8Array[]>();
    for (const { name } of tables) {
      for (const row of db.prepare(`SELECT * FROM "${name}"`).all() as Record<string, unknown>[]) {
        for (const value of Object.values(row)) {
          if (value instanceof Uint8Array && value.length > 0) {
            out.set(name, [...(out.get(name) ?? []), value]);
          }
        }
      }
    }
    return out;
  } finally {
    db.close();
  }
}

describe('attacks on what the server keeps after a round: its database file', () => {
  const clip = 1;
  const layout: UpdateLayout = { kind: 'full' };
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-attack-db-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function serve(name: string, overrides: Parameters<typeof resolveConfig>[0]) {
    const seed = await writeSeedDir('float32', weights, {
      dims,
      itemIds: manifestWith().itemIds,
    });
    const path = join(dir, `${name}.db`);
    const server = await startServer(
      resolveConfig({
        port: 0,
        dbPath: path,
        modelDir: seed.dir,
        weightsDtype: 'float32',
        noiseMultiplier: 0,
        clipNorm: clip,
        joinsPerRound: 0,
        ...overrides,
      }),
    );
    return { server, path, manifest: seed.manifest, cleanup: seed.cleanup };
  }

  it('secure: the file holds nothing per device, and its versions name no more than popularity', async () => {
    // 24 visitors in one real secure round over HTTP (the worker's client), then everything the
    // SQLite file holds: the published change v2 - v1 is the only signal, the sum of 24 updates.
    const n = 24;
    const { deltas, recall, popularity, cohortCounts } = await visitorsWithUpdates(n, 17, clip);
    const { server, path, cleanup } = await serve('secure', {
      aggregation: 'secure',
      minCohort: n,
      secureCohort: n,
    });
    try {
      const outcomes = await Promise.all(
        deltas.map((delta) =>
          takePartSecurely({
            endpoint: server.url,
            expected: { minimum: n, clipNorm: clip },
            input: () => delta,
          }),
        ),
      );
      for (const outcome of outcomes) expect(outcome).toMatchObject({ status: 'published' });
    } finally {
      await server.close();
      await cleanup();
    }
    const blobs = blobsOf(path);
    // Per-device tables are empty; what is left is the versions' weights (and nothing else).
    expect([...blobs.keys()]).toEqual(['version_weights']);
    const [v1, v2] = blobs.get('version_weights')!.map((bytes) => bytesToFloat32(bytes));
    const change = v2!.map((w, j) => w - v1![j]!);
    const rows = recall(() => rowsAttack(change, dims, layout));
    const projection = recall(() => projectionAttack(change, dims, layout, weights));
    // The sum holds each visitor's own update, so it may name a visitor's items a little more often
    // than the others' popularity does (the projection attack's hits vary a little from run to run
    // about it); it names them less often than the cohort's item counts, the most a sum can tell.
    expect(cohortCounts).toBeGreaterThan(popularity);
    expect(rows).toBeLessThan(cohortCounts);
    expect(projection).toBeLessThan(cohortCounts);
    // The same attacks on each device's own plaintext update (what plaintext mode receives) work.
    expect(recall((i) => rowsAttack(deltas[i]!, dims, layout))).toBeGreaterThan(0.9);
  }, 120_000);

  it('plaintext: the file holds each update while its round collects, and the attack reads it', async () => {
    const n = 6;
    const { deltas, sessions } = await visitorsWithUpdates(n, 23, clip);
    const { server, path, manifest, cleanup } = await serve('plaintext', {
      aggregation: 'plaintext',
      minCohort: n + 1, // the round stays open: its updates stay in the file
    });
    try {
      for (const delta of deltas) {
        const ticket = await joinRound(server.url);
        const res = await fetch(`${server.url}${PATHS.updates}`, {
          method: 'POST',
          headers: { 'content-type': UPDATE_CONTENT_TYPE },
          body: new Uint8Array(
            updateBody({ token: ticket.token, delta, layoutHash: manifest.layoutHash }),
          ),
        });
        expect(res.status).toBe(202);
      }
    } finally {
      await server.close();
      await cleanup();
    }
    const stored = blobsOf(path)
      .get('update_vectors')!
      .map((bytes) => bytesToDelta(bytes));
    expect(stored).toHaveLength(n);
    // Each stored vector names its visitor's items (stored in arrival order, the visitors' order).
    let recall = 0;
    stored.forEach((delta, i) => {
      recall += scoreGuess(rowsAttack(delta, dims, layout), new Set(sessions[i])).recall;
    });
    expect(recall / n).toBeGreaterThan(0.9);
  }, 60_000);
});
