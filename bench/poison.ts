/**
 * `npm run bench:poison`: how many fake clients it takes to take over the model.
 *
 *   npm run bench:poison -- [--ks 1,5,10,20,33,50,75] [--rounds 10] [--min-cohort 100]
 *     [--presets defaults,hardened,guarded,secure]
 *
 * Bounded and on loopback only: a real server (`startServer`, a temp SQLite file, 127.0.0.1, a port
 * of its choosing) on the synthetic model `npm start` trains, and every client a real HTTP client
 * bound to a loopback address of its own (127.1.x.y for honest devices; the attacker either one
 * address, 127.2.0.1, or one each, 127.3.x.y). Each round, the k fake clients join and post first,
 * then honest devices fill the round: each trains on one session of the synthetic log with the
 * device's batched local training (model/local-update.ts) from the current global model, clipped to
 * S. The fake clients all send one update of norm S (the most a client may send), made each round
 * one of two ways: `trained`, the device's training on poisoned sessions (the measurement sessions'
 * prefixes followed by one chosen item, the least popular one); `bias`, all of S on the chosen
 * item's bias, the most direct push on its score. The summary takes whichever needs fewer.
 *
 * For each preset and attacker (one address, many), and each k, it prints (a) how far a round moved
 * the model along the attacker's update, in units of S / m, averaged over the rounds, and how much
 * of that is beyond what the same rounds move without attackers (honest devices train towards much
 * the same; one round's figure alone carries the noise, std z S / m); > 2 S/m beyond is "moved a
 * round"; and (b) the share of measurement sessions whose top-1 is the chosen item after the
 * rounds; then the smallest k that reaches each. Presets (the first three in plaintext mode, where the
 * bench posts each update itself):
 *   defaults  the server's defaults but plaintext (m = 100, noise z = 1.2, equal-weight mean, one
 *             update per client identity per round, rate limit 600/min);
 *   hardened  no noise, a 20% trimmed mean (robust aggregation, which cannot be combined with noise);
 *   guarded   hardened, and `--round-guard rollback` over a window of 10 rounds (server/round-guard.ts):
 *             a round whose updates point alike, or sit at S, beyond the window is undone. Its trials
 *             start with 10 honest rounds, so that the window holds normal rounds when the attack
 *             begins; the rounds after are measured as in the other presets.
 *   secure    the server's defaults, secure mode included: every device, honest or fake, takes part
 *             through the worker's secure client (worker/secure-client.ts), k fake and m - k honest
 *             devices forming each round; the round guard judges each unmasked sum (its default
 *             there: rollback, which abandons the round). The server cannot check one input's norm,
 *             so each fake device sends its update scaled up as far as the client's encoding lets
 *             it (every coordinate up to S); `bias` then pushes every other item's bias down by S as
 *             well. All devices reach the server from 127.0.0.1, so the join budget and rate limit
 *             are off: the attacker with one address per fake client. Trials start with 5 honest
 *             rounds (the fewest the guard judges with).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { JoinReply, UpdateReply } from '../protocol/api.js';
import { clipL2InPlace } from '../protocol/clip.js';
import { parseManifest, splitFlat, type ModelManifest } from '../protocol/manifest.js';
import { PATHS } from '../protocol/routes.js';
import {
  gatherLayout,
  manifestLayout,
  updateLength,
  type ModelLayout,
} from '../protocol/update-layout.js';
import {
  DTYPE_FLOAT16,
  encodeUpdate,
  tokenFromHex,
  UPDATE_CONTENT_TYPE,
} from '../protocol/update-format.js';
import { decodeWeights } from '../protocol/weights-codec.js';
import { localUpdates, type LocalUpdateSettings } from '../model/local-update.js';
import { takePartSecurely } from '../worker/secure-client.js';
import { referenceScores } from '../model/reference-forward.js';
import { resolveConfig, type ServerConfig } from '../server/config.js';
import { MIN_WINDOW } from '../server/round-guard.js';
import { startServer, type RunningServer } from '../server/start.js';
import { syntheticDataset } from '../tools/data/synthetic.js';
import { positiveInteger } from '../tools/lib/args.js';
import { markdownTable } from '../tools/lib/table.js';
import { trainAndExport } from '../tools/train/index.js';

const { values: args } = parseArgs({
  options: {
    ks: { type: 'string', default: '1,5,10,20,33,50,75' },
    rounds: { type: 'string', default: '10' },
    'min-cohort': { type: 'string', default: '100' },
    sessions: { type: 'string', default: '200' },
    presets: { type: 'string' },
  },
});
const rounds = Math.min(20, positiveInteger('rounds', args.rounds));
const m = Math.min(500, positiveInteger('min-cohort', args['min-cohort']));
const measured = positiveInteger('sessions', args.sessions);
const ks = args.ks.split(',').map((k) => positiveInteger('ks', k));
if (ks.some((k) => k >= m)) throw new Error(`every k must be below m = ${m}`);

const PRESETS: Record<string, Partial<ServerConfig>> = {
  defaults: {},
  hardened: { noiseMultiplier: 0, aggregator: 'trimmed-mean', trimFraction: 0.2 },
  guarded: {
    noiseMultiplier: 0,
    aggregator: 'trimmed-mean',
    trimFraction: 0.2,
    roundGuard: 'rollback',
    roundGuardWindow: 10,
  },
  // The defaults' own mode: every device takes part through the worker's secure client. All of
  // them reach the server from one loopback address here, so the join budget is off: this is the
  // attacker with one address per fake client.
  secure: { aggregation: 'secure', joinsPerRound: 0, rateLimitPerMinute: 0, roundGuardWindow: 10 },
};

const isSecure = (preset: Partial<ServerConfig>): boolean => preset.aggregation === 'secure';

/** The presets this run measures (`--presets a,b`; all by default). */
const presets = Object.entries(PRESETS).filter(
  ([name]) => args.presets === undefined || args.presets.split(',').includes(name),
);
if (presets.length === 0) throw new Error(`--presets names none of ${Object.keys(PRESETS)}`);

/**
 * Honest rounds before the attack, so that a preset's round guard has a window of normal rounds
 * (it learns what is normal from the rounds it sees; an attack from the first round is the norm).
 */
const warmupRounds = (preset: Partial<ServerConfig>): number =>
  preset.roundGuard === 'rollback'
    ? (preset.roundGuardWindow ?? 20)
    : isSecure(preset)
      ? MIN_WINDOW
      : 0;

const HONEST: Omit<LocalUpdateSettings, 'seed'> = {
  steps: 4,
  learningRate: 0.01,
  mu: 0.1,
  negatives: 64,
};
const ATTACK: Omit<LocalUpdateSettings, 'seed'> = {
  steps: 30,
  learningRate: 0.05,
  mu: 0,
  negatives: 64,
};

/** One HTTP request from `localAddress` (a loopback address: the client identity the server sees). */
function send(
  url: string,
  localAddress: string,
  body?: Uint8Array,
  contentType = 'application/json',
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const payload = body ?? Buffer.from('{}');
    const req = request(
      url,
      {
        method: 'POST',
        localAddress,
        headers: { 'content-type': contentType, 'content-length': payload.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function getJson<T>(url: string): Promise<T> {
  return (await (await fetch(url)).json()) as T;
}

/** The current global model as a device downloads it. */
async function globalModel(server: RunningServer): Promise<{
  manifest: ModelManifest;
  weights: Float32Array;
  layout: ModelLayout;
}> {
  const manifest = parseManifest(await getJson(`${server.url}${PATHS.model}`));
  const bytes = new Uint8Array(
    await (await fetch(new URL(manifest.weights.url, server.url))).arrayBuffer(),
  );
  const weights = decodeWeights(bytes, manifest.tensors, manifest.weights.dtype);
  const layout = manifestLayout(manifest.federation);
  // The attack and its measure are written in the model's coordinates (the synthetic catalogue
  // is within the server's rows and buckets: the whole model).
  if (layout.kind === 'sketch') throw new Error('bench:poison runs on rows or the whole model');
  return { manifest, weights, layout };
}

/** Joins and posts one update from `address`; true when the server took it. */
async function post(
  server: RunningServer,
  address: string,
  manifest: ModelManifest,
  delta: Float32Array,
): Promise<{ accepted: boolean; published: boolean }> {
  const join = await send(`${server.url}${PATHS.join}`, address);
  if (join.status !== 200) return { accepted: false, published: false };
  const ticket = JSON.parse(join.body.toString()) as JoinReply;
  const body = encodeUpdate({
    dtype: DTYPE_FLOAT16,
    baseVersion: manifest.version,
    layoutHash: manifest.layoutHash,
    examples: 1,
    clipNorm: manifest.federation.clipNorm,
    roundToken: tokenFromHex(ticket.token),
    delta,
  });
  const reply = await send(`${server.url}${PATHS.updates}`, address, body, UPDATE_CONTENT_TYPE);
  if (reply.status !== 202) return { accepted: false, published: false };
  const outcome = JSON.parse(reply.body.toString()) as UpdateReply;
  return { accepted: true, published: outcome.version > manifest.version };
}

const clip = (delta: Float32Array, S: number): Float32Array => {
  // Scaled to norm S exactly (minus float16 headroom): the most one update may carry.
  let sq = 0;
  for (const x of delta) sq += x * x;
  const norm = Math.sqrt(sq);
  const scale = norm > 0 ? (S * (1 - 1e-3)) / norm : 0;
  return delta.map((x) => x * scale);
};

const address = (prefix: number, n: number) => `127.${prefix}.${(n >> 8) & 255}.${n & 255 || 1}`;

interface Trial {
  readonly moved: number;
  readonly top1: number;
  readonly fakeAccepted: number;
  /** Attacked rounds whose base weights the round guard published again. */
  readonly rolledBack: number;
}

/** How the fake clients push: trained on poisoned sessions, or all of S on the item's bias. */
type Attack = 'trained' | 'bias';

/**
 * The fake clients' update for the round, in the round's layout: norm S (plaintext, where the
 * server refuses more), or as large as the secure client's encoding lets through (`clamped`: every
 * coordinate up to S, which the server cannot check).
 */
function fakeUpdate(
  attack: Attack,
  manifest: ModelManifest,
  weights: Float32Array,
  layout: ModelLayout,
  poisoned: { items: number[] }[],
  target: number,
  seed: number,
  clamped = false,
): Float32Array {
  const S = manifest.federation.clipNorm;
  const length = updateLength(manifest.dims, layout);
  let delta: Float32Array;
  if (attack === 'trained') {
    delta = localUpdates(manifest.dims, weights, [poisoned], layout, { ...ATTACK, seed })
      .deltas[0]!;
  } else {
    const full = new Float32Array(weights.length);
    const bias = splitFlat(full, manifest.tensors).get('item_bias')!;
    // Clamped, the other items' biases can be pushed down as far as the chosen one's is pushed up.
    if (clamped) bias.fill(-S, 1);
    bias[target] = S;
    delta = gatherLayout(full, manifest.dims, layout, new Float32Array(length));
  }
  if (!clamped) return clip(delta, S);
  let top = 0;
  for (const x of delta) top = Math.max(top, Math.abs(x));
  const scale = top > 0 ? (S * (1 - 1e-3)) / top : 0;
  return delta.map((x) => x * scale);
}

/** One secure round of these updates, each through the worker's client; true if it published. */
async function secureRound(
  server: RunningServer,
  S: number,
  updates: readonly Float32Array[],
): Promise<boolean> {
  const outcomes = await Promise.allSettled(
    updates.map((delta) =>
      takePartSecurely({
        endpoint: server.url,
        expected: { minimum: m, clipNorm: S },
        input: () => delta,
      }),
    ),
  );
  const failed = outcomes.find((o) => o.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return outcomes.some(
    (o) => o.status === 'fulfilled' && 'status' in o.value && o.value.status === 'published',
  );
}

async function trial(
  modelDir: string,
  preset: Partial<ServerConfig>,
  attack: Attack,
  k: number,
  manyAddresses: boolean,
  data: { honest: number[][]; prefixes: number[][]; target: number },
): Promise<Trial> {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-poison-'));
  const server = await startServer(
    resolveConfig({
      ...preset,
      aggregation: preset.aggregation ?? 'plaintext',
      port: 0,
      host: '127.0.0.1',
      dbPath: join(dir, 'poison.sqlite'),
      modelDir,
      minCohort: m,
      logLevel: 'silent',
    }),
  );
  try {
    const poisoned = data.prefixes.map((prefix) => ({ items: [...prefix, data.target] }));
    let honestNext = 0;
    let movedSum = 0;
    let fakeAccepted = 0;
    let rolledBack = 0;
    /** m - k honest updates from the current model, trained together, clipped to S. */
    const honestUpdates = (
      { manifest, weights, layout }: Awaited<ReturnType<typeof globalModel>>,
      count: number,
      seed: number,
    ): Float32Array[] => {
      const batch = Array.from({ length: count }, () => [
        { items: data.honest[honestNext++ % data.honest.length]! },
      ]);
      const { deltas } = localUpdates(manifest.dims, weights, batch, layout, { ...HONEST, seed });
      for (const delta of deltas) clipL2InPlace(delta, manifest.federation.clipNorm * (1 - 1e-3));
      return deltas;
    };
    /** Honest devices fill the round, in batches trained together. */
    const fill = async (
      global: Awaited<ReturnType<typeof globalModel>>,
      seed: number,
    ): Promise<void> => {
      const { manifest, weights, layout } = global;
      const S = manifest.federation.clipNorm;
      if (isSecure(preset)) {
        await secureRound(server, S, honestUpdates(global, m, seed));
        return;
      }
      let device = 0;
      for (let published = false; !published;) {
        const batch = Array.from({ length: 32 }, () => [
          { items: data.honest[honestNext++ % data.honest.length]! },
        ]);
        const { deltas } = localUpdates(manifest.dims, weights, batch, layout, {
          ...HONEST,
          seed: seed + device,
        });
        for (const delta of deltas) {
          if (published) break;
          clipL2InPlace(delta, S * (1 - 1e-3));
          published = (await post(server, address(1, ++device), manifest, delta)).published;
        }
      }
    };
    for (let round = 1; round <= warmupRounds(preset); round++) {
      await fill(await globalModel(server), round * 104_729);
    }
    for (let round = 1; round <= rounds; round++) {
      const global = await globalModel(server);
      const { manifest, weights, layout } = global;
      const S = manifest.federation.clipNorm;
      const seed = round * 7919 + k;
      const fake = fakeUpdate(
        attack,
        manifest,
        weights,
        layout,
        poisoned,
        data.target,
        seed,
        isSecure(preset),
      );
      let published = false;
      if (isSecure(preset)) {
        // The k fake clients and m - k honest devices form one round together.
        const fakes = Array.from({ length: k }, () => fake);
        if (await secureRound(server, S, [...fakes, ...honestUpdates(global, m - k, seed)])) {
          fakeAccepted += k;
        }
        published = true;
      }
      for (let i = 0; i < k && !published; i++) {
        const from = manyAddresses ? address(3, i + 1) : '127.2.0.1';
        const outcome = await post(server, from, manifest, fake);
        if (outcome.accepted) fakeAccepted++;
        published = outcome.published;
      }
      if (!published) await fill(global, seed);
      // How far the round moved the model along the fake update's direction.
      const after = await globalModel(server);
      // The guard republished the round's base over it (two versions in one round), or abandoned
      // a secure round (none).
      if (after.manifest.version !== manifest.version + 1) rolledBack++;
      const length = updateLength(manifest.dims, layout);
      const before = gatherLayout(weights, manifest.dims, layout, new Float32Array(length));
      const now = gatherLayout(after.weights, manifest.dims, layout, new Float32Array(length));
      // Along the fake update's direction (norm S in plaintext; in secure rounds it may be longer).
      let norm = 0;
      for (const x of fake) norm += x * x;
      norm = Math.sqrt(norm);
      let along = 0;
      for (let j = 0; j < length; j++) along += (now[j]! - before[j]!) * (fake[j]! / norm);
      movedSum += along / (S / m);
    }
    const moved = movedSum / rounds;
    const { manifest, weights } = await globalModel(server);
    let top = 0;
    for (const prefix of data.prefixes) {
      const scores = referenceScores(manifest.dims, weights, prefix);
      let best = 1;
      for (let i = 2; i < scores.length; i++) if (scores[i]! > scores[best]!) best = i;
      if (best === data.target) top++;
    }
    return { moved, top1: top / data.prefixes.length, fakeAccepted, rolledBack };
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const dir = await mkdtemp(join(tmpdir(), 'hearth-poison-model-'));
  try {
    const model = await trainAndExport({
      dataset: 'synthetic',
      out: join(dir, 'model'),
      quiet: true,
    });
    const dataset = syntheticDataset();
    const trained = parseManifest(
      JSON.parse(await readFile(join(model.dir, 'manifest.json'), 'utf8')) as unknown,
    );
    // The sessions below are in the model's indices.
    if (trained.itemIds.join('\n') !== dataset.itemIds.join('\n')) {
      throw new Error('the trained model and the synthetic log disagree on item ids');
    }
    const popularity = dataset.popularity;
    let target = 1;
    for (let i = 1; i < popularity.length; i++)
      if (popularity[i]! < popularity[target]!) target = i;
    const prefixes = dataset.test
      .slice(0, measured)
      .map((s) => s.slice(0, Math.min(3, s.length - 1)));
    const data = { honest: dataset.train, prefixes, target };
    console.log(
      `bench:poison: synthetic model (${dataset.itemIds.length - 1} items), m = ${m}, ${rounds} rounds, ` +
        `${prefixes.length} measurement sessions, chosen item ${dataset.itemIds[target]} (the least popular)\n`,
    );
    // What the honest rounds alone move along each attack's direction: the attackers' own share is
    // what a round moves beyond it.
    const baselines = new Map<string, Trial>();
    for (const [name, preset] of presets) {
      for (const attack of ['trained', 'bias'] as const) {
        const baseline = await trial(model.dir, preset, attack, 0, true, data);
        baselines.set(`${name} ${attack}`, baseline);
        console.log(
          `No attacker (${name}, ${attack}): a round moved the model ${baseline.moved.toFixed(2)} S/m ` +
            `along the update a fake client would have sent; the chosen item is top-1 for ` +
            `${(100 * baseline.top1).toFixed(1)}% of sessions; ${baseline.rolledBack} of ` +
            `${rounds} rounds rolled back.`,
        );
      }
    }
    console.log('');
    const rows: string[][] = [];
    const summary: string[][] = [];
    for (const [name, preset] of presets) {
      // A secure preset's devices all share one loopback address, its join budget off.
      for (const many of isSecure(preset) ? [true] : [false, true]) {
        let firstA: string | undefined;
        let firstB: string | undefined;
        for (const k of ks) {
          for (const attack of ['trained', 'bias'] as const) {
            const started = performance.now();
            const t = await trial(model.dir, preset, attack, k, many, data);
            const excess = t.moved - baselines.get(`${name} ${attack}`)!.moved;
            if (firstA === undefined && excess > 2) firstA = `${k} (${attack})`;
            if (firstB === undefined && t.top1 >= 0.05) firstB = `${k} (${attack})`;
            rows.push([
              name,
              many ? 'one address each' : 'one address',
              attack,
              String(k),
              `${t.fakeAccepted} / ${k * rounds}`,
              t.moved.toFixed(2),
              excess.toFixed(2),
              `${(100 * t.top1).toFixed(1)}%`,
              `${t.rolledBack} / ${rounds}`,
              `${((performance.now() - started) / 1000).toFixed(1)} s`,
            ]);
            console.log(rows.at(-1)!.join(' | '));
          }
        }
        summary.push([
          name,
          many ? 'one address each' : 'one address',
          firstA ?? `none up to ${ks.at(-1)}`,
          firstB ?? `none up to ${ks.at(-1)}`,
        ]);
      }
    }
    console.log(
      `\n${markdownTable(
        [
          'preset',
          'fake clients from',
          'k',
          'fake updates taken',
          'a round moved (S/m)',
          'beyond no attacker (S/m)',
          'chosen item top-1',
          'rounds rolled back',
          'time',
        ],
        rows,
      )}`,
    );
    console.log(
      `\nSmallest k of m = ${m} that (a) moves a round by more than 2 S/m beyond what it moves without attackers (mean of the rounds), (b) makes the chosen item top-1 for >= 5% of sessions within ${rounds} rounds:\n\n${markdownTable(
        ['preset', 'fake clients from', '(a) k', '(b) k'],
        summary,
      )}`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
