/**
 * HR@20 of each published version on an operator's validation sessions (`--validation <file>`), for
 * the dashboard. The forward pass is model/reference-forward.ts: plain float64 JavaScript, so
 * the server needs no tfjs backend, and it is the same oracle the devices' backends are checked
 * against. Evaluation runs in the background, a few pairs at a time between event-loop turns, so a
 * large model never stalls requests; results live in memory and are recomputed after a restart
 * (every stored version is evaluated again on first demand, newest first).
 */
import { readFileSync } from 'node:fs';
import { HearthError } from '../protocol/errors.js';
import type { ModelManifest } from '../protocol/manifest.js';
import { rankDense } from '../model/full-ranking.js';
import { referenceScores } from '../model/reference-forward.js';
import { bytesToFloat32 } from './float32-bytes.js';
import type { Store } from './store.js';

/** The cut-off K of the reported hit rate. */
export const HIT_RATE_K = 20;

/**
 * At most this many prefix -> next pairs are evaluated (the first ones in file order): the reference
 * forward pass is slow on a full-size model, and a few thousand pairs pin HR@20 to about +-0.01.
 */
export const MAX_VALIDATION_PAIRS = 2000;

/** Only the newest versions are evaluated; older ones are history nobody tunes against. */
export const MAX_EVALUATED_VERSIONS = 50;

/** Validation sessions as item-id strings, one array per session. */
export type ValidationSessions = readonly (readonly string[])[];

/** Parses a validation file's text: one session a line, ids separated by whitespace. */
export function parseValidationSessions(text: string): ValidationSessions {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim().split(/\s+/).filter(Boolean))
    .filter((session) => session.length >= 2);
}

/** Reads and parses `--validation`; HEARTH_E_CONFIG when unreadable or without a usable session. */
export function loadValidationSessions(path: string): ValidationSessions {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new HearthError('HEARTH_E_CONFIG', `--validation ${path}: ${(error as Error).message}`);
  }
  const sessions = parseValidationSessions(text);
  if (sessions.length === 0) {
    throw new HearthError('HEARTH_E_CONFIG', `--validation ${path} has no session of 2+ items`);
  }
  return sessions;
}

/** The (prefix, target) index pairs of `sessions` under a manifest's item ids; unknown ids are cut. */
export function validationPairs(
  sessions: ValidationSessions,
  itemIds: readonly string[],
): { prefix: number[]; target: number }[] {
  const index = new Map(itemIds.map((id, i) => [id, i]));
  const pairs: { prefix: number[]; target: number }[] = [];
  for (const session of sessions) {
    // Index 0 is padding (its id is ''), never a real item.
    const known = session.map((id) => index.get(id) ?? 0).filter((i) => i > 0);
    for (let t = 1; t < known.length && pairs.length < MAX_VALIDATION_PAIRS; t++) {
      pairs.push({ prefix: known.slice(0, t), target: known[t]! });
    }
  }
  return pairs;
}

/** HR@K of flat weights on pairs, yielding to the event loop every `sliceMs` of work. */
export async function hitRate(
  manifest: ModelManifest,
  weights: Float32Array,
  pairs: readonly { prefix: number[]; target: number }[],
  sliceMs = 20,
): Promise<number> {
  let hits = 0;
  let sliceStart = performance.now();
  for (const { prefix, target } of pairs) {
    if (rankDense(referenceScores(manifest.dims, weights, prefix), target) <= HIT_RATE_K) hits++;
    if (performance.now() - sliceStart > sliceMs) {
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
  return pairs.length === 0 ? NaN : hits / pairs.length;
}

/** Evaluates versions on demand, one at a time in the background, remembering the results. */
export class VersionEvaluator {
  private readonly results = new Map<number, number>();
  private running: Promise<void> | undefined;

  /**
   * `sessions` as loaded by loadValidationSessions; `afterRun` sees the results after each run that
   * evaluated something (the rollback check, rollback.ts).
   */
  constructor(
    private readonly store: Store,
    private readonly sessions: ValidationSessions,
    private readonly afterRun?: (hitRates: ReadonlyMap<number, number>) => Promise<void>,
  ) {}

  /** HR@20 per evaluated version, by version. NaN: no validation pair uses the model's items. */
  hitRates(): ReadonlyMap<number, number> {
    return this.results;
  }

  /**
   * Starts evaluating the newest versions not yet evaluated, unless a run is already going; resolves
   * when that run ends. Never rejects: a failed evaluation leaves the version without a figure.
   */
  refresh(): Promise<void> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<void> {
    try {
      const newest = await this.store.latestVersion();
      if (newest === undefined) return;
      const oldest = Math.max(1, newest - MAX_EVALUATED_VERSIONS + 1);
      let evaluated = false;
      for (let version = newest; version >= oldest; version--) {
        if (this.results.has(version)) continue;
        evaluated = true;
        const manifest = await this.store.getManifest(version);
        const bytes = await this.store.getWeightBytes(version);
        if (!manifest || !bytes) continue;
        const pairs = validationPairs(this.sessions, manifest.itemIds);
        this.results.set(version, await hitRate(manifest, bytesToFloat32(bytes), pairs));
      }
      if (evaluated) await this.afterRun?.(this.results);
    } catch {
      // The dashboard shows what was evaluated; the next refresh tries the rest again.
    }
  }
}
