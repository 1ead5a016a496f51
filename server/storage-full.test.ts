/**
 * A full disk: the request that found it is answered 503 HEARTH_E_STORAGE_FULL (with retry-after),
 * nothing of it is kept, and the server serves again by itself once there is room. SQLite's page
 * limit stands in for the disk (PRAGMA max_page_count on the store's own connection).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { ErrorReply, UpdateReply } from '../protocol/api.js';
import { isStorageFull, toErrorReply } from './http-errors.js';
import { makeApp, makeDelta, postUpdate, updateBody } from './test-helpers.js';

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

describe('a full disk', () => {
  it('is recognised from SQLite, the system and PostgreSQL', () => {
    for (const code of ['SQLITE_FULL', 'ENOSPC', '53100']) {
      expect(isStorageFull(Object.assign(new Error('full'), { code }))).toBe(true);
      expect(toErrorReply(Object.assign(new Error('full'), { code }))).toMatchObject({
        status: 503,
        body: { error: { code: 'HEARTH_E_STORAGE_FULL' } },
        internal: true,
      });
    }
    expect(isStorageFull(Object.assign(new Error('x'), { code: 'SQLITE_BUSY' }))).toBe(false);
  });

  it('answers 503 with a code, keeps nothing of that request, and resumes when room returns', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-full-'));
    const made = await makeApp({ minCohort: 3, dbPath: join(dir, 'hearth.db') });
    close = async () => {
      await made.close();
      await rm(dir, { recursive: true, force: true });
    };
    const { app, store } = made;
    const db = (store as unknown as { db: Database.Database }).db;
    // No page more than the file has now: the first write that needs one fails.
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    let full: {
      token: string;
      body: ReturnType<typeof updateBody>;
      counts: Awaited<ReturnType<typeof store.counts>>;
    };
    for (let k = 0; ; k++) {
      expect(k, 'the database never filled up').toBeLessThan(20);
      const join = await app.inject({ method: 'POST', url: '/v1/rounds/join' });
      if (join.statusCode === 503) {
        expect(join.json<ErrorReply>().error.code).toBe('HEARTH_E_STORAGE_FULL');
        continue;
      }
      const { token, version } = join.json<{ token: string; version: number }>();
      const body = updateBody({ token, baseVersion: version, delta: makeDelta(0.5, k) });
      const counts = await store.counts();
      const res = await postUpdate(app, body);
      if (res.statusCode === 202) continue;
      expect(res.statusCode).toBe(503);
      expect(res.json<ErrorReply>().error.code).toBe('HEARTH_E_STORAGE_FULL');
      expect(res.headers['retry-after']).toBe('60');
      full = { token, body, counts };
      break;
    }
    // Nothing of the refused request was kept: not the update, not its token's use.
    expect(await store.counts()).toEqual(full.counts);
    // Room again: the same update is taken without a restart.
    db.pragma('max_page_count = 1073741823');
    const retried = await postUpdate(app, full.body);
    expect(retried.statusCode).toBe(202);
    expect(retried.json<UpdateReply>().accepted).toBe(true);
    expect((await store.counts()).updates).toBe(full.counts.updates + 1);
  });
});
