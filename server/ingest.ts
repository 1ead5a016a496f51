/**
 * Validation and storage of one `POST /v1/updates` body. The checks run cheapest and most basic first,
 * and all of them before anything is stored, so a rejected update changes nothing:
 * framing -> base version known -> base version within the staleness bound -> layout version known
 * -> layout -> finite -> norm -> token. An update on an older version (at most `--max-staleness`
 * behind) is folded into the current round as it is, a delta applied to the current model, as FedBuff
 * does (Nguyen et al. 2022, https://arxiv.org/abs/2106.06639). It is not down-weighted for its
 * staleness: with noise on, the fixed-denominator mean needs every update to weigh the same for its
 * sensitivity to stay S / m. A stale item sketch must come in the current version's layout
 * (`layoutAhead`): carried over from an older one it would bring more noise than signal (fitToVersion).
 */
import type { UpdateReply } from '../protocol/api.js';
import { allFinite, l2Norm } from '../protocol/clip.js';
import { HearthError } from '../protocol/errors.js';
import type { ModelManifest } from '../protocol/manifest.js';
import {
  decodeUpdate,
  tokenToHex,
  UPDATE_HEADER_BYTES,
  type ModelUpdate,
} from '../protocol/update-format.js';
import {
  fitUpdate,
  manifestLayout,
  strideOfOlderSdk,
  updateLength,
} from '../protocol/update-layout.js';
import {
  aggregate,
  aggregateSum,
  updateWeight,
  type AggregateOptions,
  type SentCoordinates,
} from './aggregate.js';
import { fedAdamTauOf, type ServerConfig } from './config.js';
import { FEDADAM, fedAdamStep, type FedAdamState } from './fedadam.js';
import { addGaussianNoise, cryptoGaussian, type GaussianRng } from './gaussian.js';
import { assertBudgetAllowsRound, currentSettings } from './privacy.js';
import type {
  RoundContext,
  RoundExpiry,
  RoundOutput,
  SkellamRound,
  Store,
  SumRoundPolicy,
} from './store.js';
import { carriesOver, LayoutMoved, withinStaleness } from './store-rules.js';
import { layoutFieldsOf } from './versions.js';
import type { Judgement, RoundGuard } from './round-guard.js';

/**
 * Relative slack on the norm check. Devices clip in float32 and may then quantise to float16, whose
 * rounding (relative 2^-11 per value) can lift the norm slightly over S; the aggregator re-clips.
 */
export const NORM_SLACK = 1e-3;

/** Largest value count a body within `bodyLimit` bytes can carry (float16, 2 bytes a value). */
export function maxParamsFor(bodyLimit: number): number {
  return Math.max(0, Math.floor((bodyLimit - UPDATE_HEADER_BYTES) / 2));
}

/**
 * The standard deviation of the central DP noise on a round's mean: z * S / m (0 with noise off), or
 * z * S / D for a mean over `denominator` D (a round window's noised count, round-windows.ts).
 */
export function noiseStd(config: ServerConfig, denominator = config.minCohort): number {
  return (config.noiseMultiplier * config.clipNorm) / denominator;
}

export type { SumRoundPolicy } from './store.js';

/**
 * The round policy of a config: minimum cohort m; the budget check; re-clipping and the configured
 * aggregator; with noise on, the fixed-denominator mean plus one Gaussian draw per coordinate (std
 * z * S / m); then the FedAvg or FedAdam step. All of it runs inside the store's transaction, so noise
 * is drawn once per published round: a rolled-back attempt publishes nothing.
 * `rng` is for tests; by default the noise comes from node:crypto. With round windows the policy
 * never publishes on a count (round-windows.ts decides when a window ends), and `window` gives the
 * denominator of the window being published.
 */
export function roundPolicy(
  config: ServerConfig,
  rng?: GaussianRng,
  window?: { readonly denominator: number },
): SumRoundPolicy {
  const noiseOn = config.noiseMultiplier > 0;
  const windows = config.roundWindowSeconds > 0;
  // A round window's mean is over its noised count when that passed m (round-windows.ts).
  const denominator = window?.denominator ?? config.minCohort;
  /** Runs `fold` with the round's options; returns what the store commits. */
  const round = (
    context: RoundContext,
    fold: (options: AggregateOptions) => Float32Array,
    skellam?: SkellamRound,
    sent?: SentCoordinates,
  ): RoundOutput => {
    // A window is charged whether or not it publishes, so its budget is checked when devices join
    // it (app.ts), not here: refusing to publish would not unspend it.
    if (!windows) assertBudgetAllowsRound(context.ledger, config);
    let optimizerState: FedAdamState | undefined;
    const itemStep =
      config.itemLearningRate !== undefined && context.itemSpan
        ? { ...context.itemSpan, rate: config.itemLearningRate }
        : undefined;
    const options: AggregateOptions = {
      clipNorm: config.clipNorm,
      maxExamples: config.maxExamples,
      serverLearningRate: config.serverLearningRate,
      ...(itemStep ? { itemStep } : {}),
      aggregator: config.aggregator,
      trimFraction: config.trimFraction,
      // With the devices' Skellam noise already in the sum (secure rounds), none is added here.
      ...(noiseOn ? { fixedDenominator: denominator } : {}),
      // Noise goes into the coordinates the devices sent (one device moves them by at most S), and
      // only then are they read into the model's (an item sketch read back into rows).
      ...(sent ? { sent } : {}),
      ...(noiseOn && !skellam
        ? {
            adjustMeanDelta: (mean: Float64Array) =>
              addGaussianNoise(mean, noiseStd(config, denominator), rng ?? cryptoGaussian()),
          }
        : {}),
      ...(config.serverOptimizer === 'fedadam'
        ? {
            applyDelta: (weights: Float32Array, delta: Float64Array) => {
              const tau = fedAdamTauOf(config);
              const itemTau = config.fedAdamItemTau ?? tau;
              const span = context.itemSpan;
              const items =
                span && (itemStep || itemTau !== tau)
                  ? { ...span, rate: itemStep?.rate ?? config.serverLearningRate, tau: itemTau }
                  : undefined;
              const step = fedAdamStep(
                weights,
                delta,
                context.optimizerState,
                { rate: config.serverLearningRate, ...(items ? { items } : {}) },
                { ...FEDADAM, tau },
              );
              optimizerState = step.state;
              return step.weights;
            },
          }
        : {}),
    };
    const weights = fold(options);
    return {
      weights,
      privacy: { ...currentSettings(config), ...(skellam ? { skellam } : {}) },
      ...(optimizerState ? { optimizerState } : {}),
    };
  };
  return {
    // A window publishes when it ends (round-windows.ts), never on a count of updates.
    minCohort: windows ? Infinity : config.minCohort,
    maxStaleness: config.maxStaleness,
    aggregate: (global, updates, context) =>
      round(context, (options) => aggregate(global, updates, options), undefined, context.sent),
    aggregateSum: (global, total, context) =>
      round(
        context,
        (options) => aggregateSum(global, total, options),
        total.skellam,
        total.sent ?? context.sent,
      ),
    layoutFields: layoutFieldsOf(config),
  };
}

/**
 * Throws HEARTH_E_UPDATE_SHAPE unless `update` has `model`'s layout hash and the length of its update
 * layout (the dense tensors and the rows its manifest names, or the whole model).
 */
function checkLayout(update: ModelUpdate, model: ModelManifest): void {
  const length = updateLength(model.dims, manifestLayout(model.federation));
  if (update.layoutHash !== model.layoutHash || update.delta.length !== length) {
    throw new HearthError(
      'HEARTH_E_UPDATE_SHAPE',
      `layout ${update.layoutHash} with ${update.delta.length} values, v${model.version} has ` +
        `${model.layoutHash} with ${length}`,
    );
  }
}

/** Times ingest fits an update again after a round published while it was being stored. */
const LAYOUT_RETRIES = 3;

/** Validates an update body and stores it (aggregating when it completes the round). */
export async function ingestUpdate(
  body: Uint8Array,
  options: {
    readonly store: Store;
    readonly config: ServerConfig;
    readonly maxParams: number;
    /** Noise source for tests; node:crypto by default. */
    readonly rng?: GaussianRng;
    /** The round deadline to apply before storing; left out, rounds never expire. */
    readonly expiry?: RoundExpiry;
    /** Checks the round the update is about to land in (UpdateSubmission.admit). */
    readonly admit?: (round: number) => void;
    /** Norm and direction statistics of the rounds (round-guard.ts); left out, none. */
    readonly guard?: RoundGuard;
    /** Called, before the reply, with a round the guard found anomalous and the version it made. */
    readonly onAnomalous?: (judgement: Judgement, version: number) => Promise<void>;
  },
): Promise<UpdateReply> {
  const { store, config } = options;
  const update = decodeUpdate(body, options.maxParams);
  const manifest = await store.getManifest(update.baseVersion);
  if (!manifest) {
    // An old version's manifest is erased (MANIFESTS_KEPT): far beyond any staleness bound.
    const latest = await store.latestVersion();
    if (latest !== undefined && update.baseVersion >= 1 && update.baseVersion < latest) {
      throw new HearthError(
        'HEARTH_E_UPDATE_STALE',
        `version ${update.baseVersion} (now ${latest})`,
      );
    }
    throw new HearthError('HEARTH_E_UPDATE_VERSION_UNKNOWN', `version ${update.baseVersion}`);
  }
  const current = await store.latestVersion();
  if (current === undefined || !withinStaleness(update.baseVersion, current, config.maxStaleness)) {
    throw new HearthError(
      'HEARTH_E_UPDATE_STALE',
      `based on ${update.baseVersion}, now ${current}, at most ${config.maxStaleness} behind`,
    );
  }
  // The version whose layout the payload is in: its base version's, or a newer one's.
  const layout = await layoutManifest(update, manifest, current, store);
  // An SDK that predates the dense stride sends every dense value: keep those the stride carries.
  const strided = strideOfOlderSdk(update.delta, layout.dims, manifestLayout(layout.federation));
  const sent = strided ? { ...update, delta: strided } : update;
  checkLayout(sent, layout);
  if (!allFinite(update.delta)) throw new HearthError('HEARTH_E_UPDATE_NONFINITE');
  const sentNorm = l2Norm(update.delta);
  if (sentNorm > config.clipNorm * (1 + NORM_SLACK)) {
    throw new HearthError('HEARTH_E_UPDATE_NORM', `norm ${sentNorm}, bound ${config.clipNorm}`);
  }
  const norm = strided ? l2Norm(strided) : sentNorm;
  const policy = roundPolicy(config, options.rng);
  let target = current;
  for (let attempt = 0; ; attempt++) {
    try {
      const delta = await fitToVersion(sent, layout, target, store);
      const outcome = await store.submitUpdate(
        {
          token: tokenToHex(update.roundToken),
          baseVersion: update.baseVersion,
          examples: updateWeight(update.examples, config.maxExamples),
          norm,
          delta,
          layoutVersion: target,
          ...(options.admit ? { admit: options.admit } : {}),
        },
        policy,
        options.expiry,
      );
      if (options.guard) {
        options.guard.observe(outcome.round, delta, norm);
        const judgement = outcome.published ? options.guard.close(outcome.round) : undefined;
        if (judgement && judgement.anomalies.length > 0) {
          await options.onAnomalous?.(judgement, outcome.version);
        }
      }
      return {
        accepted: true,
        round: outcome.round,
        received: outcome.received,
        version: outcome.version,
      };
    } catch (error) {
      // A round published while this one was stored: fit the update to the new current version.
      if (!(error instanceof LayoutMoved) || attempt + 1 >= LAYOUT_RETRIES) throw error;
      target = error.current;
    }
  }
}

/**
 * The manifest of the version whose layout `update`'s payload is in: `base`'s, or with a header's
 * `layoutAhead` of k, version base + k's (a device that trained on `base` sending in a layout
 * published meanwhile). HEARTH_E_UPDATE_VERSION_UNKNOWN when that version is not published yet.
 */
async function layoutManifest(
  update: ModelUpdate,
  base: ModelManifest,
  current: number,
  store: Store,
): Promise<ModelManifest> {
  const ahead = update.layoutAhead ?? 0;
  if (ahead === 0) return base;
  const version = base.version + ahead;
  const manifest = version <= current ? await store.getManifest(version) : undefined;
  if (!manifest) {
    throw new HearthError(
      'HEARTH_E_UPDATE_VERSION_UNKNOWN',
      `layout of version ${version} (${ahead} after ${base.version}), now ${current}`,
    );
  }
  return manifest;
}

/**
 * `update`'s delta, in the layout of version `from` (its base version's or a newer one's), in the
 * layout of version `target`, into whose round it is counted: a stale update's rows that the
 * current version does not name are dropped, so its norm stays within S. An update already in
 * `target`'s layout is taken as it is. An update across a change of the model's shape is refused,
 * never reshaped; one across new catalogue rows carries over (store-rules.ts carriesOver).
 */
async function fitToVersion(
  update: ModelUpdate,
  from: ModelManifest,
  target: number,
  store: Store,
): Promise<Float32Array> {
  if (target === from.version) return update.delta;
  // Carried into another version's hashes, a sketch keeps about a fifth of its items' signal under
  // its whole norm of bucket mates' rows: it brings the model more noise than signal (README "Stale
  // devices, measured"), so it is refused; the device sends its training in the current version's
  // sketch instead (layoutAhead).
  if (from.federation.itemSketch) {
    throw new HearthError(
      'HEARTH_E_UPDATE_STALE',
      `sketched with version ${from.version}'s hashes, now ${target}: ` +
        `send it in version ${target}'s sketch (layoutAhead ${target - update.baseVersion})`,
    );
  }
  const manifest = await store.getManifest(target);
  if (!manifest) throw new HearthError('HEARTH_E_INTERNAL', `version ${target} is missing`);
  if (!carriesOver(from, manifest)) checkLayout(update, manifest);
  return fitUpdate(
    update.delta,
    from.dims,
    manifestLayout(from.federation),
    manifestLayout(manifest.federation),
    manifest.dims,
  );
}
