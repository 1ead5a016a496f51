import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import {
  layoutHash,
  parameterCount,
  splitFlat,
  tensorLayout,
  type ModelDims,
} from '../protocol/manifest.js';
import { buildApp } from './app.js';
import { resolveConfig, type ServerConfig } from './config.js';
import { seedIfEmpty } from './seed.js';
import { SqliteStore } from './sqlite-store.js';
import type { StatsReply } from './stats.js';
import {
  joinRound,
  makeDelta,
  postUpdate,
  updateBody,
  writeSeedDir,
  type SeedModel,
} from './test-helpers.js';
import { HIT_RATE_K, parseValidationSessions, validationPairs } from './validation.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function app(
  overrides: Partial<ServerConfig>,
  validation?: string,
  seedModel?: { weights: Float32Array; model: SeedModel },
): Promise<{ app: FastifyInstance; store: SqliteStore }> {
  const seed = await writeSeedDir('float32', seedModel?.weights, seedModel?.model);
  const config = resolveConfig({
    aggregation: 'plaintext',
    noiseMultiplier: 0,
    dbPath: ':memory:',
    modelDir: seed.dir,
    operatorToken: OPERATOR,
    ...overrides,
  });
  const store = new SqliteStore(':memory:');
  await seedIfEmpty(store, config);
  const built = buildApp({
    store,
    config,
    ...(validation === undefined ? {} : { validation: parseValidationSessions(validation) }),
  });
  cleanups.push(async () => {
    await built.close();
    await store.close();
    await seed.cleanup();
  });
  return { app: built, store };
}

/** The operator token of these tests' servers. */
const OPERATOR = 'operator-token-of-the-tests';

/** The stats as the operator sees them (or, with `token` null, as anyone does). */
async function stats(
  server: FastifyInstance,
  token: string | null = OPERATOR,
): Promise<StatsReply> {
  const res = await server.inject({
    method: 'GET',
    url: '/v1/stats',
    ...(token === null ? {} : { headers: { authorization: `Bearer ${token}` } }),
  });
  expect(res.statusCode).toBe(200);
  expect(res.headers['cache-control']).toBe('no-store');
  return res.json<StatsReply>();
}

/** A model of 29 items, more than K, so that whether a target is in the top K depends on it. */
const RANKED_DIMS: ModelDims = { items: 30, embedding: 2, hidden: 2, maxSessionLength: 5 };
const RANKED_LAYOUT = tensorLayout(RANKED_DIMS);
const RANKED: SeedModel = {
  dims: RANKED_DIMS,
  itemIds: Array.from({ length: RANKED_DIMS.items }, (_, i) => (i === 0 ? '' : `i${i}`)),
};

/**
 * Flat weights of RANKED_DIMS that are zero but for the item biases. Every other term of an item's
 * score is a product with a zero embedding or hidden state, so each item scores its bias.
 */
function biasOnly(bias: (item: number) => number): Float32Array {
  const flat = new Float32Array(parameterCount(RANKED_LAYOUT));
  const itemBias = splitFlat(flat, RANKED_LAYOUT).get('item_bias')!;
  for (let i = 0; i < itemBias.length; i++) itemBias[i] = bias(i);
  return flat;
}

/** Posts one update of `norm` through join + update. */
async function contribute(server: FastifyInstance, norm: number, salt: number, base = 1) {
  const ticket = await joinRound(server);
  const res = await postUpdate(
    server,
    updateBody({ token: ticket.token, baseVersion: base, delta: makeDelta(norm, salt) }),
  );
  expect(res.statusCode).toBe(202);
}

describe('GET /v1/stats', () => {
  it('reports rounds, participants, received norms and the clipped fraction', async () => {
    const { app: server } = await app({ minCohort: 2 });
    const empty = await stats(server);
    expect(empty).toMatchObject({ rounds: [], norms: { count: 0, clippedFraction: null } });
    expect(empty.hitRate).toEqual({ k: 20, configured: false, versions: [] });

    // 1.0005 is within the float16 slack: accepted, then re-clipped, so it counts as clipped.
    await contribute(server, 0.5, 1);
    await contribute(server, 1.0005, 2);
    await contribute(server, 0.25, 3, 2);
    const reply = await stats(server);
    expect(reply.rounds.map((r) => [r.round, r.status, r.participants])).toEqual([
      [1, 'published', 2],
      [2, 'collecting', 1],
    ]);
    expect(reply.rounds[0]).toMatchObject({ publishedVersion: 2, clippedFraction: 0.5 });
    expect(reply.rounds[0]!.medianNorm).toBeCloseTo((0.5 + 1.0005) / 2, 5);
    expect(reply.rounds[0]!.publishedAt).toMatch(/^\d{4}-/);
    const norms = reply.norms!;
    expect(reply.view).toBe('operator');
    expect(norms.count).toBe(3);
    expect(norms.clippedFraction).toBeCloseTo(1 / 3, 12);
    expect(norms.counts.reduce((a, b) => a + b, 0)).toBe(3);
    expect(norms.edges).toHaveLength(norms.counts.length + 1);
    expect(norms.edges.at(-1)).toBeCloseTo(1.0005, 5);
    // Noise off: the round is in the ledger, with no finite epsilon.
    expect(reply.epsilon).toEqual([
      { round: 1, version: 2, publishedAt: reply.rounds[0]!.publishedAt, epsilon: null },
    ]);
  });

  it('shows anyone else only published rounds: no norms, no opening times, hours', async () => {
    const { app: server } = await app({ minCohort: 2 });
    await contribute(server, 0.5, 1);
    await contribute(server, 1.0005, 2);
    // One upload in the collecting round: its count and norm would be that upload's.
    await contribute(server, 0.25, 3, 2);
    const full = await stats(server);
    for (const token of [null, 'not-the-operator-token', 'site-key-000000000000']) {
      const seen = await stats(server, token);
      expect(seen.view).toBe('public');
      expect(seen.norms).toBeNull();
      expect(seen.rounds).toEqual([
        {
          ...full.rounds[0]!,
          openedAt: null,
          publishedAt: `${full.rounds[0]!.publishedAt!.slice(0, 13)}:00:00.000Z`,
          clippedFraction: null,
          medianNorm: null,
        },
      ]);
      expect(seen.epsilon.map((e) => e.publishedAt)).toEqual([seen.rounds[0]!.publishedAt]);
    }
  });

  it('reports epsilon growing round by round with noise on', async () => {
    const { app: server } = await app({ minCohort: 1, noiseMultiplier: 1, sampleRate: 0.1 });
    for (let v = 1; v <= 3; v++) await contribute(server, 0.5, v, v);
    const curve = (await stats(server)).epsilon.map((e) => e.epsilon!);
    expect(curve).toHaveLength(3);
    expect(curve[0]).toBeGreaterThan(0);
    expect(curve[1]).toBeGreaterThan(curve[0]!);
    expect(curve[2]).toBeGreaterThan(curve[1]!);
    const privacy = await server.inject({ method: 'GET', url: '/v1/privacy' });
    expect(curve[2]).toBeCloseTo(privacy.json<{ epsilon: number }>().epsilon, 12);
  });

  it('evaluates HR@20 of every version on the validation sessions', async () => {
    expect(HIT_RATE_K).toBe(20);
    // Item i scores -i / 100, so it ranks i-th: a target is a hit exactly when its index is <= 20.
    const weights = biasOnly((i) => -i / 100);
    const sessions = 'i1 i5 i25\ni2 x i21\n\ni3 i19\nx\n';
    const pairs = validationPairs(parseValidationSessions(sessions), RANKED.itemIds);
    // 'x' is not in the catalogue: i1 i5 i25 -> 2 pairs, i2 i21 -> 1, i3 i19 -> 1.
    expect(pairs.map((p) => p.target)).toEqual([5, 25, 21, 19]);
    const { app: server } = await app({ minCohort: 1 }, sessions, { weights, model: RANKED });
    // Version 2 lifts item 25 to the top (bias -0.25 + 0.9): it becomes rank 1, which pushes 21 to
    // rank 22 and 19 to rank 20; 5 stays in the top 20.
    const delta = new Float32Array(weights.length);
    splitFlat(delta, RANKED_LAYOUT).get('item_bias')![25] = 0.9;
    const ticket = await joinRound(server);
    const body = updateBody({
      token: ticket.token,
      delta,
      layoutHash: layoutHash(RANKED_LAYOUT),
    });
    expect((await postUpdate(server, body)).statusCode).toBe(202);
    let reply = await stats(server);
    for (let i = 0; i < 200 && reply.hitRate.versions.length < 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      reply = await stats(server);
    }
    expect(reply.hitRate.configured).toBe(true);
    expect(reply.hitRate.versions.map((v) => v.version)).toEqual([1, 2]);
    // Version 1: 5 and 19 of 5, 25, 21, 19. Version 2: 5, 25 and 19.
    expect(reply.hitRate.versions).toEqual([
      { version: 1, hr: 2 / 4 },
      { version: 2, hr: 3 / 4 },
    ]);
  });
});

describe('GET /dashboard', () => {
  it('serves the page, its chart script and uPlot from this server', async () => {
    const { app: server } = await app({});
    const page = await server.inject({ method: 'GET', url: '/dashboard' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('<script type="module" src="dashboard/dashboard.js"></script>');
    expect(page.body).toContain('href="dashboard/uplot.min.css"');
    expect(page.body).toMatch(/<h1>[^<]+<\/h1>/);
    expect(page.body).not.toMatch(/https?:\/\/(?!127)/);

    const script = await server.inject({ method: 'GET', url: '/dashboard/dashboard.js' });
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toMatch(/^text\/javascript/);
    expect(script.body).toContain("from './uplot.esm.js'");
    expect(script.body).toContain("'../v1/stats'");
    expect(script.body).toContain("createElement('table')");

    const uplot = await server.inject({ method: 'GET', url: '/dashboard/uplot.esm.js' });
    expect(uplot.statusCode).toBe(200);
    expect(uplot.body).toContain('export { uPlot as default }');
    const css = await server.inject({ method: 'GET', url: '/dashboard/uplot.min.css' });
    expect(css.statusCode).toBe(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
  });
});
