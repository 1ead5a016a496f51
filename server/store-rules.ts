/**
 * The round and token rules every Store applies, whichever database holds the rows. A store reads the
 * rows under its own locks (one IMMEDIATE transaction in SQLite, row locks in PostgreSQL) and asks
 * these functions what to do; so both stores refuse the same updates with the same codes and
 * messages, close and abandon rounds at the same count, and publish the same version from the same
 * updates.
 */
import {
  fitUpdate,
  grownFrom,
  manifestLayout,
  modelLayout,
  updateLength,
} from '../protocol/update-layout.js';
import { HearthError } from '../protocol/errors.js';
import { roundWindowAt, type ModelManifest } from '../protocol/manifest.js';
import type { AggregateUpdate } from './aggregate.js';
import type { TokenRow } from './store-codecs.js';
import type {
  RoundContext,
  RoundExpiry,
  RoundOutput,
  RoundPolicy,
  RoundWindows,
  SumRoundPolicy,
  SumSubmission,
  UpdateSubmission,
} from './store.js';
import { growForCatalog } from './catalog-growth.js';
import type { FedAdamState } from './fedadam.js';
import { foldInLayout, sketchCoordinates } from './layout-round.js';
import { versionManifest } from './versions.js';

/** The time recorded on rounds, tokens and updates: the expiry's clock, else the wall clock. */
export function eventTime(expiry: RoundExpiry | undefined): string {
  return (expiry?.now ?? new Date()).toISOString();
}

/** The current version, which a round is joined on; there is none before the store is seeded. */
export function requireCurrentVersion(current: number | undefined): number {
  if (current === undefined) throw new HearthError('HEARTH_E_INTERNAL', 'no model version');
  return current;
}

/** A stored version the store relies on (a round's base); missing means a corrupt database. */
export function requireStoredVersion<T>(row: T | undefined, version: number): T {
  if (row === undefined) {
    throw new HearthError('HEARTH_E_INTERNAL', `version ${version} is missing`);
  }
  return row;
}

/** The collecting round, if any, must be on the current version. */
export function checkCollectingRound(
  round: { readonly id: number; readonly base_version: number } | undefined,
  current: number,
): void {
  // Versions only appear by publishing the collecting round, so this means a corrupt database.
  if (round && round.base_version !== current) {
    throw new HearthError(
      'HEARTH_E_INTERNAL',
      `collecting round ${round.id} is not on v${current}`,
    );
  }
}

/**
 * Whether an update or a token on version `version` is within the staleness bound `maxStaleness`
 * of `current`: the server folds such updates into the collecting round (FedBuff, Nguyen et al. 2022,
 * https://arxiv.org/abs/2106.06639). 0 admits the current version only.
 */
export function withinStaleness(version: number, current: number, maxStaleness: number): boolean {
  return version <= current && current - version <= maxStaleness;
}

/**
 * Thrown by checkSubmission when an update was fitted to the layout of a version that is no longer
 * the current one (a round published in between): ingest.ts fits it to the new one and submits
 * again. It never reaches a client.
 */
export class LayoutMoved extends Error {
  constructor(readonly current: number) {
    super(`the current version moved to ${current}`);
  }
}

/**
 * Whether `update` may be stored, given the current version, its token's row (undefined: no such
 * token) and the staleness bound s. Staleness is decided first, so a device that missed too many
 * publications is told to rebase rather than that its token is spent. The token must be unused and of
 * the collecting round, or of a round published on a version within s of the current one: a device
 * sampled for version t may land in any of the rounds of t..t+s (privacy.ts charges for that), and
 * each token is counted once, in one round. Returns the token's row when the update may be stored.
 */
export function checkSubmission(
  update: UpdateSubmission,
  current: number | undefined,
  token: TokenRow | undefined,
  maxStaleness: number,
): TokenRow {
  if (current === undefined || !withinStaleness(update.baseVersion, current, maxStaleness)) {
    throw new HearthError(
      'HEARTH_E_UPDATE_STALE',
      `current version is ${current}, at most ${maxStaleness} behind is accepted`,
    );
  }
  if (update.layoutVersion !== undefined && update.layoutVersion !== current) {
    throw new LayoutMoved(current);
  }
  if (!token) throw new HearthError('HEARTH_E_ROUND_TOKEN', 'unknown token');
  // A token is single use: the update it carried is already counted in a round.
  if (token.used_at !== null) throw new HearthError('HEARTH_E_ROUND_TOKEN', 'token already used');
  if (token.status === 'abandoned') {
    throw new HearthError('HEARTH_E_ROUND_TOKEN', 'token belongs to an abandoned round');
  }
  const collecting = token.status === 'collecting' && token.base_version === current;
  const recent =
    token.status === 'published' && withinStaleness(token.base_version, current, maxStaleness);
  if (!collecting && !recent) {
    throw new HearthError('HEARTH_E_ROUND_TOKEN', 'token belongs to a closed round');
  }
  return token;
}

/**
 * Whether an accepted update is counted in its token's own round (still collecting) rather than in
 * the collecting round of the current version, which the store opens if there is none.
 */
export function countsInOwnRound(token: TokenRow): boolean {
  return token.status === 'collecting';
}

/** A round with m updates is full: it publishes, and it is never abandoned. */
export function roundIsFull(received: number, minCohort: number): boolean {
  return received >= minCohort;
}

/** Whether a collecting round opened at `openedAt` is past `expiry`'s deadline. */
export function pastDeadline(openedAt: string | null, expiry: RoundExpiry): boolean {
  // A round without an opening time (from before schema 3) never expires. ISO-8601 UTC strings of
  // one format order like the instants they name, in SQLite's TEXT and PostgreSQL's alike.
  return openedAt !== null && openedAt < expiry.openedBefore.toISOString();
}

/**
 * The window a collecting round belongs to: the one its first token was issued in. A round without
 * an opening time (from before schema 3) is taken as the window before the current one, closed now.
 */
export function windowOfRound(openedAt: string | null, windows: RoundWindows): number {
  if (openedAt === null) return windows.current - 1;
  return roundWindowAt(Date.parse(openedAt), windows.seconds);
}

/**
 * The windows after `last` (the newest window charged so far) that ended with no round: `count` of
 * them from `from`, to be charged in one row whose index is the newest, current - 1. Undefined when
 * there are none. With no window closed yet (`last` undefined), a row of count 0 marks where
 * charging begins: the windows before the server ran them used nobody's data.
 */
export function emptyWindows(
  last: number | undefined,
  windows: RoundWindows,
): { readonly from: number; readonly count: number } | undefined {
  const newest = windows.current - 1;
  if (last === undefined) return { from: windows.current, count: 0 };
  if (last >= newest) return undefined;
  return { from: last + 1, count: newest - last };
}

/**
 * Refuses a join (HEARTH_E_ROUND_WINDOW) into window `windows.current` when a window at or after it
 * has already been closed on this database, `last` being the newest closed: another instance
 * sharing the database reads a later time off its clock, and a round opened here now would
 * belong to a window already charged.
 */
export function checkWindowOpen(last: number | null | undefined, windows: RoundWindows): void {
  if (last !== null && last !== undefined && last >= windows.current) {
    throw new HearthError(
      'HEARTH_E_ROUND_WINDOW',
      `window ${windows.current} is already closed on this database (window ${last} was): ` +
        "this instance's clock is behind another's",
    );
  }
}

/** The start of window `index` as an ISO time (the opening time of a row of empty windows). */
function windowStart(index: number, windows: RoundWindows): string {
  return new Date(index * windows.seconds * 1000).toISOString();
}

/**
 * A stretch of the empty windows a store closes (emptyWindowRuns): `count` of the windows `from`
 * to `last` charged in one row, or one window that publishes its noise (`policy`).
 */
export type EmptyWindowRun =
  | {
      readonly kind: 'charge';
      readonly from: number;
      readonly last: number;
      readonly count: number;
    }
  | { readonly kind: 'publish'; readonly window: number; readonly policy: SumRoundPolicy };

/**
 * The `empty` windows (emptyWindows) as a store closes them, the first `count` of them charged
 * (RoundWindows.chargeable). Each charged window is the mechanism it is charged for: its count, 0,
 * gets its noise (RoundWindows.decide), and a window whose noised count reaches m publishes the
 * noise alone over ĉ, as a window whose devices joined and sent nothing would. Deciding on the count
 * itself (no round, so nothing published) would tell a window nobody joined from one a device
 * joined, whenever the device's window would have published. The windows between those that
 * publish are charged in one row each stretch. Lazy: a window's count is drawn after the window
 * before it published (its noise then drawn), so the draws come in window order.
 */
export function* emptyWindowRuns(
  empty: { readonly from: number; readonly count: number },
  count: number,
  windows: RoundWindows,
): Generator<EmptyWindowRun> {
  let from = empty.from;
  for (let window = empty.from; window < empty.from + count; window++) {
    const policy = windows.decide(0);
    if (!policy) continue;
    if (window > from) yield { kind: 'charge', from, last: window - 1, count: window - from };
    yield { kind: 'publish', window, policy };
    from = window + 1;
  }
  const last = windows.current - 1;
  // The last stretch, and with nothing closed before (count 0) the row that marks where charging
  // begins.
  if (from <= last || from === empty.from) {
    yield { kind: 'charge', from, last, count: count - (from - empty.from) };
  }
}

/**
 * The values of the row that charges a stretch of empty windows (emptyWindowRuns) at `charge`,
 * for `INSERT INTO rounds (base_version, status, opened_at, abandoned_at, noise_multiplier,
 * sample_rate, window_index, window_count)` with status 'abandoned': on `version`, the current one.
 */
export function emptyWindowsValues(
  version: number,
  run: { readonly from: number; readonly last: number; readonly count: number },
  windows: RoundWindows,
  now: string,
): [number, string, string, number | null, number | null, number, number] {
  const charged = run.count > 0;
  return [
    version,
    windowStart(run.from, windows),
    now,
    charged ? windows.charge.noiseMultiplier : null,
    charged ? windows.charge.sampleRate : null,
    run.last,
    run.count,
  ];
}

/**
 * The values of the row of a window with no round that publishes its noise (emptyWindowRuns), for
 * `INSERT INTO rounds (base_version, status, opened_at, window_index, window_count)` with status
 * 'collecting', which the store then publishes as a round of no update.
 */
export function noiseWindowValues(
  version: number,
  window: number,
  windows: RoundWindows,
): [number, string, number, number] {
  return [version, windowStart(window, windows), window, 1];
}

/** A round's aggregation: the version it publishes, that version's manifest, and the policy's output. */
export interface Publication {
  readonly version: number;
  readonly manifest: ModelManifest;
  readonly output: RoundOutput;
}

/**
 * Aggregates a full round on version `current` into version current + 1. `updates` are the round's
 * updates in arrival order (the aggregate depends on the order only through float rounding, and both
 * stores read them by id). Throws whatever the policy throws; the store then rolls everything back.
 */
export function publishRound(
  policy: RoundPolicy,
  current: number,
  base: { readonly manifest: ModelManifest; readonly weights: Float32Array },
  updates: Iterable<AggregateUpdate>,
  context: RoundContext,
  now: string,
): Publication {
  const version = current + 1;
  // The round's updates are in its version's layout (ingest.ts fits stale ones to it).
  const { dims, federation } = base.manifest;
  const output = foldInLayout(dims, manifestLayout(federation), base.weights, context, (c, ctx) =>
    policy.aggregate(c, updates, ctx),
  );
  return publication(policy, version, base.manifest, output, context, now);
}

/**
 * Version `version` of `template` and `weights`: grown by a row for each catalogue item the model
 * lacks (catalog-growth.ts, `state` grown with it), its update rows named on the grown weights.
 */
function grownVersion(
  layoutFields: RoundPolicy['layoutFields'],
  version: number,
  template: ModelManifest,
  weights: Float32Array,
  state: FedAdamState | undefined,
  context: RoundContext,
  now: string,
) {
  const grown = growForCatalog(template, weights, state, context.catalog);
  const layout = layoutFields?.(grown.manifest, version, grown.weights);
  return { grown, manifest: versionManifest(grown.manifest, version, now, layout) };
}

/** Version `version` from a round's output, grown to the catalogue (grownVersion). */
function publication(
  policy: RoundPolicy,
  version: number,
  template: ModelManifest,
  output: RoundOutput,
  context: RoundContext,
  now: string,
): Publication {
  // A round that keeps the stored optimiser state as it is must still grow it with the model.
  const state = output.optimizerState ?? context.optimizerState;
  const { grown, manifest } = grownVersion(
    policy.layoutFields,
    version,
    template,
    output.weights,
    state,
    context,
    now,
  );
  return {
    version,
    manifest,
    output: {
      ...output,
      weights: grown.weights,
      ...(grown.optimizerState && (output.optimizerState || grown.added > 0)
        ? { optimizerState: grown.optimizerState }
        : {}),
    },
  };
}

/** A version grown to the catalogue without a round (Store.growToCatalog). */
export interface Growth {
  readonly version: number;
  readonly manifest: ModelManifest;
  readonly weights: Float32Array;
  readonly optimizerState?: FedAdamState;
}

/**
 * Version current + 1: `base` grown by a row for each catalogue item it lacks (grownVersion);
 * undefined when the catalogue adds nothing.
 */
export function publishGrowth(
  layoutFields: RoundPolicy['layoutFields'],
  current: number,
  base: { readonly manifest: ModelManifest; readonly weights: Float32Array },
  context: RoundContext,
  now: string,
): Growth | undefined {
  const version = current + 1;
  const { grown, manifest } = grownVersion(
    layoutFields,
    version,
    base.manifest,
    base.weights,
    context.optimizerState,
    context,
    now,
  );
  if (grown.added === 0) return undefined;
  return {
    version,
    manifest,
    weights: grown.weights,
    ...(grown.optimizerState ? { optimizerState: grown.optimizerState } : {}),
  };
}

/**
 * Whether a summed round (secure aggregation's result) may publish on version `current`: its base
 * within the staleness bound, at least m devices in the sum.
 */
export function checkSum(total: SumSubmission, current: number | undefined, policy: RoundPolicy) {
  if (current === undefined || !withinStaleness(total.baseVersion, current, policy.maxStaleness)) {
    throw new HearthError(
      'HEARTH_E_UPDATE_STALE',
      `sum based on ${total.baseVersion}, now ${current}, at most ${policy.maxStaleness} behind`,
    );
  }
  if (!(Number.isInteger(total.count) && roundIsFull(total.count, policy.minCohort))) {
    throw new HearthError(
      'HEARTH_E_SECAGG_THRESHOLD',
      `a sum over ${total.count} devices, at least ${policy.minCohort} needed`,
    );
  }
}

/**
 * Publishes a round known only by its sum on version `current`: the sum, in the layout of its base
 * version, is fitted to the current version's layout (rows both name kept, as for a stale update;
 * the map is linear, so fitting the sum is summing the fitted updates), then folded there. A sum
 * of item sketches is read back with its own version's hashes (after any noise is added: the
 * devices' norm bound holds in the sketch's coordinates), whatever the current version draws.
 */
export function publishSumRound(
  policy: SumRoundPolicy,
  current: number,
  base: { readonly manifest: ModelManifest; readonly weights: Float32Array },
  sumManifest: ModelManifest,
  total: SumSubmission,
  context: RoundContext,
  now: string,
): Publication {
  const { dims, federation } = base.manifest;
  if (!carriesOver(sumManifest, base.manifest)) {
    throw new HearthError(
      'HEARTH_E_UPDATE_SHAPE',
      `a sum on layout ${sumManifest.layoutHash}, v${current} has ${base.manifest.layoutHash}`,
    );
  }
  const from = manifestLayout(sumManifest.federation);
  if (total.sum.length !== updateLength(sumManifest.dims, from)) {
    throw new HearthError(
      'HEARTH_E_UPDATE_SHAPE',
      `a sum of ${total.sum.length} values, v${total.baseVersion}'s layout has ${updateLength(sumManifest.dims, from)}`,
    );
  }
  const layout = modelLayout(manifestLayout(federation));
  const sent =
    from.kind === 'sketch' ? sketchCoordinates(sumManifest.dims, from, dims, layout) : undefined;
  const sum = sent ? total.sum : fitUpdate(total.sum, sumManifest.dims, from, layout, dims);
  const output = foldInLayout(dims, layout, base.weights, context, (c, ctx) =>
    policy.aggregateSum(
      c,
      {
        sum,
        count: total.count,
        ...(total.skellam ? { skellam: total.skellam } : {}),
        ...(sent ? { sent } : {}),
      },
      ctx,
    ),
  );
  return publication(policy, current + 1, base.manifest, output, context, now);
}

/**
 * Whether an update or sum on version `from` carries over to version `to`: the same model shape, or
 * `to` grown by catalogue rows from it (item rows keep their numbers; fitUpdate zero-fills the new).
 */
export function carriesOver(from: ModelManifest, to: ModelManifest): boolean {
  return from.layoutHash === to.layoutHash || grownFrom(from.dims, to.dims);
}

/**
 * Version current + 1 with the weights of the earlier version `from` (Store.republish): a rollback.
 * The manifest is the current one's (catalogue, popularity, update rows by the same rule);
 * undefined when `from` has another shape (the catalogue grew since), which is not rolled back.
 */
export function republication(
  layoutFields: RoundPolicy['layoutFields'],
  current: number,
  template: ModelManifest,
  from: { readonly manifest: ModelManifest; readonly weights: Float32Array },
  now: string,
): Growth | undefined {
  if (from.manifest.layoutHash !== template.layoutHash) return undefined;
  if (from.manifest.itemIds.length !== template.itemIds.length) return undefined;
  const version = current + 1;
  const layout = layoutFields?.(template, version, from.weights);
  return {
    version,
    manifest: versionManifest(template, version, now, layout),
    weights: from.weights,
  };
}
