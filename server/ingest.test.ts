/**
 * What ingestUpdate checks beyond the store: an update within the staleness bound must also fit the
 * current model's layout, which it is added to.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from './config.js';
import { ingestUpdate, maxParamsFor } from './ingest.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';
import { serveStore, runRound, joinRound, updateBody, type ServedStore } from './test-helpers.js';

let served: ServedStore | undefined;
let store: SqliteStore | undefined;
afterEach(async () => {
  await served?.close();
  await store?.close();
});

/** `inner`, except that versions from `from` on report another layout hash (a layout change). */
function relaidFrom(inner: Store, from: number): Store {
  return new Proxy(inner, {
    get(target, key) {
      if (key === 'getManifest') {
        return async (version: number) => {
          const manifest = await target.getManifest(version);
          return manifest && version >= from
            ? { ...manifest, layoutHash: (manifest.layoutHash + 1) >>> 0 }
            : manifest;
        };
      }
      const value: unknown = Reflect.get(target, key);
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
}

describe('ingestUpdate under a staleness bound', () => {
  it('refuses an update within s whose base version has another layout than the current one', async () => {
    store = new SqliteStore(':memory:');
    served = await serveStore(store, { minCohort: 1, maxStaleness: 3 });
    const late = await joinRound(served.app);
    await runRound(served.app, 1, 1);
    const config = resolveConfig({ minCohort: 1, maxStaleness: 3 });
    const body = updateBody({ token: late.token, baseVersion: 1 });
    const options = { config, maxParams: maxParamsFor(1 << 20) };
    const before = await store.counts();
    // Version 2 was published in another layout: the v1 delta does not fit it.
    await expect(
      ingestUpdate(body, { ...options, store: relaidFrom(store, 2) }),
    ).rejects.toMatchObject({
      code: 'HEARTH_E_UPDATE_SHAPE',
      message: expect.stringMatching(/v2/),
    });
    expect(await store.counts()).toEqual(before);
    // The same update, the layout unchanged: accepted into the round on version 2.
    expect(await ingestUpdate(body, { ...options, store })).toEqual({
      accepted: true,
      round: 2,
      received: 1,
      version: 3,
    });
  });
});
