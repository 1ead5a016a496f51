/**
 * `GET /metrics`: Prometheus text exposition (format 0.0.4) of what an operator alerts on: the
 * published version, rounds by state, updates and tokens, privacy spent, and requests by route,
 * status and error code since the process started. Written by hand: a dozen lines of text format do
 * not justify a client library.
 */
import type { ServerConfig } from './config.js';
import { privacyReport } from './privacy.js';
import { ROUND_STATISTICS, type RoundGuard } from './round-guard.js';
import type { Store } from './store.js';

/** Request counters of this process (not shared between instances: Prometheus sums them). */
export class RequestCounters {
  private readonly byRoute = new Map<string, number>();
  private readonly byCode = new Map<string, number>();

  /** Counts one answered request; `route` is the route pattern, never the raw URL (bounded labels). */
  response(method: string, route: string, status: number): void {
    const key = `method="${method}",route="${escape(route)}",status="${status}"`;
    this.byRoute.set(key, (this.byRoute.get(key) ?? 0) + 1);
  }

  /** Counts one error reply by its catalogue code. */
  error(code: string): void {
    this.byCode.set(code, (this.byCode.get(code) ?? 0) + 1);
  }

  /** The counters as exposition lines. */
  lines(): string[] {
    return [
      '# HELP hearth_http_requests_total Requests answered, by method, route pattern and status.',
      '# TYPE hearth_http_requests_total counter',
      ...[...this.byRoute].map(([labels, n]) => `hearth_http_requests_total{${labels}} ${n}`),
      '# HELP hearth_errors_total Error replies by Hearth error code.',
      '# TYPE hearth_errors_total counter',
      ...[...this.byCode].map(([code, n]) => `hearth_errors_total{code="${escape(code)}"} ${n}`),
    ];
  }
}

/** Label values escape backslash, double quote and newline (exposition format rules). */
function escape(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function gauge(name: string, help: string, value: number, type = 'gauge'): string[] {
  // Prometheus spells infinity +Inf; JSON-style null would break the parser.
  const text = Number.isFinite(value) ? String(value) : value > 0 ? '+Inf' : 'NaN';
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${text}`];
}

/** The round guard's counts (round-guard.ts), and the statistics of the last round it judged. */
function guardLines(guard: RoundGuard): string[] {
  const { anomalies, rollbacks, last } = guard.summary();
  return [
    '# HELP hearth_round_anomalies_total Rounds whose statistic stood beyond the window, by statistic.',
    '# TYPE hearth_round_anomalies_total counter',
    ...ROUND_STATISTICS.map(
      (s) => `hearth_round_anomalies_total{statistic="${s}"} ${anomalies.get(s) ?? 0}`,
    ),
    ...gauge(
      'hearth_round_guard_rollbacks_total',
      'Anomalous rounds undone (republished over, or abandoned before publishing).',
      rollbacks,
      'counter',
    ),
    ...(last?.coherence !== undefined
      ? gauge(
          'hearth_round_coherence',
          "Mean pairwise cosine of the last judged plaintext round's updates.",
          last.coherence,
        )
      : []),
    ...(last?.atBound !== undefined
      ? gauge(
          'hearth_round_at_bound',
          "Share of the last judged plaintext round's updates at the clip bound.",
          last.atBound,
        )
      : []),
    ...(last?.sumEnergy !== undefined
      ? gauge(
          'hearth_round_sum_energy',
          "The last judged secure round's sum energy beyond its noise, per (n S)^2.",
          last.sumEnergy,
        )
      : []),
  ];
}

/** The whole exposition text. */
export async function renderMetrics(
  store: Store,
  config: ServerConfig,
  counters: RequestCounters,
  guard?: RoundGuard,
): Promise<string> {
  const [version, counts, ledger] = await Promise.all([
    store.latestVersion(),
    store.counts(),
    store.privacyLedger(),
  ]);
  const privacy = privacyReport(ledger, config);
  const published = counts.versions > 0 ? counts.versions - 1 : 0;
  return [
    ...gauge('hearth_model_version', 'Current global model version.', version ?? 0),
    ...gauge(
      'hearth_rounds_published_total',
      'Rounds aggregated into a new version.',
      published,
      'counter',
    ),
    ...gauge(
      'hearth_rounds_abandoned_total',
      'Rounds abandoned at their deadline.',
      counts.abandonedRounds,
      'counter',
    ),
    ...gauge(
      'hearth_updates_accepted_total',
      'Updates stored (acknowledged with 202).',
      counts.updates,
      'counter',
    ),
    ...gauge(
      'hearth_round_tokens_issued_total',
      'Round tokens handed out.',
      counts.tokens,
      'counter',
    ),
    ...gauge(
      'hearth_round_tokens_used_total',
      'Round tokens spent on an accepted update.',
      counts.usedTokens,
      'counter',
    ),
    ...gauge('hearth_min_cohort', 'Updates a round needs before it aggregates.', config.minCohort),
    ...gauge('hearth_clip_norm', 'L2 bound S of every update.', config.clipNorm),
    ...gauge(
      'hearth_privacy_epsilon',
      'Cumulative epsilon at the configured delta (+Inf: noise off).',
      privacy.epsilon,
    ),
    ...gauge(
      'hearth_privacy_budget_exhausted',
      '1 when no further round may run.',
      privacy.exhausted ? 1 : 0,
    ),
    ...(guard ? guardLines(guard) : []),
    ...counters.lines(),
    '',
  ].join('\n');
}
