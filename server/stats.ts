/**
 * `GET /v1/stats`: the numbers behind the dashboard, computed from the store on each request (the
 * store may be shared with other instances, so nothing is cached here). Norms are the ones each
 * update arrived with, before the aggregator re-clipped it; an update counts as clipped when its norm
 * exceeds the current bound S (devices clip themselves, so a high clipped fraction means devices run
 * with another S or a float16 rounding pushed them just over it).
 */
import { median } from './robust.js';
import type { ServerConfig } from './config.js';
import { epsilonCurve } from '../protocol/privacy/index.js';
import type { Store } from './store.js';
import type { VersionEvaluator } from './validation.js';
import { toHour } from './versions.js';
import { HIT_RATE_K } from './validation.js';

/** Rounds the dashboard shows (the newest ones). */
export const STATS_ROUNDS = 200;

/** Bins of the norm histogram. */
export const NORM_BINS = 20;

/** One round in the stats reply. */
export interface RoundStats {
  readonly round: number;
  readonly status: 'collecting' | 'published' | 'abandoned';
  readonly openedAt: string | null;
  readonly publishedAt: string | null;
  readonly publishedVersion: number | null;
  readonly participants: number;
  /** Share of its updates whose received norm exceeded S; null without updates. */
  readonly clippedFraction: number | null;
  readonly medianNorm: number | null;
}

/** The reply of `GET /v1/stats` (JSON: non-finite numbers are sent as null). */
export interface StatsReply {
  /**
   * 'operator': every round with its norms and times (the request carried the operator token);
   * 'public': published rounds only, without norms or opening times, publication times to the
   * hour, and no norm histogram: nothing from which one upload's norm or timing could be read.
   */
  readonly view: 'operator' | 'public';
  readonly clipNorm: number;
  readonly minCohort: number;
  readonly noise: 'on' | 'off';
  readonly rounds: readonly RoundStats[];
  /** Null in the public view. */
  readonly norms: {
    readonly count: number;
    readonly clippedFraction: number | null;
    /** NORM_BINS + 1 bin edges from 0 to the larger of S and the largest norm. */
    readonly edges: readonly number[];
    readonly counts: readonly number[];
  } | null;
  readonly epsilon: readonly {
    readonly round: number;
    readonly version: number;
    readonly publishedAt: string | null;
    readonly epsilon: number | null;
  }[];
  readonly hitRate: {
    readonly k: number;
    /** False without `--validation`; then `versions` is empty. */
    readonly configured: boolean;
    readonly versions: readonly { readonly version: number; readonly hr: number | null }[];
  };
}

const finite = (n: number): number | null => (Number.isFinite(n) ? n : null);

const medianOrNull = (values: readonly number[]): number | null =>
  values.length === 0 ? null : median(values);

/** Builds the stats reply; with an evaluator, asks it to catch up on new versions in the background. */
export async function buildStats(
  store: Store,
  config: ServerConfig,
  evaluator?: VersionEvaluator,
): Promise<StatsReply> {
  void evaluator?.refresh();
  const [history, ledger] = await Promise.all([store.history(STATS_ROUNDS), store.privacyLedger()]);
  const S = config.clipNorm;
  const allNorms = history.flatMap((r) => r.norms);
  // A loop, not Math.max(...norms): a spread of many thousand arguments overflows the stack.
  const top = allNorms.reduce((max, n) => (n > max ? n : max), S);
  const edges = Array.from({ length: NORM_BINS + 1 }, (_, i) => (top * i) / NORM_BINS);
  const counts = new Array<number>(NORM_BINS).fill(0);
  for (const norm of allNorms) {
    const bin = Math.min(NORM_BINS - 1, Math.floor((norm / top) * NORM_BINS));
    counts[bin] = counts[bin]! + 1;
  }
  const clipped = (norms: readonly number[]): number | null =>
    norms.length === 0 ? null : norms.filter((n) => n > S).length / norms.length;
  const publishedAt = new Map(history.map((r) => [r.round, r.publishedAt]));
  const curve = epsilonCurve(ledger, config.delta);
  return {
    view: 'operator',
    clipNorm: S,
    minCohort: config.minCohort,
    noise: config.noiseMultiplier > 0 ? 'on' : 'off',
    rounds: history.map((r) => ({
      round: r.round,
      status: r.status,
      openedAt: r.openedAt,
      publishedAt: r.publishedAt,
      publishedVersion: r.publishedVersion,
      participants: r.updates,
      clippedFraction: clipped(r.norms),
      medianNorm: medianOrNull(r.norms),
    })),
    norms: { count: allNorms.length, clippedFraction: clipped(allNorms), edges, counts },
    epsilon: ledger.slice(-STATS_ROUNDS).map((entry, i) => ({
      round: entry.round,
      version: entry.version,
      publishedAt: publishedAt.get(entry.round) ?? null,
      epsilon: finite(curve[ledger.length - Math.min(ledger.length, STATS_ROUNDS) + i]!),
    })),
    hitRate: {
      k: HIT_RATE_K,
      configured: evaluator !== undefined,
      versions: [...(evaluator?.hitRates() ?? new Map<number, number>())]
        .sort(([a], [b]) => a - b)
        .map(([version, hr]) => ({ version, hr: finite(hr) })),
    },
  };
}

/**
 * What anyone may see of `stats`: published rounds (each an aggregate of at least m updates) with
 * their participant counts and the hour they were published, the privacy curve and HR@20. Left out:
 * the collecting and abandoned rounds (their counts move with each upload), every norm statistic
 * (one upload's norm is the median of a round of one), and opening times (a round opens at its
 * first join).
 */
export function publicStats(stats: StatsReply): StatsReply {
  return {
    ...stats,
    view: 'public',
    rounds: stats.rounds
      .filter((round) => round.status === 'published')
      .map((round) => ({
        ...round,
        openedAt: null,
        publishedAt: round.publishedAt === null ? null : toHour(round.publishedAt),
        clippedFraction: null,
        medianNorm: null,
      })),
    norms: null,
    epsilon: stats.epsilon.map((entry) => ({
      ...entry,
      publishedAt: entry.publishedAt === null ? null : toHour(entry.publishedAt),
    })),
  };
}
