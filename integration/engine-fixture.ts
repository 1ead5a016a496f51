/**
 * Test helper (imported only by `*.test.ts`): a small random model exported to a temp directory and
 * the real aggregation server serving it on a free port, plus an engine config pointing at it. Lets
 * engine tests run the worker's code path in Node against a real server and a real SQLite file.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EngineConfig } from '../protocol/api.js';
import { resolveConfig } from '../server/config.js';
import { startServer, type RunningServer } from '../server/start.js';
import { exportModel } from '../tools/model-io.js';
import { SessionModel } from '../model/session-model.js';

/** Items of the fixture model, padding included; ids are `item-1` … `item-39`. */
export const FIXTURE_ITEMS = 40;

/** A running fixture. */
export interface EngineFixture {
  readonly dir: string;
  readonly server: RunningServer;
  readonly config: EngineConfig;
  close(): Promise<void>;
}

/**
 * Exports a seeded model, starts a server (min cohort 1) on it, and returns an engine config.
 * `recent` goes into the manifest as its cold-start recency order.
 */
export async function startEngineFixture(
  seed: number,
  config: Partial<EngineConfig> = {},
  recent?: readonly number[],
): Promise<EngineFixture> {
  await tf.setBackend('cpu');
  const dir = mkdtempSync(join(tmpdir(), 'hearth-engine-'));
  const model = SessionModel.random(
    { items: FIXTURE_ITEMS, embedding: 8, hidden: 8, maxSessionLength: 10 },
    seed,
  );
  await exportModel(join(dir, 'model'), model, {
    itemIds: ['', ...Array.from({ length: FIXTURE_ITEMS - 1 }, (_, i) => `item-${i + 1}`)],
    popular: [5, 4, 3, 2, 1, 6, 7, 8],
    ...(recent ? { recent } : {}),
    version: 1,
  });
  model.dispose();
  const server = await startServer(
    resolveConfig({
      aggregation: 'plaintext',
      port: 0,
      dbPath: join(dir, 'hearth.sqlite'),
      modelDir: join(dir, 'model'),
      minCohort: 1,
      // Every device takes part: these tests are about what a round does, not who joins it.
      sampleRate: 1,
    }),
  );
  return {
    dir,
    server,
    config: {
      endpoint: server.url,
      backends: ['cpu'],
      uploads: true,
      uploadEvery: 1000,
      wasmPath: 'http://127.0.0.1/unused/',
      debug: false,
      ...config,
    },
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
