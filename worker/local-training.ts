/**
 * Local learning before an upload: a few optimiser steps on the visitor's own sessions, starting
 * from the global weights and pulled back toward them (a proximal term, as in FedProx) so the local
 * copy neither drifts nor forgets, then the clipped delta that is all the server will see.
 */
import { showForDebugging } from './debug-view.js';
import type { EngineConfig, JoinedRound, SyncResult } from '../protocol/api.js';
import {
  denseLength,
  maxStalenessOf,
  roundWindowAt,
  sampleRateOf,
  type FederationParams,
  type ModelDims,
  type ModelManifest,
} from '../protocol/manifest.js';
import { HearthError } from '../protocol/errors.js';
import { createLogger } from '../protocol/logger.js';
import { clipForUpload, isRetryable, joinRound, shareUpdate, skipped } from './federated-client.js';
import { fetchManifest, type GlobalModel, type LoadedModel } from './model-source.js';
import { SessionModel } from '../model/session-model.js';
import { toWindows } from '../model/batches.js';
import { ensureGradients } from '../model/gradients.js';
import type { TrainSession } from '../model/train.js';
import { localUpdates } from '../model/local-update.js';
import {
  gatherLayout,
  modelLayout,
  sentUpdate,
  fitUpdate,
  grownFrom,
  manifestLayout,
  scatterLayout,
  updateLength,
  wholeUpdateIn,
  type UpdateLayout,
} from '../protocol/update-layout.js';
import { drawForVersion, drawForWindow, type Draw } from './participation.js';
import { windowNoiseMultiplier } from '../protocol/privacy/index.js';
import { roundPrivacy, type SecureRoundInfo } from '../protocol/secagg/http.js';
import { takePartSecurely } from './secure-client.js';
import { settingsOver } from './settings.js';
import { toTrainingSessions } from './sessions.js';
import type { InteractionStore, OutboxEntry } from './store.js';

const log = createLogger('learn');

/**
 * Local fine-tuning per shared update (model/train.ts' options of the same names). The engine
 * merges what its options pass over LOCAL_TRAINING once (localTrainingSettings) and hands it down.
 */
export interface LocalTrainingSettings {
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  /** Optimiser steps of a round that starts from the global weights. */
  readonly maxSteps: number;
  /** Proximal pull toward the global weights. */
  readonly mu: number;
}

/** The engine's local-training settings unless its options say otherwise: few steps (frozen). */
export const LOCAL_TRAINING: LocalTrainingSettings = Object.freeze({
  epochs: 2,
  batchSize: 16,
  learningRate: 0.005,
  maxSteps: 8,
  mu: 0.1,
});

/** `overrides` over LOCAL_TRAINING (an undefined value keeps the default), frozen. */
export function localTrainingSettings(
  overrides: Partial<LocalTrainingSettings> = {},
): LocalTrainingSettings {
  return settingsOver(LOCAL_TRAINING, overrides);
}

/** What one round of local learning produced. */
export interface LocalResult {
  /** The fine-tuned model (the caller owns it and disposes it). */
  readonly model: SessionModel;
  readonly weights: Float32Array;
  /** The update to send: clipped delta against `global`, with its base version and layout. */
  readonly update: Omit<OutboxEntry, 'createdAt'>;
  /**
   * The same training sent in another version's layout `to` (on `toDims`, whose new rows are zero),
   * clipped to `clipNorm`: where the device trained the whole model (an item sketch), its whole
   * update cut or sketched afresh with `to`'s hashes; undefined where it trained only the rows its
   * version named, which `to` may not name.
   */
  readonly sendIn: (
    to: UpdateLayout,
    toDims: ModelDims,
    clipNorm: number,
  ) => Float32Array | undefined;
}

/** Steps on top of a local copy that online learning already fine-tuned for this version. */
export const TOP_UP_STEPS = 2;

/** Uniform negatives a device scores in local training (model/local-update.ts). */
export const LOCAL_NEGATIVES = 512;

/**
 * Fine-tunes a copy of `global` on `sessions` under `settings` and computes the clipped delta,
 * with the local training and clipping `npm run federate` runs for a population
 * (worker/device-update.ts). Each step trains on all the device's examples; `epochs` passes of
 * `batchSize` windows set the step count, capped at `maxSteps`. With `local` (the device's fine-tuned copy of this very version,
 * from online learning) it starts from there and only tops it up with a couple of steps; the delta
 * is always against the global weights.
 */
export async function learnLocally(
  global: GlobalModel,
  sessions: readonly TrainSession[],
  local?: Float32Array,
  settings: LocalTrainingSettings = LOCAL_TRAINING,
): Promise<LocalResult> {
  const { dims, version, layoutHash, federation } = global.manifest;
  const reuse = local !== undefined && local.length === global.weights.length;
  const { epochs, batchSize, learningRate, maxSteps, mu } = settings;
  const windows = toWindows(sessions, dims.maxSessionLength).length;
  const planned = epochs * Math.ceil(windows / Math.max(1, batchSize));
  const steps = Math.min(reuse ? TOP_UP_STEPS : maxSteps, planned);
  await ensureGradients();
  // The round's layout (the dense tensors and the rows the server names, or an item sketch), the
  // same for every device; a sketching device trains the whole model.
  const sent = manifestLayout(federation);
  const layout = modelLayout(sent);
  const { deltas, examples } = localUpdates(
    dims,
    global.weights,
    [sessions],
    layout,
    // The negatives' seed is public (the version): it says nothing about the visitor.
    { steps, learningRate, mu, optimizer: 'adam', negatives: LOCAL_NEGATIVES, seed: version },
    reuse ? [local] : undefined,
  );
  const raw = deltas[0]!;
  // The device adopts its own training unclipped (the layout's coordinates; the rest stay as the
  // copy it started from); what it sends (the update, or its sketch) is clipped to S.
  const weights = (reuse && local ? local : global.weights).slice();
  const trained = gatherLayout(global.weights, dims, layout, new Float32Array(raw.length));
  for (let i = 0; i < raw.length; i++) trained[i]! += raw[i]!;
  scatterLayout(trained, dims, layout, weights);
  // Yield once: the training above ran synchronously on the worker's thread.
  await new Promise((resolve) => setTimeout(resolve, 0));
  return {
    model: SessionModel.fromFlat(dims, weights),
    weights,
    update: {
      baseVersion: version,
      layoutHash,
      delta: clipForUpload(Float32Array.from(sentUpdate(raw, dims, sent)), federation.clipNorm),
      examples: steps > 0 ? examples[0]! : 0,
    },
    sendIn: (to, toDims, clipNorm) =>
      layout.kind === 'full'
        ? clipForUpload(Float32Array.from(wholeUpdateIn(raw, dims, to, toDims)), clipNorm)
        : undefined,
  };
}

/**
 * What a device sends into a secure round on `target`, a newer version than `own`, the one it
 * trained on: its training sent afresh in the round's layout where it has it (`fresh`, the
 * training of this very update: LocalResult.sendIn), else `delta`, the update it holds, carried
 * over (fitUpdate: a sketch read back and sketched again, its items shrunk by their bucket mates).
 */
export function carriedInput(
  delta: Float32Array,
  own: Pick<GlobalModel['manifest'], 'dims' | 'federation'>,
  target: Pick<GlobalModel['manifest'], 'dims' | 'federation'>,
  fresh: LocalResult | undefined,
): Float32Array {
  const to = manifestLayout(target.federation);
  return (
    fresh?.sendIn(to, target.dims, target.federation.clipNorm) ??
    fitUpdate(delta, own.dims, manifestLayout(own.federation), to, target.dims)
  );
}

/**
 * Where the server published a newer version while this device trained, its training `fresh` in
 * that version's layout, clipped to its S, with that version's manifest: the server takes it as a
 * fresh update of that version (the header's `layoutAhead`), where an update in its own version's
 * sketch would be carried over, its items shrunk by their bucket mates (fitUpdate). Only where
 * both manifests say the server takes newer layouts (`federation.layoutAhead`), the newer version
 * is within the staleness bound and has the same model or one grown by catalogue rows, and the
 * device trained the whole model (`fresh.sendIn`); otherwise, or when the manifest (public: the
 * same GET any page makes) cannot be fetched, undefined, and the update goes in its own layout.
 */
export async function inNewestLayout(
  endpoint: string,
  own: ModelManifest,
  fresh: LocalResult,
): Promise<{ readonly manifest: ModelManifest; readonly delta: Float32Array } | undefined> {
  if (own.federation.layoutAhead !== true || maxStalenessOf(own.federation) === 0) return undefined;
  const newest = await fetchManifest(endpoint).catch(() => undefined);
  if (!newest || newest.version <= own.version) return undefined;
  const { federation, dims } = newest;
  const fits =
    federation.layoutAhead === true &&
    newest.version - own.version <= maxStalenessOf(federation) &&
    (newest.layoutHash === own.layoutHash || grownFrom(own.dims, dims));
  if (!fits) return undefined;
  const delta = fresh.sendIn(manifestLayout(federation), dims, federation.clipNorm);
  return delta ? { manifest: newest, delta } : undefined;
}

/**
 * The pending (offline) update if the server still takes it on top of `global`: computed on a
 * version at most the manifest's `federation.maxStaleness` behind (0 for older manifests: this very
 * version), with the same layout. Anything else is dropped. Under an item sketch only this very
 * version's is sent: an older version's sketch would be carried into this one's and keep about a
 * fifth of its items' signal (protocol/update-layout.ts fitUpdate), so the device trains afresh on
 * this version instead, under the coin it flipped for it, from the same local history.
 */
export async function currentOutbox(
  store: InteractionStore,
  global: GlobalModel,
): Promise<OutboxEntry | undefined> {
  const pending = await store.getOutbox().catch(() => undefined);
  if (!pending) return undefined;
  const { version, layoutHash, federation } = global.manifest;
  const behind = version - pending.baseVersion;
  const sketched = manifestLayout(federation).kind === 'sketch';
  const fits =
    behind >= 0 &&
    behind <= (sketched ? 0 : maxStalenessOf(federation)) &&
    pending.layoutHash === layoutHash &&
    fitsLayout(pending.delta.length, global, behind);
  if (fits) return pending;
  const why = sketched && behind > 0 ? '; training afresh in its sketch' : '';
  log.info(`dropping the pending update for v${pending.baseVersion} (now v${version}${why})`);
  await store.setOutbox(null).catch(() => undefined);
  return undefined;
}

/** Drops the pending update, if any: rounds that close on a clock carry nothing over. */
async function dropOutbox(store: InteractionStore): Promise<void> {
  const pending = await store.getOutbox().catch(() => undefined);
  if (!pending) return;
  log.info(
    `dropping the pending update for v${pending.baseVersion}: round windows carry none over`,
  );
  await store.setOutbox(null).catch(() => undefined);
}

/**
 * Whether an update of `length` values may be in the layout of a version `behind` versions before
 * `manifest`'s: this version's layout exactly; for an older one (whose manifest the device no longer
 * has) the dense tensors and whole rows. The server checks it against that version's layout.
 */
function fitsLayout(length: number, global: GlobalModel, behind: number): boolean {
  const { dims, federation } = global.manifest;
  const layout = manifestLayout(federation);
  if (behind === 0) {
    return length === (layout.kind === 'full' ? global.weights.length : updateLength(dims, layout));
  }
  if (length === global.weights.length) return true;
  const rows = length - denseLength(dims);
  return rows >= 0 && rows % (dims.embedding + 1) === 0 && rows / (dims.embedding + 1) < dims.items;
}

/** What one sync needs from the engine. */
export interface ShareHost {
  readonly config: EngineConfig;
  /** How local learning trains (the engine's settings). */
  readonly settings: LocalTrainingSettings;
  /** The global model served when the sync started. */
  readonly global: LoadedModel;
  readonly store: InteractionStore;
  readonly indexOf: ReadonlyMap<string, number>;
  /** The participation coin (participation.ts): uniform in [0, 1). */
  coin(): number;
  /**
   * The clock (epoch milliseconds) a manifest's round windows are read on (default: Date.now):
   * the engine's, so a replay or a test can move it.
   */
  now?(): number;
  /** Asked again after training: the visitor may have opted out meanwhile. */
  uploadsAllowed(): boolean;
  /**
   * Asked right after training: whether the GPU it ran on was lost meanwhile. On a lost WebGL
   * context every call does nothing, a read-back included, so what such training returns is not the
   * update: nothing from it is sent or kept.
   */
  backendLost?(): boolean;
  /** Fetches and serves the newest global version (telling the other tabs). */
  refetch(): Promise<void>;
  /** Serves and keeps a local copy of `global`. */
  serveLocal(model: SessionModel, local: Float32Array): Promise<void>;
}

/**
 * The noise multiplier a device prices a plaintext round it took part in with: z, or in a round
 * window z and the window's count noise together (its count moves with this device too).
 */
function pricedNoise(federation: FederationParams): number {
  const z = federation.noiseMultiplier ?? 0;
  const countNoise = federation.countNoise;
  return countNoise === undefined ? z : windowNoiseMultiplier(z, countNoise);
}

/**
 * The round window `now` falls in when `federation`'s rounds close on a clock (its
 * `roundWindowSeconds`), else undefined: rounds are counted per model version.
 */
function roundWindowOf(federation: FederationParams, now: number): number | undefined {
  const seconds = federation.roundWindowSeconds;
  return seconds === undefined ? undefined : roundWindowAt(now, seconds);
}

/**
 * One federated round from this device: join, learn locally (or send the update kept while
 * offline), upload the clipped delta, and adopt a newly published version. A retryable failure
 * keeps the update in the outbox for the next sync on the same version.
 *
 * When the manifest's rounds close on a clock (`federation.roundWindowSeconds`), the coin is the
 * current window's and nothing crosses a window: a pending update is dropped, a failed one is not
 * kept, and one whose window closed while it trained is dropped rather than sent.
 */
export async function shareLocalUpdate(host: ShareHost): Promise<SyncResult> {
  const { config, global } = host;
  const { version, federation } = global.manifest;
  const now = (): number => (host.now ? host.now() : Date.now());
  if (!host.uploadsAllowed()) return skipped('uploads are off (consent or opt-out)', version);
  const window = roundWindowOf(federation, now());
  // A window's update stands on its own: one kept from an earlier sync is never sent.
  if (window !== undefined) await dropOutbox(host.store);
  const meta = await host.store.getMeta();
  // The coin comes first: a device not sampled for this version (or window) sends nothing and
  // trains nothing.
  const q = sampleRateOf(federation);
  const coin = (): number => host.coin();
  const draw: Draw =
    window === undefined
      ? drawForVersion(meta, version, q, coin)
      : drawForWindow(meta, window, q, coin);
  // A coin that cannot be kept could be flipped again at the next sync: then do not take part.
  const kept =
    !draw.patch ||
    (await host.store.setMeta(draw.patch).then(
      () => true,
      () => false,
    ));
  if (!kept) return skipped('could not keep the participation coin; not taking part', version);
  if (!draw.joins) {
    const round = window === undefined ? `the round of v${version}` : `round window ${window}`;
    return skipped(`not sampled for ${round} (q = ${q})`, version);
  }
  const pending = window === undefined ? await currentOutbox(host.store, global) : undefined;
  const sessions = toTrainingSessions(await host.store.all(), host.indexOf);
  if (sessions.length === 0 && !pending) return skipped('not enough local history yet', version);
  if (federation.aggregation === 'secure') {
    return shareInSecureRound(host, meta, pending, sessions);
  }
  let update: Omit<OutboxEntry, 'createdAt'> | undefined;
  try {
    const join = await joinRound(config.endpoint, config.siteKey, window);
    if (join.version !== version) {
      await host.refetch();
      if (pending) await host.store.setOutbox(null);
      return skipped('a newer global model was published; refetched it', join.version);
    }
    if (join.round === meta.lastRound) return skipped('already took part in this round', version);
    let local: SessionModel | null = null;
    let fresh: LocalResult | undefined;
    if (pending) {
      // Trained while offline on this very version: send it rather than train again.
      update = pending;
    } else {
      // Online learning's copy of this version, when there is one, is topped up, not redone.
      const learned = await learnLocally(global, sessions, global.local, host.settings);
      local = learned.model;
      if (host.backendLost?.()) {
        local.dispose();
        throw lostWhileTraining();
      }
      // Training takes a while: the visitor may have opted out meanwhile.
      if (!host.uploadsAllowed()) {
        local.dispose();
        return skipped('uploads are off (consent or opt-out)', version);
      }
      update = learned.update;
      fresh = learned;
      // Served until a new global model replaces it; even if the upload below fails.
      await host.serveLocal(local, learned.weights);
    }
    // The coin was this window's: once the clock has moved on, the update is no longer this
    // coin's to send (the server would refuse the window's token anyway).
    if (window !== undefined && roundWindowOf(federation, now()) !== window) {
      return skipped(
        'the round window of this coin closed while training; the update is dropped',
        version,
      );
    }
    // A version published while this device trained: its training goes in that version's layout.
    const newest = fresh
      ? await inNewestLayout(config.endpoint, global.manifest, fresh)
      : undefined;
    if (newest) log.info(`sending a v${version} update in v${newest.manifest.version}'s layout`);
    const reply = await shareUpdate({
      endpoint: config.endpoint,
      manifest: newest?.manifest ?? global.manifest,
      delta: newest?.delta ?? update.delta,
      examples: update.examples,
      baseVersion: update.baseVersion,
      ...(newest ? { layoutAhead: newest.manifest.version - update.baseVersion } : {}),
      join,
      siteKey: config.siteKey,
    });
    if (pending) await host.store.setOutbox(null);
    await recordRound(host, {
      round: String(reply.round),
      version: update.baseVersion,
      at: Date.now(),
      mode: 'plaintext',
      // The server saw this update itself; the noise protects only what it publishes.
      // A window's count is released too, so its round is priced with z and σ_c together.
      privacy: { noiseMultiplier: pricedNoise(federation), sampleRate: 1 },
    });
    await host.store.setMeta({
      sinceUpload: 0,
      uploadsSent: meta.uploadsSent + 1,
      // The round the server counted the update in: a stale one lands in a later round than the one
      // joined, and the device must not take part in that round again.
      lastRound: reply.round,
    });
    if (reply.version > version) {
      await host.refetch();
    }
    return {
      status: 'uploaded',
      modelVersion: reply.version,
      bytes: reply.bytes,
      ...(pending ? { reason: 'sent the update kept while offline' } : {}),
    };
  } catch (error) {
    // The engine learns again once it has moved off the lost GPU (engine.ts sync).
    if (error instanceof HearthError && error.code === 'HEARTH_E_BACKEND_LOST') throw error;
    return failedSync(host, error, update, update === pending, version);
  }
}

/** What a sync whose training ran on a lost GPU fails with: it sends and keeps nothing. */
function lostWhileTraining(): HearthError {
  return new HearthError(
    'HEARTH_E_BACKEND_LOST',
    'the GPU was lost while this device trained: what it read back is not its update',
  );
}

/**
 * Enters a round this device's update was counted in into the privacy ledger. The update is already
 * sent, so a failed write must not fail the sync: it is logged.
 */
async function recordRound(host: ShareHost, round: JoinedRound): Promise<void> {
  await host.store
    .addRound(round)
    .catch((error: unknown) => log.warn('could not record the round in the ledger', error));
}

/**
 * A sync that failed: its reason, and what becomes of `update` (what it tried to send, if it got
 * that far). An update trained in this sync is kept in the outbox when the failure may pass, for
 * the next sync on the same version. The update already kept and sent in a plaintext round
 * (`fromOutbox`) stays there when the failure may pass and is dropped when the server refused it (a
 * stale sketch the server has moved past, say): sent again it would be refused again. Under round
 * windows nothing is kept: an update belongs to the window of its coin, and a window's round takes
 * only updates posted in it.
 */
async function failedSync(
  host: ShareHost,
  error: unknown,
  update: Omit<OutboxEntry, 'createdAt'> | undefined,
  fromOutbox: boolean,
  version: number,
): Promise<SyncResult> {
  log.warn('sync failed', error);
  const code = error instanceof HearthError ? error.code : 'HEARTH_E_UPLOAD';
  let reason = `${code}: ${String(error)}`;
  const retryable = isRetryable(error);
  if (update && fromOutbox && !retryable) {
    await host.store
      .setOutbox(null)
      .catch((e: unknown) => log.warn('could not drop the refused update', e));
    reason += ' (the kept update was refused: dropped)';
  }
  const fresh = fromOutbox ? undefined : update;
  if (fresh && retryable) {
    if (host.global.manifest.federation.roundWindowSeconds !== undefined) {
      reason += ' (dropped: an update is sent in the round window of its coin or not at all)';
    } else {
      await host.store
        .setOutbox({ ...fresh, createdAt: Date.now() })
        .catch((e: unknown) => log.warn('could not keep the update for later', e));
      reason += ' (kept; retried on the next sync while this model version is current)';
    }
  }
  return { status: 'failed', reason, modelVersion: version };
}

/** How long a device waits for a secure round to form before it gives up until its next sync. */
export const SECURE_FORM_WAIT_MS = 120_000;

/**
 * The same round through secure aggregation (the manifest's `federation.aggregation` is 'secure'):
 * the device joins the forming round, learns locally once the round's parameters are in, and sends
 * its clipped update only masked (worker/secure-client.ts). A round on a newer version within the
 * server's staleness bound takes the update carried into that version's layout; a round on any
 * other version means the device is too far behind: it refetches and leaves before sending anything.
 */
async function shareInSecureRound(
  host: ShareHost,
  meta: { readonly uploadsSent: number },
  pending: OutboxEntry | undefined,
  sessions: ReturnType<typeof toTrainingSessions>,
): Promise<SyncResult> {
  const { config, global } = host;
  const { version, layoutHash, federation } = global.manifest;
  let update: Omit<OutboxEntry, 'createdAt'> | undefined;
  /** This round's own training, when it trained rather than sent a kept update. */
  let fresh: LocalResult | undefined;
  let newer = false;
  let round: SecureRoundInfo | undefined;
  /** This device's update on the version it holds, or undefined to stay out. */
  const own = async (): Promise<Float32Array | undefined> => {
    // Kept while offline on this very version: sent rather than trained again.
    if (pending?.baseVersion === version) {
      update = pending;
      return pending.delta;
    }
    if (sessions.length === 0) return undefined;
    const learned = await learnLocally(global, sessions, global.local, host.settings);
    // Trained on a lost GPU (what it read back is not its update), or the visitor opted out
    // meanwhile: stay out.
    if (host.backendLost?.() || !host.uploadsAllowed()) {
      learned.model.dispose();
      return undefined;
    }
    update = learned.update;
    fresh = learned;
    await host.serveLocal(learned.model, learned.weights);
    return learned.update.delta;
  };
  /** The update this device sends in round `info`, or undefined to stay out. */
  const choose = async (info: SecureRoundInfo): Promise<Float32Array | undefined> => {
    if (info.version === version && info.layoutHash === layoutHash) return own();
    // A round on a newer version within the server's staleness bound takes this device's update
    // too, carried into that version's layout as the server carries a stale one (fitUpdate): the
    // round's version is public, and so is its manifest.
    const target = info.version > version ? await fetchManifest(config.endpoint) : undefined;
    const fits =
      target?.version === info.version &&
      target.layoutHash === info.layoutHash &&
      info.version - version <= maxStalenessOf(target.federation);
    if (!fits) {
      newer = true;
      return undefined;
    }
    const delta = await own();
    if (!delta) return undefined;
    const fitted = carriedInput(
      delta,
      global.manifest,
      target,
      fresh && update === fresh.update ? fresh : undefined,
    );
    log.info(`sending a v${version} update into a secure round on v${info.version}`);
    return fitted;
  };
  try {
    const outcome = await takePartSecurely({
      endpoint: config.endpoint,
      ...(config.siteKey ? { siteKey: config.siteKey } : {}),
      expected: { minimum: federation.minCohort, clipNorm: federation.clipNorm },
      formWaitMs: SECURE_FORM_WAIT_MS,
      input: async (info) => {
        round = info;
        const delta = await choose(info);
        // data-debug: the plaintext this device sums, on the worker's own scope (debug-view.ts).
        if (delta && config.debug) {
          showForDebugging('secureInput', { round: info.roundId, version, delta });
        }
        return delta;
      },
    });
    if ('left' in outcome) {
      if (newer) {
        await host.refetch();
        return skipped('the secure round is on a newer model; refetched it', version);
      }
      return skipped(`left the secure round before sending anything (at ${outcome.left})`, version);
    }
    if (update === pending && pending) await host.store.setOutbox(null);
    if (outcome.status !== 'published') {
      return {
        status: 'failed',
        reason: `secure round abandoned (${outcome.reason})`,
        modelVersion: version,
      };
    }
    await recordRound(host, {
      round: outcome.round,
      version,
      at: Date.now(),
      mode: 'secure',
      privacy: roundPrivacy(round!),
    });
    await host.store.setMeta({ sinceUpload: 0, uploadsSent: meta.uploadsSent + 1 });
    const published = outcome.version ?? version;
    if (published > version) await host.refetch();
    return { status: 'uploaded', modelVersion: published, bytes: outcome.bytesSent };
  } catch (error) {
    const trained = update as Omit<OutboxEntry, 'createdAt'> | undefined;
    // A secure step refused names the round, not the update: a kept update stays for the next one.
    return failedSync(host, error, trained === pending ? undefined : trained, false, version);
  }
}
