/**
 * `npm run bench:storage`: how large the server's SQLite file grows under many updates.
 *
 *   npm run bench:storage -- [--updates 100000] [--min-cohort 100] [--clients 16]
 *
 * Starts the real server binary on loopback with a temp SQLite file and a small model (200 items,
 * ~2.4k parameters), then posts valid float16 updates from `--clients` concurrent clients until
 * `--updates` were accepted, and prints the database's size (the file plus its write-ahead log) at
 * each power of ten. What keeps it bounded: every update's vector is erased when its round is
 * published (server/store.ts), and only the newest WEIGHTS_KEPT versions keep their weights. What
 * still grows: one small row per update (norm, example count, times), per token and per round, and
 * each version's manifest.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import type { JoinReply, UpdateReply } from '../protocol/api.js';
import { layoutHash, parameterCount, tensorLayout, type ModelDims } from '../protocol/manifest.js';
import {
  DTYPE_FLOAT16,
  encodeUpdate,
  tokenFromHex,
  UPDATE_CONTENT_TYPE,
} from '../protocol/update-format.js';
import { exited, spawnServerCli } from '../server/cli-process.js';
import { writeSeedModel } from './seed-model.js';
import { WEIGHTS_KEPT } from '../server/store.js';
import { positiveInteger } from '../tools/lib/args.js';
import { markdownTable } from '../tools/lib/table.js';
import { secondsSince } from '../tools/lib/timing.js';

const DIMS: ModelDims = { items: 200, embedding: 8, hidden: 8, maxSessionLength: 10 };

const { values: args } = parseArgs({
  options: {
    updates: { type: 'string', default: '100000' },
    'min-cohort': { type: 'string', default: '100' },
    clients: { type: 'string', default: '16' },
  },
});
const total = Math.min(1_000_000, positiveInteger('updates', args.updates));
const minCohort = positiveInteger('min-cohort', args['min-cohort']);
const clients = Math.min(64, positiveInteger('clients', args.clients));

const PARAMS = parameterCount(tensorLayout(DIMS));
const HASH = layoutHash(tensorLayout(DIMS));

async function bytesOnDisk(db: string): Promise<number> {
  let size = 0;
  for (const file of [db, `${db}-wal`]) size += (await stat(file).catch(() => ({ size: 0 }))).size;
  return size;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-storage-'));
  const db = join(dir, 'storage.db');
  try {
    await writeSeedModel(dir, DIMS, minCohort);
    const { url, child } = await spawnServerCli([
      '--port',
      '0',
      '--db',
      db,
      '--model',
      dir,
      '--min-cohort',
      String(minCohort),
      '--aggregation',
      'plaintext',
      // Every client shares one loopback address.
      '--rate-limit',
      '0',
      '--joins-per-round',
      '0',
    ]);
    const delta = Float32Array.from({ length: PARAMS }, (_, i) => Math.cos(i));
    let norm = 0;
    for (const x of delta) norm += x * x;
    for (let i = 0; i < delta.length; i++) delta[i]! /= Math.sqrt(norm) * 2;
    let accepted = 0;
    let version = 1;
    let rounds = 0;
    const rows: string[][] = [['0', '0', '1', mib(await bytesOnDisk(db))]];
    let next = 10;
    const started = performance.now();
    const client = async (): Promise<void> => {
      while (accepted < total) {
        const join = (await (
          await fetch(`${url}/v1/rounds/join`, {
            method: 'POST',
            body: '{}',
            headers: { 'content-type': 'application/json' },
          })
        ).json()) as JoinReply;
        const body = encodeUpdate({
          dtype: DTYPE_FLOAT16,
          baseVersion: join.version,
          layoutHash: HASH,
          examples: 1,
          clipNorm: 1,
          roundToken: tokenFromHex(join.token),
          delta,
        });
        const reply = await fetch(`${url}/v1/updates`, {
          method: 'POST',
          body,
          headers: { 'content-type': UPDATE_CONTENT_TYPE },
        });
        if (reply.status !== 202) continue; // a stale one: the protocol working
        const outcome = (await reply.json()) as UpdateReply;
        accepted++;
        if (outcome.version > version) {
          rounds += outcome.version - version;
          version = outcome.version;
        }
        if (accepted >= next) {
          next *= 10;
          rows.push([
            String(accepted),
            String(rounds),
            String(version),
            mib(await bytesOnDisk(db)),
          ]);
          console.log(rows.at(-1)!.join(' | '));
        }
      }
    };
    await Promise.all(Array.from({ length: clients }, client));
    const seconds = secondsSince(started);
    child.kill('SIGTERM');
    await exited(child);
    rows.push([
      `${accepted} (stopped)`,
      String(rounds),
      String(version),
      mib(await bytesOnDisk(db)),
    ]);
    console.log(
      `\n${PARAMS} parameters (${kib(PARAMS * 4)} a version's float32 weights, ${kib(PARAMS * 2)} an ` +
        `update's float16 body), m = ${minCohort}, ${clients} clients, ${seconds.toFixed(0)} s; ` +
        `weights kept for the newest ${WEIGHTS_KEPT} versions\n`,
    );
    console.log(
      markdownTable(['updates accepted', 'rounds published', 'version', 'database + WAL'], rows),
    );
    // Where the bytes are, by table and index (SQLite's dbstat), and how much is free for reuse.
    const file = new Database(db, { readonly: true });
    const tables = file
      .prepare('SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC')
      .all() as { name: string; bytes: number }[];
    const pageSize = file.pragma('page_size', { simple: true }) as number;
    const free = (file.pragma('freelist_count', { simple: true }) as number) * pageSize;
    file.close();
    console.log(
      `\n${markdownTable(
        ['table or index', 'size', 'per update'],
        [
          ...tables.map((t) => [t.name, mib(t.bytes), `${(t.bytes / accepted).toFixed(0)} B`]),
          ['(free pages)', mib(free), ''],
        ],
      )}`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
