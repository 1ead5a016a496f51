/**
 * Replaying visitors through the worker's own engine in Node: the Engine class the Web Worker runs,
 * its in-memory store (Node has no IndexedDB), the wasm backend chosen by the same backend ladder,
 * and the model fetched from the real aggregation server the way a device fetches it. For every
 * visitor, each next item is ranked against the whole catalogue *before* the engine sees it; then
 * it is tracked and, with online learning on, the pending update runs at once (a replay drives the
 * debounce explicitly instead of sleeping through it) before the following item is ranked.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EngineConfig, InteractionType } from '../../protocol/api.js';
import { resolveConfig } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/start.js';
import type { EngineOptions } from '../../worker/engine-options.js';
import { Engine } from '../../worker/engine.js';
import { mulberry32 } from '../../protocol/prng.js';
import { wasmDistDir } from '../tf-node.js';

/** One visitor: site item ids in the order they were met, and how they interacted. */
export interface Visitor {
  readonly items: readonly string[];
  readonly type: InteractionType;
}

/**
 * Ranks of one visitor's next items (Infinity: not rankable). `shown` ranks among the items
 * `recommend()` may return (the session's own items excluded, as the engine never re-recommends
 * them; a repeated item is a miss); `all` ranks against every item.
 */
export interface VisitorRanks {
  readonly shown: number[];
  readonly all: number[];
}

/** The model served by a real server on a free port, with a throwaway SQLite file. */
export interface ReplayServer {
  readonly server: RunningServer;
  close(): Promise<void>;
}

/** Starts the aggregation server on `modelDir` (no rounds close: nothing is uploaded anyway). */
export async function serveModel(modelDir: string): Promise<ReplayServer> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-simulate-'));
  const server = await startServer(
    resolveConfig({
      aggregation: 'plaintext',
      port: 0,
      dbPath: join(dir, 'hearth.sqlite'),
      modelDir,
      minCohort: 1_000_000,
      // The weights exactly as trained: the replay measures learning, not the download format
      // (int8 costs 0.02% of Diginetica's HR@20: README, "The server").
      weightsDtype: 'float32',
    }),
  );
  return {
    server,
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * 1-based rank of `target` in `scores`: 1 + items (padding and `excluded` aside) scoring strictly
 * higher. An excluded target cannot be shown: Infinity.
 */
export function rankOf(
  scores: Float32Array,
  target: number,
  excluded: ReadonlySet<number> = new Set(),
): number {
  const value = scores[target];
  if (value === undefined || target < 1 || Number.isNaN(value) || excluded.has(target)) {
    return Infinity;
  }
  let higher = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i]! > value && !excluded.has(i)) higher++;
  return 1 + higher;
}

/** The learning settings a replay's engine runs with (over the engine's defaults). */
export type ReplaySettings = Pick<EngineOptions, 'learning' | 'localTraining'>;

/** Replays visitors one after another through one engine, each as a fresh device. */
export class Replayer {
  private random: () => number = mulberry32(0);
  private clock = 0;
  private readonly engine: Engine;
  private indexOf = new Map<string, number>();

  private constructor(
    private readonly learn: boolean,
    settings: ReplaySettings,
  ) {
    this.engine = new Engine({
      ...settings,
      now: () => this.clock,
      random: () => this.random(),
    });
  }

  /**
   * An engine on `endpoint` with online learning on or off, wasm only, uploads off, learning under
   * `settings`.
   */
  static async start(
    endpoint: string,
    learn: boolean,
    settings: ReplaySettings = {},
  ): Promise<Replayer> {
    const replayer = new Replayer(learn, settings);
    const config: EngineConfig = {
      endpoint,
      backends: ['wasm'],
      wasmPath: wasmDistDir(),
      uploads: false,
      uploadEvery: 1_000_000,
      learn,
      debug: false,
    };
    const status = await replayer.engine.init(config);
    if (status.backend !== 'wasm' || status.modelVersion < 1) {
      throw new Error(`replay engine not ready: ${JSON.stringify(status)}`);
    }
    const manifest = (await (await fetch(new URL('/v1/model', endpoint))).json()) as {
      itemIds: string[];
    };
    replayer.indexOf = new Map(manifest.itemIds.map((id, i) => [id, i]));
    return replayer;
  }

  /**
   * Ranks of `visitor.items[1..]`, each scored from the items before it. `seed` fixes the
   * visitor's randomness; its clock starts at `start` ms and ticks a minute per interaction, so
   * the history is one session (sessions split after 30 idle minutes). With `visit` > 0 the
   * history is cut into visits of that many items a day apart instead: a returning visitor, whose
   * LSTM state starts afresh every visit, so only learning carries earlier visits forward. The
   * first item of a visit is not ranked (cold start, the same popularity list in both modes).
   */
  async replay(visitor: Visitor, seed: number, start: number, visit = 0): Promise<VisitorRanks> {
    // A fresh device: nothing stored, the global weights served, no local copy.
    await this.engine.forget();
    this.random = mulberry32(seed);
    this.clock = start;
    const shown: number[] = [];
    const all: number[] = [];
    let seen = new Set<number>();
    for (let t = 0; t < visitor.items.length; t++) {
      const opens = visit > 0 && t > 0 && t % visit === 0;
      if (opens) {
        // The engine only excludes the current session's items: so does the ranking.
        seen = new Set();
        this.clock += 24 * 3600_000;
      } else if (t > 0) {
        const scores = await this.engine.sessionScores();
        const target = this.indexOf.get(visitor.items[t]!);
        const ok = scores !== null && target !== undefined;
        shown.push(ok ? rankOf(scores, target, seen) : Infinity);
        all.push(ok ? rankOf(scores, target) : Infinity);
      }
      const index = this.indexOf.get(visitor.items[t]!);
      if (index !== undefined) seen.add(index);
      if (t === visitor.items.length - 1) break;
      await this.engine.track({ type: visitor.type, item: visitor.items[t]! });
      if (this.learn) await this.engine.learnPending();
      this.clock += 60_000;
    }
    return { shown, all };
  }

  async close(): Promise<void> {
    await this.engine.dispose();
  }
}

/** HR@K and NDCG@K over 1-based ranks (one relevant item per case). */
export function hitAndNdcg(ranks: readonly number[], k: number): { hr: number; ndcg: number } {
  let hits = 0;
  let gain = 0;
  for (const r of ranks) {
    if (r <= k) {
      hits++;
      gain += 1 / Math.log2(r + 1);
    }
  }
  const n = Math.max(ranks.length, 1);
  return { hr: hits / n, ndcg: gain / n };
}

/**
 * Learning on against off, case by case over the same next items: how many hits at k only one mode
 * has, the two-sided sign-test p-value of that split (exact binomial, p = 1/2), and the mean change
 * of each case's NDCG@k with its standard error. Far tighter than comparing two HR@10 figures: most
 * cases hit or miss in both modes and cancel out.
 */
export function pairedChange(
  off: readonly number[],
  on: readonly number[],
  k: number,
): { onlyOn: number; onlyOff: number; p: number; ndcgDelta: number; ndcgSe: number } {
  if (off.length !== on.length) throw new RangeError('pairedChange needs the same cases twice');
  const gain = (r: number) => (r <= k ? 1 / Math.log2(r + 1) : 0);
  let onlyOn = 0;
  let onlyOff = 0;
  let sum = 0;
  let squares = 0;
  off.forEach((r, i) => {
    const hitOff = r <= k;
    const hitOn = on[i]! <= k;
    if (hitOn && !hitOff) onlyOn++;
    if (hitOff && !hitOn) onlyOff++;
    const delta = gain(on[i]!) - gain(r);
    sum += delta;
    squares += delta * delta;
  });
  const n = Math.max(off.length, 1);
  const mean = sum / n;
  const variance = n > 1 ? (squares - n * mean * mean) / (n - 1) : 0;
  return {
    onlyOn,
    onlyOff,
    p: signTest(onlyOn, onlyOff),
    ndcgDelta: mean,
    ndcgSe: Math.sqrt(Math.max(variance, 0) / n),
  };
}

/** Two-sided exact sign test: P(a split at least as uneven as a : b when each side is 1/2). */
export function signTest(a: number, b: number): number {
  const n = a + b;
  if (n === 0) return 1;
  const low = Math.min(a, b);
  // Sum the binomial tail in log space: n reaches thousands.
  let logChoose = 0; // log C(n, 0)
  let tail = 0;
  for (let i = 0; i <= low; i++) {
    if (i > 0) logChoose += Math.log(n - i + 1) - Math.log(i);
    tail += Math.exp(logChoose - n * Math.LN2);
  }
  return Math.min(1, 2 * tail);
}
