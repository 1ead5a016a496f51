/**
 * Validation and storage of one `POST /v1/updates` body. The checks run cheapest and most basic first,
 * and all of them before anything is stored, so a rejected update changes nothing:
 * framing -> base version known -> base version current -> layout -> finite -> norm -> token.
 */
import type { UpdateReply } from '../protocol/api.js';
import { allFinite, l2Norm } from '../protocol/clip.js';
import { HearthError } from '../protocol/errors.js';
import { decodeUpdate, tokenToHex, UPDATE_HEADER_BYTES } from '../protocol/update-format.js';
import { aggregate, updateWeight } from './aggregate.js';
import type { ServerConfig } from './config.js';
import type { RoundPolicy, Store } from './store.js';
import { manifestParamCount } from './versions.js';

/**
 * Relative slack on the norm check. Devices clip in float32 and may then quantise to float16, whose
 * rounding (relative 2^-11 per value) can lift the norm slightly over S; the aggregator re-clips.
 */
export const NORM_SLACK = 1e-3;

/** Largest value count a body within `bodyLimit` bytes can carry (float16, 2 bytes a value). */
export function maxParamsFor(bodyLimit: number): number {
  return Math.max(0, Math.floor((bodyLimit - UPDATE_HEADER_BYTES) / 2));
}

/** The round policy of a config: minimum cohort m and weighted FedAvg with re-clipping. */
export function roundPolicy(config: ServerConfig): RoundPolicy {
  return {
    minCohort: config.minCohort,
    aggregate: (global, updates) =>
      aggregate(global, updates, {
        clipNorm: config.clipNorm,
        maxExamples: config.maxExamples,
        serverLearningRate: config.serverLearningRate,
      }),
  };
}

/** Validates an update body and stores it (aggregating when it completes the round). */
export async function ingestUpdate(
  body: Uint8Array,
  options: { readonly store: Store; readonly config: ServerConfig; readonly maxParams: number },
): Promise<UpdateReply> {
  const { store, config } = options;
  const update = decodeUpdate(body, options.maxParams);
  const manifest = await store.getManifest(update.baseVersion);
  if (!manifest) {
    throw new HearthError('HEARTH_E_UPDATE_VERSION_UNKNOWN', `version ${update.baseVersion}`);
  }
  const current = await store.latestVersion();
  if (update.baseVersion !== current) {
    throw new HearthError(
      'HEARTH_E_UPDATE_STALE',
      `based on ${update.baseVersion}, now ${current}`,
    );
  }
  const paramCount = manifestParamCount(manifest);
  if (update.layoutHash !== manifest.layoutHash || update.delta.length !== paramCount) {
    throw new HearthError(
      'HEARTH_E_UPDATE_SHAPE',
      `layout ${update.layoutHash} with ${update.delta.length} values, model has ` +
        `${manifest.layoutHash} with ${paramCount}`,
    );
  }
  if (!allFinite(update.delta)) throw new HearthError('HEARTH_E_UPDATE_NONFINITE');
  const norm = l2Norm(update.delta);
  if (norm > config.clipNorm * (1 + NORM_SLACK)) {
    throw new HearthError('HEARTH_E_UPDATE_NORM', `norm ${norm}, bound ${config.clipNorm}`);
  }
  const outcome = await store.submitUpdate(
    {
      token: tokenToHex(update.roundToken),
      baseVersion: update.baseVersion,
      examples: updateWeight(update.examples, config.maxExamples),
      norm,
      delta: update.delta,
    },
    roundPolicy(config),
  );
  return {
    accepted: true,
    round: outcome.round,
    received: outcome.received,
    version: outcome.version,
  };
}
