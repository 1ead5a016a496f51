/**
 * Server configuration: defaults, validation, and the command-line flags of `npm run server`.
 * Every bad value is reported as HEARTH_E_CONFIG naming the flag, so an operator sees which one to fix.
 */
import { readFileSync } from 'node:fs';
import { HearthError } from '../protocol/errors.js';
import {
  MAX_ROUND_WINDOW_SECONDS,
  MAX_DENSE_STRIDE,
  MAX_SKETCH_DEPTH,
  WEIGHTS_DTYPES,
  type WeightsDtype,
} from '../protocol/manifest.js';
import {
  DEVICE_UPDATE_DTYPES,
  UPDATE_HEADER_BYTES,
  type UpdateDtypeName,
} from '../protocol/update-format.js';
import { MIN_WINDOW, ROUND_GUARD_MODES, type RoundGuardMode } from './round-guard.js';
import { loadConfigFile, parseSites, type SiteConfig } from './sites.js';

/** Log levels the server accepts (fastify's pino levels, plus 'silent', the default). */
export const SERVER_LOG_LEVELS = [
  'silent',
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
] as const;

/** One of SERVER_LOG_LEVELS. */
export type ServerLogLevel = (typeof SERVER_LOG_LEVELS)[number];

/**
 * Hard ceiling on an update body, whatever the model size: a body is buffered in memory before it is
 * validated, so an unbounded limit would let one request exhaust the process.
 */
export const MAX_BODY_LIMIT_BYTES = 64 * 1024 * 1024;

/** Server optimisers: plain FedAvg, or FedAdam (Reddi et al. 2021, https://arxiv.org/abs/2003.00295). */
export const SERVER_OPTIMIZERS = ['fedavg', 'fedadam'] as const;

/** One of SERVER_OPTIMIZERS. */
export type ServerOptimizer = (typeof SERVER_OPTIMIZERS)[number];

/**
 * Coordinate-wise aggregators of a round's clipped deltas. 'mean' weighs every update the same: an
 * example count is the device's own claim, so it never scales influence unless the operator asks
 * for 'weighted-mean' (FedAvg's weights, clamped to maxExamples).
 */
export const AGGREGATORS = ['mean', 'weighted-mean', 'trimmed-mean', 'median'] as const;

/** One of AGGREGATORS. */
export type Aggregator = (typeof AGGREGATORS)[number];

/** How a version's update rows are named (protocol/update-layout.ts biasLedRows, roundRows). */
export const ROW_CHOICES = ['bias', 'window'] as const;
export type RowChoice = (typeof ROW_CHOICES)[number];

/**
 * Server step size FedAdam gets when none is given: Adam's steps are ~lr per coordinate whatever the
 * delta's scale, so FedAvg's 1.0 would be far too large (Reddi et al. tune it in 1e-3..1e-1).
 */
export const DEFAULT_FEDADAM_LEARNING_RATE = 0.01;

/** Largest staleness bound the server takes: (s + 1) q reaches 1 long before this for any real q. */
export const MAX_STALENESS = 1000;

/** The shortest round window: a minute (a window that closes with no update still adds a ledger row). */
export const MIN_ROUND_WINDOW_SECONDS = 60;

/** How the server learns a round's updates: SecAgg+ sums, or each update in the clear. */
export const AGGREGATION_MODES = ['secure', 'plaintext'] as const;
export type AggregationMode = (typeof AGGREGATION_MODES)[number];

/** Most devices in one secure round (each holds the round's sum-sized vectors while it runs). */
export const MAX_SECURE_COHORT = 10_000;

/** Everything the server needs to run. */
export interface ServerConfig {
  /** TCP port; 0 picks a free one. */
  readonly port: number;
  /** Interface to bind; loopback by default so nothing is exposed by accident. */
  readonly host: string;
  /**
   * SQLite database file (':memory:' for a throwaway store), or a `postgres://` / `postgresql://`
   * URL: then the PostgreSQL store, which several instances can share (see isPostgresUrl).
   */
  readonly dbPath: string;
  /** Seed model directory (manifest.json + weights); only needed while the database has no version. */
  readonly modelDir?: string;
  /** Minimum cohort m: updates a round needs before it aggregates. */
  readonly minCohort: number;
  /** L2 bound S every update is (re-)clipped to. */
  readonly clipNorm: number;
  /** Largest example count an update's weight may claim. */
  readonly maxExamples: number;
  /**
   * Step size of the server optimiser (1 = plain FedAvg). Left out with FedAdam, it defaults to
   * DEFAULT_FEDADAM_LEARNING_RATE.
   */
  readonly serverLearningRate: number;
  /**
   * Step size of the server optimiser on the item rows and biases; left out, serverLearningRate.
   * A row moves only in the rounds whose layout names it, and only its few devices touch it.
   */
  readonly itemLearningRate?: number;
  /**
   * Item rows an update carries after the dense tensors (protocol/update-layout.ts), named anew for
   * each version in its manifest (`federation.updateRows`); 'full': updates are the whole model.
   */
  readonly updateRows: number | 'full';
  /**
   * Buckets of the count sketch an update carries its item rows in (protocol/item-sketch.ts), drawn
   * anew for each version (`federation.itemSketch`): every item row moves every round, in the
   * length of this many rows. 'off': updateRows names the rows. Giving updateRows turns it off.
   */
  readonly itemSketch: number | 'off';
  /**
   * Tables of itemSketch buckets a sketch has, each with hashes of its own (protocol/item-sketch.ts):
   * the server reads each item row as its tables' readings' mean, shrunk by how much they agree.
   */
  readonly sketchDepth: number;
  /**
   * k: a sketch carries one in k of the dense tensors' values, a different set each version
   * (protocol/item-sketch.ts sentDense); the others read as zero in that round.
   */
  readonly sketchDenseStride: number;
  /**
   * How a version's rows are named, from public data only: 'bias' takes half of them by the
   * version's own item bias and moves a window over the rest; 'window' moves a window through a
   * public permutation of the catalogue.
   */
  readonly rowChoice: RowChoice;
  /**
   * FedAdam's tau, the floor of its per-coordinate scale sqrt(v) + tau (Reddi et al. 2021). Left
   * out: 1e-3 with noise off, the noise std z S / m with it (fedAdamTauOf). With noise on, a
   * coordinate no device moves still sees noise of that std, which a small tau would scale up to a
   * step of about the learning rate every round.
   */
  readonly fedAdamTau?: number;
  /**
   * FedAdam's tau on the item rows and biases only (`--fedadam-item-tau`); left out, fedAdamTau's.
   * A large tau holds still the rows no device moved under noise; the dense tensors, which every
   * device moves, can then keep a small one.
   */
  readonly fedAdamItemTau?: number;
  /** How the (noised) mean delta becomes the next model: FedAvg step or FedAdam. */
  readonly serverOptimizer: ServerOptimizer;
  /** Coordinate-wise aggregator: equal-weight mean, example-weighted mean, trimmed mean, or median. */
  readonly aggregator: Aggregator;
  /** The dtype devices download weights in (protocol/weights-codec.ts); versions are kept in float32. */
  readonly weightsDtype: WeightsDtype;
  /**
   * The dtype devices encode a plaintext update in (manifest `federation.updateDtype`;
   * protocol/update-quant.ts for int8 / int4). The server decodes any dtype it knows.
   */
  readonly updateDtype: UpdateDtypeName;
  /** Fraction of values cut from each end per coordinate by the trimmed mean, in [0, 0.5). */
  readonly trimFraction: number;
  /**
   * Noise multiplier z of central DP: Gaussian noise of std z * S / m is added to each round's mean.
   * 0 (the default) turns noise off; the accountant then reports no finite epsilon.
   */
  readonly noiseMultiplier: number;
  /** Probability q with which a device joins a round: the accountant's Poisson sampling rate. */
  readonly sampleRate: number;
  /**
   * Staleness bound s: an update computed on version v is still accepted while current - v <= s, and
   * folded into the collecting round (buffered asynchronous aggregation, FedBuff: Nguyen et al. 2022,
   * https://arxiv.org/abs/2106.06639). 0 accepts only updates on the current version. The accountant
   * then samples at min(1, (s + 1) q) per round (privacy.ts, effectiveSampleRate).
   */
  readonly maxStaleness: number;
  /** Target delta of the reported (epsilon, delta) guarantee. */
  readonly delta: number;
  /** Largest cumulative epsilon the server may spend; Infinity means no budget. */
  readonly epsilonBudget: number;
  /**
   * Update body limit override. By default it is derived from the model (header + float32 payload);
   * either way it is capped at MAX_BODY_LIMIT_BYTES.
   */
  readonly bodyLimitBytes?: number;
  /**
   * CORS origins: `true` reflects any origin (the SDK runs on third-party sites). With sites
   * configured it is always the union of their origins (resolveConfig derives it).
   */
  readonly corsOrigins: true | readonly string[];
  /**
   * Sites allowed to join and post, each with its key and origins (`--config <file>`). Empty: the POST
   * routes stay open to anyone, as the demo and a single-site install expect.
   */
  readonly sites: readonly SiteConfig[];
  /** Requests per minute per client on the POST routes and any unknown path (@fastify/rate-limit); 0: off. */
  readonly rateLimitPerMinute: number;
  /**
   * Updates one client identity (an IPv4 address, an IPv6 /64) may place in one round
   * (`--joins-per-round`, server/join-budget.ts); 0: no budget. Refused beyond it with
   * HEARTH_E_JOIN_BUDGET.
   */
  readonly joinsPerRound: number;
  /**
   * Proxies in front of the server whose X-Forwarded-For is believed (`--trust-proxy <hops>`): the
   * client, for the rate limit and the logs, is then the address that many hops back. 0: the
   * socket's peer, and X-Forwarded-For is ignored (a client could otherwise claim any address).
   */
  readonly trustProxyHops: number;
  /**
   * Seconds a round may collect before it is abandoned (never published, its updates kept for audit)
   * when it still has fewer than m updates, so a quiet site does not keep one round open forever.
   */
  readonly roundDeadlineSeconds: number;
  /**
   * T (`--round-window`): rounds close on a clock fixed in advance rather than on their m-th update.
   * Round window r takes every update that arrives in [r T, (r + 1) T) seconds since the Unix epoch,
   * with no cap at m; when it ends, it publishes only if its count plus Gaussian noise of std
   * `countNoise` reaches m, and it is charged in the privacy ledger either way (round-windows.ts).
   * 0 (the default): a round closes on its m-th update. Plaintext only, with s = 0.
   */
  readonly roundWindowSeconds: number;
  /** σ_c: the std of the Gaussian noise on a window's update count that decides whether it publishes. */
  readonly countNoise: number;
  /**
   * Seconds a request may take from its headers to its whole body before the server closes its
   * socket: a client that announces a body and never sends it cannot hold sockets (app.ts
   * `bodyDeadline`). The clock stops once the body is in: processing time is not limited.
   */
  readonly requestTimeoutSeconds: number;
  /** fastify logger level; 'silent' turns the logger off. */
  readonly logLevel: ServerLogLevel;
  /**
   * 'secure': devices take part in secure aggregation rounds (server/secure-rounds.ts) and the
   * server learns only the sum of at least m updates; 'plaintext': each update is posted and stored
   * on its own (tests, and servers whose devices predate secure rounds). The other mode's routes
   * answer HEARTH_E_AGGREGATION_MODE.
   */
  readonly aggregation: AggregationMode;
  /** n: devices a secure round forms with (default m; at least m). */
  readonly secureCohort?: number;
  /** Seconds each stage of a secure round waits for its devices before they count as dropped. */
  readonly secureStageSeconds: number;
  /** Seconds a forming secure round waits for n devices before forming with the >= m it has. */
  readonly secureJoinSeconds: number;
  /**
   * The share of a secure round's devices expected to leave before it ends: sets each device's
   * number of neighbours k (server/secure-rounds.ts neighboursFor), so a round survives it.
   */
  readonly secureDropout: number;
  /**
   * Validation sessions (`--validation <file>`: one session a line, item ids separated by spaces):
   * each published version's HR@20 on them is shown on the dashboard. Left out, no evaluation.
   */
  readonly validationPath?: string;
  /**
   * With `validationPath`: a version whose HR@20 falls more than this fraction below the best of the
   * versions before it is rolled back (`--rollback-drop`, server/rollback.ts); 0: never.
   */
  readonly rollbackDrop: number;
  /**
   * Norm and direction statistics of rounds over a window (`--round-guard`, server/round-guard.ts):
   * 'flag' logs and counts a round that stands out, 'rollback' also undoes it (plaintext: its base
   * weights published again, refused with noise on since the decision reads raw updates; secure:
   * abandoned), 'off' computes nothing. Default: rollback in secure mode, flag in plaintext.
   */
  readonly roundGuard: RoundGuardMode;
  /** Normal rounds the guard judges a round against (`--round-guard-window`). */
  readonly roundGuardWindow: number;
  /** Robust standard deviations above the window's median that make a round anomalous. */
  readonly roundGuardThreshold: number;
  /**
   * The site's catalogue (`--catalog <file|url>`: JSON, JSON Lines, CSV/TSV, RSS, Atom, JSON Feed or
   * a sitemap; server/catalog-parse.ts), stored at start when it differs from the stored one.
   */
  readonly catalogSource?: string;
  /** Minutes between re-reads of a catalogue URL (a feed grows); 0: read at start only. */
  readonly catalogRefreshMinutes: number;
  /**
   * The operator's token for `PUT /v1/catalog` (`HEARTH_OPERATOR_TOKEN`, or `--operator-token-file`);
   * never a site key, which sits in public script tags. Unset: catalogue updates are refused.
   */
  readonly operatorToken?: string;
  /**
   * Where the other instances sharing this database reach this one (`--instance-url`, e.g.
   * `http://10.0.0.5:8787`): a secure round lives in the memory of the instance that formed it, and
   * another instance forwards the round's requests there (server/peers.ts). Needs the operator
   * token, from which the instances' shared peer key is derived. Unset: a round's requests that
   * reach another instance find no round.
   */
  readonly instanceUrl?: string;
}

/** Defaults for every optional field. */
export const DEFAULT_CONFIG = {
  port: 8787,
  host: '127.0.0.1',
  dbPath: '.hearth/server.db',
  minCohort: 100,
  clipNorm: 1.0,
  maxExamples: 1000,
  serverLearningRate: 1.0,
  serverOptimizer: 'fedavg',
  updateRows: 4096,
  // Chosen by measurement (README, "Item sketches"): at 500 rounds on Diginetica as good as 4,096
  // named rows (better early, and under noise on YOOCHOOSE) at about half the values.
  itemSketch: 2048,
  sketchDepth: 1,
  sketchDenseStride: 1,
  rowChoice: 'window',
  aggregator: 'mean',
  weightsDtype: 'int8e',
  // Chosen by measurement (README, "Compact updates"): the same HR@20 as float16 in the federated
  // simulation, at a quarter of float16's bytes and less.
  updateDtype: 'int4',
  trimFraction: 0.1,
  noiseMultiplier: 1.2,
  sampleRate: 0.01,
  // Enough for 64 devices posting at once with m = 16 to lose <= 5% of their updates to staleness
  // (`npm run bench:load`: ~3%; 56% with 0); each step of s costs privacy: q_eff = (s + 1) q.
  maxStaleness: 2,
  delta: 1e-6,
  epsilonBudget: Infinity,
  corsOrigins: true,
  sites: [],
  // Generous: a device makes two POSTs per round; this only stops floods from one address.
  rateLimitPerMinute: 600,
  joinsPerRound: 1,
  rollbackDrop: 0.1,
  roundGuardWindow: 20,
  roundGuardThreshold: 3,
  trustProxyHops: 0,
  roundDeadlineSeconds: 86_400,
  roundWindowSeconds: 0,
  countNoise: 10,
  requestTimeoutSeconds: 10,
  logLevel: 'silent',
  aggregation: 'secure',
  secureStageSeconds: 30,
  secureJoinSeconds: 60,
  secureDropout: 0.2,
  catalogRefreshMinutes: 60,
} as const satisfies Partial<ServerConfig>;

function bad(what: string, detail: string): never {
  throw new HearthError('HEARTH_E_CONFIG', `${what} ${detail}`);
}

function checkInt(what: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    bad(what, `must be an integer from ${min} to ${max}, got ${value}`);
  }
}

function checkPositive(what: string, value: number): void {
  if (!Number.isFinite(value) || !(value > 0)) bad(what, `must be a positive number, got ${value}`);
}

/** Fills defaults into a partial config and validates every field. */
export function resolveConfig(partial: Partial<ServerConfig> = {}): ServerConfig {
  const given = stripUndefined(partial);
  if (
    given.updateRows !== undefined &&
    given.itemSketch !== undefined &&
    given.itemSketch !== 'off'
  ) {
    bad('itemSketch (--item-sketch)', 'names the update layout as --update-rows does: give one');
  }
  const merged: ServerConfig = {
    ...DEFAULT_CONFIG,
    ...(given.serverOptimizer === 'fedadam'
      ? { serverLearningRate: DEFAULT_FEDADAM_LEARNING_RATE }
      : {}),
    // A secure round is judged on its noisy sum, so undoing it costs no privacy (round-guard.ts); a
    // plaintext round is judged on raw updates, so by default it is only flagged.
    roundGuard:
      (given.aggregation ?? DEFAULT_CONFIG.aggregation) === 'secure' ? 'rollback' : 'flag',
    // A window takes updates on its own version only, and the guard judges rounds that close on
    // their m-th update: neither applies to windows unless asked for (then refused, checkWindows).
    ...(given.roundWindowSeconds ? { maxStaleness: 0, roundGuard: 'off' as const } : {}),
    ...given,
    // Rows asked for are named rows, not the default sketch.
    ...(given.updateRows !== undefined ? { itemSketch: 'off' as const } : {}),
  };
  // Re-validated even when parsed from a file: a programmatic config gets the same checks.
  const sites = parseSites(merged.sites);
  const config: ServerConfig = {
    ...merged,
    sites,
    // With sites, CORS answers exactly their origins; anything else would let another page's script
    // read the replies of a site's key.
    ...(sites.length > 0 ? { corsOrigins: [...new Set(sites.flatMap((s) => s.origins))] } : {}),
  };
  checkInt('port', config.port, 0, 65535);
  if (config.host === '') bad('host', 'must not be empty');
  if (config.dbPath === '') bad('db', 'must not be empty');
  if (config.modelDir === '') bad('model', 'must not be empty');
  if (config.validationPath === '') bad('validation', 'must not be empty');
  checkInt('minCohort', config.minCohort, 1, 1_000_000);
  checkPositive('clipNorm', config.clipNorm);
  checkInt('maxExamples', config.maxExamples, 1, 1_000_000);
  checkPositive('serverLearningRate', config.serverLearningRate);
  if (config.itemLearningRate !== undefined) {
    checkPositive('itemLearningRate (--item-learning-rate)', config.itemLearningRate);
  }
  checkOneOf('serverOptimizer (--server-optimizer)', config.serverOptimizer, SERVER_OPTIMIZERS);
  if (config.fedAdamTau !== undefined)
    checkPositive('fedAdamTau (--fedadam-tau)', config.fedAdamTau);
  if (config.fedAdamItemTau !== undefined)
    checkPositive('fedAdamItemTau (--fedadam-item-tau)', config.fedAdamItemTau);
  checkOneOf('aggregator (--aggregator)', config.aggregator, AGGREGATORS);
  if (config.updateRows !== 'full') {
    checkInt('updateRows (--update-rows)', config.updateRows, 0, 5_000_000);
  }
  if (config.itemSketch !== 'off') {
    checkInt('itemSketch (--item-sketch)', config.itemSketch, 1, 5_000_000);
  }
  checkInt('sketchDepth (--sketch-depth)', config.sketchDepth, 1, MAX_SKETCH_DEPTH);
  checkInt(
    'sketchDenseStride (--sketch-dense-stride)',
    config.sketchDenseStride,
    1,
    MAX_DENSE_STRIDE,
  );
  checkOneOf('rowChoice (--row-choice)', config.rowChoice, ROW_CHOICES);
  checkOneOf('weightsDtype (--weights-dtype)', config.weightsDtype, WEIGHTS_DTYPES);
  checkOneOf('updateDtype (--update-dtype)', config.updateDtype, DEVICE_UPDATE_DTYPES);
  if (!(config.trimFraction >= 0 && config.trimFraction < 0.5)) {
    bad('trimFraction (--trim-fraction)', `must be in [0, 0.5), got ${config.trimFraction}`);
  }
  checkPrivacy(config);
  checkInt('rateLimitPerMinute (--rate-limit)', config.rateLimitPerMinute, 0, 1_000_000_000);
  checkInt('joinsPerRound (--joins-per-round)', config.joinsPerRound, 0, 1_000_000);
  if (!(config.rollbackDrop >= 0 && config.rollbackDrop < 1)) {
    bad('rollbackDrop (--rollback-drop)', `must be in [0, 1), got ${config.rollbackDrop}`);
  }
  checkOneOf('roundGuard (--round-guard)', config.roundGuard, ROUND_GUARD_MODES);
  checkInt('roundGuardWindow (--round-guard-window)', config.roundGuardWindow, MIN_WINDOW, 10_000);
  checkPositive('roundGuardThreshold (--round-guard-threshold)', config.roundGuardThreshold);
  if (
    config.roundGuard === 'rollback' &&
    config.aggregation === 'plaintext' &&
    config.noiseMultiplier > 0
  ) {
    bad(
      'roundGuard (--round-guard) rollback',
      'in plaintext mode decides on the raw updates, which the privacy accountant does not ' +
        'cover: use it with --noise-multiplier 0, or flag with noise on',
    );
  }
  checkInt('trustProxyHops (--trust-proxy)', config.trustProxyHops, 0, 16);
  checkInt(
    'roundDeadlineSeconds (--round-deadline)',
    config.roundDeadlineSeconds,
    1,
    3_153_600_000,
  );
  checkWindows(config);
  checkInt('requestTimeoutSeconds (--request-timeout)', config.requestTimeoutSeconds, 1, 3600);
  if (config.bodyLimitBytes !== undefined) {
    checkInt('bodyLimitBytes', config.bodyLimitBytes, UPDATE_HEADER_BYTES, MAX_BODY_LIMIT_BYTES);
  }
  if (!(SERVER_LOG_LEVELS as readonly string[]).includes(config.logLevel)) {
    bad('logLevel', `must be one of ${SERVER_LOG_LEVELS.join(', ')}, got ${config.logLevel}`);
  }
  checkSecure(config);
  return config;
}

/**
 * Round windows (round-windows.ts): whole seconds, at least a minute; plaintext rounds of updates on
 * the window's own version (s = 0), and no round guard, which judges a round when its m-th update
 * publishes it.
 */
function checkWindows(config: ServerConfig): void {
  const what = 'roundWindowSeconds (--round-window)';
  if (config.roundWindowSeconds === 0) return;
  checkInt(what, config.roundWindowSeconds, MIN_ROUND_WINDOW_SECONDS, MAX_ROUND_WINDOW_SECONDS);
  if (!(Number.isFinite(config.countNoise) && config.countNoise > 0)) {
    bad('countNoise (--count-noise)', `must be a positive number, got ${config.countNoise}`);
  }
  if (config.aggregation !== 'plaintext') {
    bad(what, 'needs --aggregation plaintext: a secure round forms from its cohort of joins');
  }
  if (config.maxStaleness !== 0) {
    bad(
      what,
      `needs --max-staleness 0 (an update counts in its own window only), got ${config.maxStaleness}`,
    );
  }
  if (config.roundGuard !== 'off') {
    bad(what, `needs --round-guard off (the guard judges rounds that close on their m-th update)`);
  }
  if (config.aggregator !== 'mean') {
    bad(what, `needs --aggregator mean (a window folds its updates into a sum as they arrive)`);
  }
}

/** The secure aggregation settings (read only in secure mode, checked in both). */
function checkSecure(config: ServerConfig): void {
  checkOneOf('aggregation (--aggregation)', config.aggregation, AGGREGATION_MODES);
  if (config.secureCohort !== undefined) {
    checkInt('secureCohort (--secure-cohort)', config.secureCohort, 2, MAX_SECURE_COHORT);
    if (config.secureCohort < config.minCohort) {
      bad('secureCohort (--secure-cohort)', `must be at least m (${config.minCohort})`);
    }
  }
  if (config.aggregation === 'secure' && Math.max(2, config.minCohort) > MAX_SECURE_COHORT) {
    bad('minCohort (--min-cohort)', `must be at most ${MAX_SECURE_COHORT} with secure aggregation`);
  }
  if (config.catalogSource === '') bad('catalog', 'must not be empty');
  checkInt('catalogRefreshMinutes (--catalog-refresh)', config.catalogRefreshMinutes, 0, 525_600);
  if (config.operatorToken !== undefined && !/^[\x21-\x7e]{16,256}$/.test(config.operatorToken)) {
    bad(
      'operatorToken (HEARTH_OPERATOR_TOKEN or --operator-token-file)',
      'must be 16 to 256 printable characters without spaces',
    );
  }
  if (config.instanceUrl !== undefined) {
    if (!/^https?:\/\/[^/?#\s@]+\/?$/.test(config.instanceUrl)) {
      bad(
        'instanceUrl (--instance-url)',
        `must be an http(s) origin such as http://10.0.0.5:8787, got '${config.instanceUrl}'`,
      );
    }
    if (config.operatorToken === undefined) {
      bad(
        'instanceUrl (--instance-url)',
        'needs the operator token (HEARTH_OPERATOR_TOKEN or --operator-token-file): instances authenticate forwarded requests with a key derived from it',
      );
    }
  }
  if (!(config.secureDropout >= 0 && config.secureDropout <= 0.45)) {
    bad('secureDropout (--secure-dropout)', `must be in [0, 0.45], got ${config.secureDropout}`);
  }
  for (const [what, value] of [
    ['secureStageSeconds (--secure-stage-seconds)', config.secureStageSeconds],
    ['secureJoinSeconds (--secure-join-seconds)', config.secureJoinSeconds],
  ] as const) {
    if (!(value >= 0.1 && value <= 86_400)) bad(what, `must be from 0.1 to 86400, got ${value}`);
  }
}

function checkOneOf(what: string, value: string, allowed: readonly string[]): void {
  if (!allowed.includes(value)) bad(what, `must be one of ${allowed.join(', ')}, got ${value}`);
}

/**
 * The privacy settings, refused at start-up rather than discovered at the first round. Robust
 * aggregators cannot be combined with noise: the coordinate-wise median or trimmed mean of clipped
 * deltas can move by far more than S / m in L2 when one device changes (each coordinate may shift to a
 * different neighbour's value), so sigma = z S / m would not buy the epsilon the accountant reports.
 */
function checkPrivacy(config: ServerConfig): void {
  const z = config.noiseMultiplier;
  if (!(Number.isFinite(z) && z >= 0)) {
    bad('noiseMultiplier (--noise-multiplier)', `must be a finite number >= 0, got ${z}`);
  }
  if (!(config.sampleRate >= 0 && config.sampleRate <= 1)) {
    bad('sampleRate (--sample-rate)', `must be in [0, 1], got ${config.sampleRate}`);
  }
  checkInt('maxStaleness (--max-staleness)', config.maxStaleness, 0, MAX_STALENESS);
  if (!(config.delta > 0 && config.delta < 1)) {
    bad('delta (--delta)', `must be in (0, 1), got ${config.delta}`);
  }
  if (!(config.epsilonBudget > 0)) {
    bad(
      'epsilonBudget (--epsilon-budget)',
      `must be a positive number, got ${config.epsilonBudget}`,
    );
  }
  if (z > 0 && config.aggregator !== 'mean') {
    bad(
      'aggregator (--aggregator)',
      `must be 'mean' when --noise-multiplier > 0 (the sensitivity of ${config.aggregator} is not ` +
        'bounded by S / m, so the reported epsilon would not hold)',
    );
  }
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/**
 * The update body limit for a model of `paramCount` values: header plus a float32 payload (the
 * largest dtype), or the configured override, never above MAX_BODY_LIMIT_BYTES.
 */
export function updateBodyLimit(paramCount: number, config: ServerConfig): number {
  const derived = config.bodyLimitBytes ?? UPDATE_HEADER_BYTES + 4 * paramCount;
  return Math.min(derived, MAX_BODY_LIMIT_BYTES);
}

/** Usage text of the CLI. */
export const USAGE = `Usage: npm run server -- [options]
  --port <n>                 TCP port, 0 for any free port (default ${DEFAULT_CONFIG.port})
  --host <h>                 interface to bind (default ${DEFAULT_CONFIG.host})
  --db <file|url>            SQLite database file, or a postgres:// URL shared by several
                             instances (default ${DEFAULT_CONFIG.dbPath})
  --model <dir>              seed model directory, needed while the database is empty
  --min-cohort <m>           updates per round before aggregation (default ${DEFAULT_CONFIG.minCohort})
  --clip-norm <S>            L2 clipping bound of updates (default ${DEFAULT_CONFIG.clipNorm})
  --server-optimizer <o>     ${SERVER_OPTIMIZERS.join(' | ')} (default ${DEFAULT_CONFIG.serverOptimizer})
  --fedadam-tau <t>          FedAdam's floor on each coordinate's scale (default 0.001 with noise off, the
                             noise std z S / m with noise on, so noise-only coordinates stay still)
  --fedadam-item-tau <t>     FedAdam's tau on the item rows and biases only (default: --fedadam-tau's)
  --server-learning-rate <x> server step size (default 1 with fedavg, ${DEFAULT_FEDADAM_LEARNING_RATE} with fedadam)
  --update-rows <n|full>     item rows an update carries after the dense tensors, named per version from
                             public data (default ${DEFAULT_CONFIG.updateRows}); full: the whole model
  --item-sketch <b|off>      buckets of the count sketch an update carries every item row in, drawn per
                             version (default ${DEFAULT_CONFIG.itemSketch}); off, or --update-rows given: named rows
  --sketch-depth <k>         tables of --item-sketch buckets, each with its own hashes; rows are read as
                             the shrunk mean of their k readings (default ${DEFAULT_CONFIG.sketchDepth})
  --sketch-dense-stride <k>  a sketch carries one in k of the dense tensors' values, drawn per version;
                             the rest read as zero in that round (default ${DEFAULT_CONFIG.sketchDenseStride})
  --row-choice <c>           ${ROW_CHOICES.join(' | ')}: how the rows are named (default ${DEFAULT_CONFIG.rowChoice})
  --aggregator <a>           ${AGGREGATORS.join(' | ')} (default ${DEFAULT_CONFIG.aggregator}: equal weights; all but mean need noise off)
  --weights-dtype <d>        ${WEIGHTS_DTYPES.join(' | ')}: what devices download (default ${DEFAULT_CONFIG.weightsDtype}; int8e / int8: a byte a value, per-row steps coded in a byte / a float32, ~1/4 the bytes)
  --update-dtype <d>         ${DEVICE_UPDATE_DTYPES.join(' | ')}: what devices encode a plaintext update in (default ${DEFAULT_CONFIG.updateDtype}; int8 / int4 / int2: block-scaled, stochastically rounded)
  --trim-fraction <f>        share cut from each end by trimmed-mean, in [0, 0.5) (default ${DEFAULT_CONFIG.trimFraction})
  --noise-multiplier <z>     central DP noise std z * S / m per round; 0 = off (default 0)
  --sample-rate <q>          q: each device's chance of taking part in a round, published in the manifest and used by the accountant (default ${DEFAULT_CONFIG.sampleRate})
  --max-staleness <s>        accept updates computed on up to s versions before the current one, folded into
                             the current round; the accountant then uses q_eff = min(1, (s + 1) q);
                             0 = current version only (default ${DEFAULT_CONFIG.maxStaleness})
  --delta <d>                delta of the reported (epsilon, delta) (default ${DEFAULT_CONFIG.delta})
  --epsilon-budget <e>       stop running rounds before epsilon would exceed e (default: no budget)
  --config <file>            JSON file with { "sites": [{ "id", "key", "origins": [...] }] }; with
                             sites, join and updates need a site's x-hearth-key (default: open)
  --rate-limit <n>           POST and unknown-path requests per minute per client, 0 = off (default ${DEFAULT_CONFIG.rateLimitPerMinute})
  --joins-per-round <n>      updates one client (IPv4 address, IPv6 /64) may place in one round, 0 = off (default ${DEFAULT_CONFIG.joinsPerRound})
  --trust-proxy <hops>       believe X-Forwarded-For from that many proxies in front (default 0: never)
  --request-timeout <s>      close a request whose body is not in s seconds after its headers (default ${DEFAULT_CONFIG.requestTimeoutSeconds})
  --round-deadline <s>       abandon a round still short of m updates after s seconds (default ${DEFAULT_CONFIG.roundDeadlineSeconds})
  --round-window <s>         close rounds on a clock: each window of s seconds (>= 60) takes every
                             update it receives and publishes if its count plus noise reaches m;
                             every window is charged in the ledger (plaintext, s = 0; default 0: off)
  --count-noise <sigma>      std of the noise on a window's count (default ${DEFAULT_CONFIG.countNoise})
  --aggregation <mode>       secure: devices send masked updates and the server learns only the sum of
                             at least m (SecAgg+); plaintext: each update is stored (default ${DEFAULT_CONFIG.aggregation})
  --secure-cohort <n>        devices a secure round forms with (default m)
  --secure-stage-seconds <s> how long each secure stage waits before a silent device counts as dropped
                             (default ${DEFAULT_CONFIG.secureStageSeconds})
  --secure-join-seconds <s>  how long a forming secure round waits for n devices before forming with
                             the m or more it has (default ${DEFAULT_CONFIG.secureJoinSeconds})
  --secure-dropout <d>       share of a secure round's devices expected to leave; sets each device's
                             neighbours k so the round survives it (default ${DEFAULT_CONFIG.secureDropout})
  --instance-url <url>       where instances sharing this database reach this one; they forward a
                             secure round's requests to the instance running it (needs the operator token)
  --validation <file>        sessions (item ids, one session a line) to report each version's HR@20 on
  --rollback-drop <f>        with --validation: republish the best recent version when one's HR@20 falls more than f below it, 0 = never (default ${DEFAULT_CONFIG.rollbackDrop})
  --round-guard <mode>       flag (log and count) or rollback (plaintext: republish the base; secure: abandon) a round
                             whose updates point alike, sit at the bound, or whose secure sum carries more energy than the
                             window's; off (default: rollback in secure mode, flag in plaintext)
  --round-guard-window <n>   normal rounds a round is judged against (default ${DEFAULT_CONFIG.roundGuardWindow})
  --round-guard-threshold <t> robust standard deviations above the window's median (default ${DEFAULT_CONFIG.roundGuardThreshold})
  --catalog <file|url>       the site's items: JSON, JSON Lines, CSV/TSV, RSS, Atom, JSON Feed or a sitemap;
                             stored at start when changed, served at GET /v1/catalog
  --catalog-refresh <min>    re-read a catalogue URL every so many minutes, 0 = never (default ${DEFAULT_CONFIG.catalogRefreshMinutes})
  --operator-token-file <f>  file holding the token PUT /v1/catalog needs (Authorization: Bearer);
                             or set HEARTH_OPERATOR_TOKEN. Unset: catalogue updates are refused
  --log-level <l>            ${SERVER_LOG_LEVELS.join(' | ')} (default ${DEFAULT_CONFIG.logLevel})`;

type FlagParser = (value: string, flag: string, out: Record<string, unknown>) => void;

function intFlag(key: keyof ServerConfig, min: number, max: number): FlagParser {
  return (value, flag, out) => {
    const n = /^-?\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      bad(flag, `must be an integer from ${min} to ${max}, got '${value}'`);
    }
    out[key] = n;
  };
}

function positiveFlag(key: keyof ServerConfig): FlagParser {
  return (value, flag, out) => {
    const n = value.trim() === '' ? NaN : Number(value);
    if (!Number.isFinite(n) || !(n > 0)) bad(flag, `must be a positive number, got '${value}'`);
    out[key] = n;
  };
}

/** A number flag checked only for being a number; the range check is resolveConfig's, with a message. */
function numberFlag(key: keyof ServerConfig): FlagParser {
  return (value, flag, out) => {
    const n = value.trim() === '' ? NaN : Number(value);
    if (Number.isNaN(n)) bad(flag, `must be a number, got '${value}'`);
    out[key] = n;
  };
}

function oneOfFlag(key: keyof ServerConfig, allowed: readonly string[]): FlagParser {
  return (value, flag, out) => {
    if (!allowed.includes(value)) {
      bad(flag, `must be one of ${allowed.join(', ')}, got '${value}'`);
    }
    out[key] = value;
  };
}

function stringFlag(key: keyof ServerConfig): FlagParser {
  return (value, flag, out) => {
    if (value === '') bad(flag, 'must not be empty');
    out[key] = value;
  };
}

const FLAGS: Readonly<Record<string, FlagParser>> = {
  '--port': intFlag('port', 0, 65535),
  '--host': stringFlag('host'),
  '--db': stringFlag('dbPath'),
  '--model': stringFlag('modelDir'),
  '--min-cohort': intFlag('minCohort', 1, 1_000_000),
  '--clip-norm': positiveFlag('clipNorm'),
  '--server-optimizer': oneOfFlag('serverOptimizer', SERVER_OPTIMIZERS),
  '--server-learning-rate': positiveFlag('serverLearningRate'),
  '--item-learning-rate': positiveFlag('itemLearningRate'),
  '--fedadam-tau': positiveFlag('fedAdamTau'),
  '--fedadam-item-tau': positiveFlag('fedAdamItemTau'),
  '--aggregator': oneOfFlag('aggregator', AGGREGATORS),
  '--update-rows': (value, flag, out) => {
    if (value === 'full') out.updateRows = 'full';
    else intFlag('updateRows', 0, 5_000_000)(value, flag, out);
  },
  '--item-sketch': (value, flag, out) => {
    if (value === 'off') out.itemSketch = 'off';
    else intFlag('itemSketch', 1, 5_000_000)(value, flag, out);
  },
  '--sketch-depth': intFlag('sketchDepth', 1, MAX_SKETCH_DEPTH),
  '--sketch-dense-stride': intFlag('sketchDenseStride', 1, MAX_DENSE_STRIDE),
  '--row-choice': oneOfFlag('rowChoice', ROW_CHOICES),
  '--weights-dtype': oneOfFlag('weightsDtype', WEIGHTS_DTYPES),
  '--update-dtype': oneOfFlag('updateDtype', DEVICE_UPDATE_DTYPES),
  '--trim-fraction': numberFlag('trimFraction'),
  '--noise-multiplier': numberFlag('noiseMultiplier'),
  '--sample-rate': numberFlag('sampleRate'),
  '--max-staleness': intFlag('maxStaleness', 0, MAX_STALENESS),
  '--delta': numberFlag('delta'),
  '--epsilon-budget': positiveFlag('epsilonBudget'),
  '--config': (value, flag, out) => {
    if (value === '') bad(flag, 'must not be empty');
    out.sites = loadConfigFile(value).sites;
  },
  '--rate-limit': intFlag('rateLimitPerMinute', 0, 1_000_000_000),
  '--joins-per-round': intFlag('joinsPerRound', 0, 1_000_000),
  '--trust-proxy': intFlag('trustProxyHops', 0, 16),
  '--round-deadline': intFlag('roundDeadlineSeconds', 1, 3_153_600_000),
  '--round-window': intFlag('roundWindowSeconds', 0, MAX_ROUND_WINDOW_SECONDS),
  '--count-noise': positiveFlag('countNoise'),
  '--request-timeout': intFlag('requestTimeoutSeconds', 1, 3600),
  '--validation': stringFlag('validationPath'),
  '--rollback-drop': numberFlag('rollbackDrop'),
  '--round-guard': oneOfFlag('roundGuard', ROUND_GUARD_MODES),
  '--round-guard-window': intFlag('roundGuardWindow', MIN_WINDOW, 10_000),
  '--round-guard-threshold': positiveFlag('roundGuardThreshold'),
  '--catalog': stringFlag('catalogSource'),
  '--catalog-refresh': intFlag('catalogRefreshMinutes', 0, 525_600),
  '--operator-token-file': (value, flag, out) => {
    if (value === '') bad(flag, 'must not be empty');
    try {
      out.operatorToken = readFileSync(value, 'utf8').trim();
    } catch (error) {
      bad(flag, `cannot read ${value} (${(error as Error).message})`);
    }
  },
  '--aggregation': oneOfFlag('aggregation', AGGREGATION_MODES),
  '--secure-cohort': intFlag('secureCohort', 2, MAX_SECURE_COHORT),
  '--secure-stage-seconds': numberFlag('secureStageSeconds'),
  '--secure-join-seconds': numberFlag('secureJoinSeconds'),
  '--secure-dropout': numberFlag('secureDropout'),
  '--instance-url': stringFlag('instanceUrl'),
  '--log-level': (value, flag, out) => {
    if (!(SERVER_LOG_LEVELS as readonly string[]).includes(value)) {
      bad(flag, `must be one of ${SERVER_LOG_LEVELS.join(', ')}, got '${value}'`);
    }
    out.logLevel = value;
  },
};

/**
 * Parses CLI flags (`--flag value` or `--flag=value`; argv without the node and script entries) into
 * a validated config; `env` may carry HEARTH_OPERATOR_TOKEN. Throws HEARTH_E_CONFIG naming the
 * offending flag.
 */
export function parseArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): ServerConfig {
  const out: Record<string, unknown> = {};
  // The operator token comes from the environment (or a file): a flag's value shows in `ps`.
  if (env.HEARTH_OPERATOR_TOKEN) out.operatorToken = env.HEARTH_OPERATOR_TOKEN;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const parse = FLAGS[flag];
    if (!parse) bad(flag, 'is not a known option (see --help)');
    let value: string | undefined;
    if (flag !== arg) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      // A following flag is a forgotten value, not the value itself.
      if (value === undefined || value.startsWith('--')) bad(flag, 'needs a value');
      i++;
    }
    parse(value, flag, out);
  }
  return resolveConfig(out as Partial<ServerConfig>);
}

/** FedAdam's tau under `config`: the configured one, else 1e-3, or the noise std z S / m with noise on. */
export function fedAdamTauOf(
  config: Pick<ServerConfig, 'fedAdamTau' | 'noiseMultiplier' | 'clipNorm' | 'minCohort'>,
): number {
  if (config.fedAdamTau !== undefined) return config.fedAdamTau;
  const std = (config.noiseMultiplier * config.clipNorm) / config.minCohort;
  return Math.max(1e-3, std);
}
