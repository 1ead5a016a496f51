/**
 * Compact updates on the real server: each version's manifest names the item rows an update
 * carries after the dense tensors (`--update-rows`); the server takes only updates of that length,
 * folds a round in its layout (everything else keeps its value), and carries a stale update into
 * the current version's layout, also when a round publishes while the update is being stored.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  gatherLayout,
  manifestLayout,
  rowOffsets,
  scatterLayout,
  updateLength,
  modelLayout,
  type ModelLayout,
  type UpdateLayout,
} from '../protocol/update-layout.js';
import { resolveConfig } from './config.js';
import { ingestUpdate, maxParamsFor } from './ingest.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';
import {
  DIMS,
  PARAMS,
  joinRound,
  layoutDelta,
  moveOfRound,
  makeApp,
  postUpdate,
  servedModel,
  servedWeights,
  staleUpdateRound,
  serveStore,
  updateBody,
  type ServedStore,
  worstDifference,
} from './test-helpers.js';

let closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.reverse()) await close();
  closers = [];
});

/** Three rows of five (the test model has items 1..5): adjacent versions share one. */
const ROWS = { updateRows: 3, rowChoice: 'window' } as const;

/** The full-model change `compact` makes in `layout` (zero elsewhere). */
function spread(compact: Float32Array, layout: UpdateLayout): Float32Array {
  const out = new Float32Array(PARAMS);
  scatterLayout(compact, DIMS, modelLayout(layout), out);
  return out;
}

describe('compact updates (--update-rows)', () => {
  it('names rows per version, refuses the whole model, and moves only the layout', async () => {
    const t = await makeApp({ ...ROWS, minCohort: 2, maxStaleness: 0 });
    closers.push(t.close);
    const v1 = await servedModel(t.app);
    const rows = v1.federation.updateRows!;
    expect(rows).toHaveLength(3);
    const layout = manifestLayout(v1.federation);
    const length = updateLength(DIMS, layout);
    expect(length).toBeLessThan(PARAMS);

    const a = await joinRound(t.app);
    const whole = await postUpdate(t.app, updateBody({ token: a.token }));
    expect(whole.statusCode).toBe(422);
    expect(whole.json()).toMatchObject({ error: { code: 'HEARTH_E_UPDATE_SHAPE' } });

    const b = await joinRound(t.app);
    const deltas = [layoutDelta(length, 0.5, 1), layoutDelta(length, 0.5, 2)];
    // FedAvg with the equal-weight mean at lr 1: v2 = v1 + mean, on the layout's coordinates only.
    const { mean, moved } = await moveOfRound(t.app, [a.token, b.token], deltas);
    expect(worstDifference(moved, spread(mean, layout))).toBeLessThan(5e-6);

    const v2 = await servedModel(t.app);
    expect(v2.version).toBe(2);
    expect(v2.federation.updateRows).toHaveLength(3);
    expect(v2.federation.updateRows).not.toEqual(rows);
  });

  it('carries a stale update into the current layout: rows both name kept, the others dropped', async () => {
    const t = await makeApp({ ...ROWS, minCohort: 1, maxStaleness: 1 });
    closers.push(t.close);
    const { from, to, stale, change } = await staleUpdateRound(t.app);
    expect(worstDifference(change, expectedFit(stale, from, to))).toBeLessThan(5e-6);
  });

  it('fits an update again when a round publishes while it is being stored', async () => {
    const store = new SqliteStore(':memory:');
    closers.push(() => store.close());
    const s: ServedStore = await serveStore(store, { ...ROWS, minCohort: 1, maxStaleness: 1 });
    closers.push(s.close);
    const v1 = await servedModel(s.app);
    const from = manifestLayout(v1.federation);
    const length = updateLength(DIMS, from);
    const mine = await joinRound(s.app);
    const other = await joinRound(s.app);
    // The first time the update reaches the store, another device's update publishes v2 first.
    let raced = false;
    const racing = new Proxy(store, {
      get(target, key) {
        if (key === 'submitUpdate') {
          return async (...args: Parameters<Store['submitUpdate']>) => {
            if (!raced) {
              raced = true;
              const body = updateBody({ token: other.token, delta: layoutDelta(length, 0.5, 5) });
              expect((await postUpdate(s.app, body)).statusCode).toBe(202);
            }
            return target.submitUpdate(...args);
          };
        }
        const value: unknown = Reflect.get(target, key);
        return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
      },
    });
    const config = resolveConfig({ noiseMultiplier: 0, ...ROWS, minCohort: 1, maxStaleness: 1 });
    const stale = layoutDelta(length, 0.5, 6);
    const reply = await ingestUpdate(updateBody({ token: mine.token, delta: stale }), {
      store: racing,
      config,
      maxParams: maxParamsFor(1 << 20),
    });
    expect(raced).toBe(true);
    expect(reply).toMatchObject({ accepted: true, version: 3 });
    const to = manifestLayout((await store.getManifest(2))!.federation);
    const v2w = await servedWeights(s.app, 2);
    const change = (await servedWeights(s.app, 3)).map((w, i) => w - v2w[i]!);
    expect(worstDifference(change, expectedFit(stale, from, to))).toBeLessThan(5e-6);
  });
});

/**
 * The full-model change a stale update in layout `from` makes in a round in layout `to`, worked
 * out coordinate by coordinate: its dense part, and the rows of `from` that `to` also names.
 */
function expectedFit(stale: Float32Array, from: UpdateLayout, to: UpdateLayout): Float32Array {
  const full = new Float32Array(PARAMS);
  scatterLayout(stale, DIMS, modelLayout(from), full);
  const out = new Float32Array(PARAMS);
  // The empty row list is the dense tensors alone.
  const none: ModelLayout = { kind: 'rows', rows: [] };
  scatterLayout(
    gatherLayout(full, DIMS, none, new Float32Array(updateLength(DIMS, none))),
    DIMS,
    none,
    out,
  );
  const at = rowOffsets(DIMS, { kind: 'full' });
  const named = from.kind === 'rows' ? from.rows : [];
  const kept = to.kind === 'rows' ? to.rows.filter((r) => named.includes(r)) : named;
  expect(kept.length).toBeGreaterThan(0);
  for (const row of kept) {
    for (let k = 0; k < DIMS.embedding; k++)
      out[at.embedding(row) + k] = full[at.embedding(row) + k]!;
    out[at.bias(row)] = full[at.bias(row)]!;
  }
  return out;
}
