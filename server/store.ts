/**
 * What the server needs from storage, as units of work that are each atomic. Methods are async and
 * coarse on purpose: the SQLite store does each in one local transaction; a PostgreSQL store (several
 * server instances sharing rounds) can do the same with row locks, behind this same interface.
 */
import type { CatalogDocument, CatalogItem } from '../protocol/catalog.js';
import type { ModelManifest } from '../protocol/manifest.js';
import type { RoundPrivacySettings, SkellamRound } from '../protocol/privacy/index.js';
import type { AggregateUpdate, SentCoordinates } from './aggregate.js';
import type { LayoutFields } from './versions.js';
import type { FedAdamState } from './fedadam.js';

export type { RoundPrivacySettings, SkellamRound };

/** A model version as the store holds it: its manifest and float32 weights. */
export interface StoredVersion {
  readonly manifest: ModelManifest;
  readonly weights: Float32Array;
}

/** A round a device has joined. */
export interface RoundTicket {
  readonly round: number;
  /** The round's base version, i.e. the current global version when it was joined. */
  readonly version: number;
}

/**
 * The clock of lazily expiring rounds, passed into the store's transactions so the deadline check and
 * the work it guards commit together. Without it nothing expires and timestamps are the wall clock.
 */
export interface RoundExpiry {
  /** The current time: recorded on rounds, tokens and updates. */
  readonly now: Date;
  /** A collecting round opened before this instant and still short of `minCohort` is abandoned. */
  readonly openedBefore: Date;
  /** The minimum cohort m: a round that has m updates is never abandoned (it publishes instead). */
  readonly minCohort: number;
  /**
   * Rounds on a clock (server/round-windows.ts): every window that ended before `now` is closed
   * (published or not, and charged in the ledger either way) instead of the deadline check.
   */
  readonly windows?: RoundWindows;
}

/**
 * Round windows as the store closes them. Window r is [r T, (r + 1) T) since the Unix epoch; a round
 * belongs to the window its first token was issued in. Closing, in one transaction: the collecting
 * round of an earlier window publishes if `decide` says so (from its running sum, `fold`, and the
 * updates not yet folded), else is abandoned, and is charged `charge` either way; the windows after the last one charged that ended with no round are charged
 * together in one row (as many as `chargeable` allows). The rows of closed windows carry their
 * window's index, so no window is charged twice.
 */
export interface RoundWindows {
  /** T in seconds. */
  readonly seconds: number;
  /** The window `now` is in: every earlier one is closed. */
  readonly current: number;
  /**
   * The gate of a window that ended holding `received` updates: the policy to publish it with, or
   * undefined to publish nothing. It draws the count's noise, so it is called once per window.
   */
  readonly decide: (received: number) => SumRoundPolicy | undefined;
  /**
   * A window's updates are folded into a running sum of clipped updates `foldEvery` at a time as
   * they arrive (their vectors then erased), so that closing it folds at most that many: `fold`
   * adds `updates` clipped into `sum` (aggregate.ts addClipped).
   */
  readonly foldEvery: number;
  readonly fold: (
    sum: Float64Array | undefined,
    updates: Iterable<AggregateUpdate>,
  ) => { sum: Float64Array | undefined; count: number };
  /** What every closed window is charged in the ledger, published or not. */
  readonly charge: RoundPrivacySettings;
  /**
   * How many of `count` windows that ended with no round the budget still has room for, after
   * `ledger` (all of them without a budget): a device cannot have joined a window the budget had no
   * room for, since joins are refused then, so such a window used nobody's data.
   */
  readonly chargeable: (ledger: readonly RoundPrivacy[], count: number) => number;
}

/** A validated update, ready to store. */
export interface UpdateSubmission {
  /** The round token, hex. */
  readonly token: string;
  readonly baseVersion: number;
  /** Example count, already clamped to [1, maxExamples]. */
  readonly examples: number;
  /** L2 norm of `delta` as received (before the aggregator re-clips it). */
  readonly norm: number;
  /** In the layout of version `layoutVersion` (server/ingest.ts fits a stale update to it). */
  readonly delta: Float32Array;
  /**
   * The version whose update layout `delta` is in: the current one when ingest checked. The store
   * refuses the submission (store-rules.ts LayoutMoved) if another version is current by then.
   * Left out, the delta is taken as it is.
   */
  readonly layoutVersion?: number;
  /**
   * Called inside the transaction with the round the update is about to be stored in; throwing
   * refuses the update (nothing of it is kept). The per-client join budget (join-budget.ts).
   */
  readonly admit?: (round: number) => void;
}

/**
 * A round known only by the sum of its devices' clipped updates: what secure aggregation reveals
 * (server/secure-rounds.ts). No update of it is ever stored.
 */
export interface SumSubmission {
  /** The version the devices trained on; `sum` is in its update layout. */
  readonly baseVersion: number;
  /** Sum of `count` clipped updates, in the layout of `baseVersion`. */
  readonly sum: Float32Array;
  /** How many devices' updates the sum holds (at least the policy's minimum cohort m). */
  readonly count: number;
  /** ISO time the round formed (its first device joined). */
  readonly openedAt: string;
  /**
   * The noise the devices added (secure aggregation with distributed DP): the server then adds
   * none, and the ledger records this. Absent: the round policy adds its own.
   */
  readonly skellam?: SkellamRound;
}

/** What publishing a summed round did. */
export interface SumOutcome {
  readonly round: number;
  readonly version: number;
}

/**
 * One entry of the privacy ledger: a published round, or a closed round window (published or not;
 * `steps` windows when it stands for windows that ended with no round).
 */
export interface RoundPrivacy extends RoundPrivacySettings {
  readonly round: number;
  /** The version the round published; for a window that published nothing, the version it kept. */
  readonly version: number;
}

/** What the store reads for the policy inside the aggregation transaction. */
export interface RoundContext {
  /** Persisted server optimiser state; undefined before the first FedAdam round. */
  readonly optimizerState: FedAdamState | undefined;
  /** Every published round so far, oldest first (what the privacy budget check needs). */
  readonly ledger: readonly RoundPrivacy[];
  /** The coordinates [start, end) of the aggregated vector that hold item rows and biases. */
  readonly itemSpan?: { readonly start: number; readonly end: number };
  /**
   * The round's updates are an item sketch (protocol/item-sketch.ts) of the aggregated vector: this
   * reads a mean of them into it, after any noise is added (layout-round.ts). Absent: they are in
   * its coordinates.
   */
  readonly sent?: SentCoordinates;
  /**
   * The current catalogue's items, read in the same transaction: the published version gains a row
   * for each the model lacks (catalog-growth.ts). Absent: no catalogue, no growth.
   */
  readonly catalog?: readonly CatalogItem[];
}

/** What one round's aggregation produced; the store commits all of it with the new version. */
export interface RoundOutput {
  readonly weights: Float32Array;
  /** New server optimiser state to persist; left out, the stored state stays as it is. */
  readonly optimizerState?: FedAdamState;
  /** The DP parameters the round was published under, recorded in the ledger. */
  readonly privacy: RoundPrivacySettings;
}

/** A round policy that can also fold a round known only by the sum of its clipped updates. */
export interface SumRoundPolicy extends RoundPolicy {
  readonly aggregateSum: (
    global: Float32Array,
    total: {
      readonly sum: ArrayLike<number>;
      readonly count: number;
      /** The devices' own noise is in the sum: the policy must add none, and records this. */
      readonly skellam?: SkellamRound;
      /**
       * The sum is in coordinates of the devices' own (an item sketch, protocol/item-sketch.ts):
       * this reads a mean in them into the model's, after any noise is added. Absent: the
       * context's (RoundContext.sent), if any.
       */
      readonly sent?: SentCoordinates;
    },
    context: RoundContext,
  ) => RoundOutput;
}

/** How a round closes: the cohort size it needs and the (pure) aggregation to run. */
export interface RoundPolicy {
  readonly minCohort: number;
  /**
   * Staleness bound s: an update on version v, carrying a token of a round on version t, is accepted
   * while current - v <= s and current - t <= s (store-rules.ts, checkSubmission).
   */
  readonly maxStaleness: number;
  /**
   * New global weights (and optimiser state) from the current ones and the round's updates (iterated
   * once). May throw to refuse publishing (e.g. HEARTH_E_PRIVACY_BUDGET); the store then rolls the
   * whole submission back.
   */
  readonly aggregate: (
    global: Float32Array,
    updates: Iterable<AggregateUpdate>,
    context: RoundContext,
  ) => RoundOutput;
  /**
   * The item rows or the item sketch updates on a new version carry, from that version's manifest
   * template and weights (server/versions.ts versionLayout); left out (or neither), the whole model.
   */
  readonly layoutFields?: (
    template: ModelManifest,
    version: number,
    weights: Float32Array,
  ) => LayoutFields;
}

/** What storing an update did. */
export interface SubmitOutcome {
  /** The round the update was counted in: its token's, or the collecting one for a stale token. */
  readonly round: number;
  /** Updates in the round, this one included. */
  readonly received: number;
  /** Current global version afterwards (base + 1 when this update closed the round). */
  readonly version: number;
  readonly published: boolean;
}

/** Row counts, for tests, the dashboard and metrics. */
export interface StoreCounts {
  readonly versions: number;
  readonly rounds: number;
  readonly tokens: number;
  readonly usedTokens: number;
  readonly updates: number;
  /** Rounds abandoned at their deadline (their updates are counted in `updates`). */
  readonly abandonedRounds: number;
}

/** One round as the dashboard sees it. */
export interface RoundHistory {
  readonly round: number;
  readonly baseVersion: number;
  readonly status: 'collecting' | 'published' | 'abandoned';
  /** ISO time of the round's first token; null for rounds from before schema 3. */
  readonly openedAt: string | null;
  /** The version it published, and when (that version's creation time); null unless published. */
  readonly publishedVersion: number | null;
  readonly publishedAt: string | null;
  /** Updates the round holds (its participants: each token is used at most once). */
  readonly updates: number;
  /** The L2 norm of each of its updates as received, before the aggregator re-clipped it. */
  readonly norms: readonly number[];
}

/** A stored catalogue version: the served document and the digest of its items (its ETag). */
export interface StoredCatalog extends CatalogDocument {
  /** SHA-256 of the items' JSON, hex: equal items, equal digest. */
  readonly digest: string;
}

/** What replacing the catalogue did. */
export interface CatalogChange {
  readonly catalog: StoredCatalog;
  /** False when the items equalled the current ones: no new version was stored. */
  readonly changed: boolean;
}

/** Catalogue versions a store keeps (the newest); older ones are deleted as new ones arrive. */
export const CATALOG_VERSIONS_KEPT = 5;

/**
 * Model versions whose weights are kept: publishing version v erases the weights of v - 64 and
 * older (their manifests stay, MANIFESTS_KEPT versions). 64 covers the validation evaluator's 50 newest
 * versions, the rollback window and any useful staleness bound; a device never needs older weights
 * (it always fetches the current manifest first). Without it every round would add a whole model
 * to the database forever.
 */
export const WEIGHTS_KEPT = 64;

/**
 * Model versions whose manifests are kept: an update on a version up to `--max-staleness` (at most
 * MAX_STALENESS, 1,000) behind is carried into the current layout with its base version's manifest,
 * so the manifests of the newest 1,001 versions stay. Older ones are erased (their rows stay, for
 * the rounds that name them); a manifest carries the catalogue's item ids, so without this every
 * round would add one to the database for good.
 */
export const MANIFESTS_KEPT = 1001;

/**
 * Rounds whose per-update rows (tokens and updates: times, norms, example counts) are kept: the
 * newest 1,000, well beyond what the dashboard draws (STATS_ROUNDS). Older rounds keep their own
 * row, which the privacy ledger needs; their tokens and updates are deleted as new versions are
 * published.
 */
export const ROUNDS_WITH_ROWS_KEPT = 1000;

/** Which instance's forming secure round new devices join (peers.ts). */
export interface FormingClaim {
  readonly round: string;
  readonly instance: string;
}

/** The storage the server runs on. */
export interface Store {
  /** Newest version number, or undefined while nothing is seeded. */
  latestVersion(): Promise<number | undefined>;
  /** A version's stored manifest, or undefined if there is no such version. */
  getManifest(version: number): Promise<ModelManifest | undefined>;
  /** A version's float32 little-endian weight bytes, or undefined if there is no such version. */
  getWeightBytes(version: number): Promise<Uint8Array | undefined>;
  /** Stores the seed as version 1 if the store is empty; returns false (no change) otherwise. */
  seed(version: StoredVersion): Promise<boolean>;
  /**
   * Issues `token` (hex) for the collecting round of the current version, opening it if needed. With
   * `expiry`, an expired collecting round is abandoned first, so the token opens a new one.
   */
  joinRound(token: string, expiry?: RoundExpiry): Promise<RoundTicket>;
  /**
   * Atomically: checks the base version is within `policy.maxStaleness` of the current one (else
   * HEARTH_E_UPDATE_STALE) and the token is known, unused and of the collecting round or of a round
   * published within the bound (else HEARTH_E_ROUND_TOKEN); marks the token used; stores the update
   * in the collecting round (opening one if a token of a published round finds none); and when that
   * round reaches `policy.minCohort`, aggregates it into version + 1 and marks it published. Either all of that is durable when it resolves, or none of it happened.
   * With `expiry`, an expired collecting round is abandoned first (and stays abandoned even though the
   * update is then refused with HEARTH_E_ROUND_TOKEN).
   */
  submitUpdate(
    update: UpdateSubmission,
    policy: RoundPolicy,
    expiry?: RoundExpiry,
  ): Promise<SubmitOutcome>;
  /**
   * Atomically: checks `total.baseVersion` is within `policy.maxStaleness` of the current version
   * (else HEARTH_E_UPDATE_STALE) and `total.count` reaches `policy.minCohort` (else
   * HEARTH_E_SECAGG_THRESHOLD); fits the sum to the current version's layout; folds it with
   * `policy.aggregateSum` into version current + 1; records a published round with its participant
   * count and privacy settings. Either all of that is durable when it resolves, or none of it happened.
   */
  publishSum(total: SumSubmission, policy: SumRoundPolicy, now?: Date): Promise<SumOutcome>;
  /**
   * Abandons the collecting round if it has expired; returns its id, or undefined if none was. With
   * `expiry.windows`, closes every window that has ended instead (RoundWindows) and returns the id of
   * the round it closed, if any.
   */
  abandonExpiredRound(expiry: RoundExpiry): Promise<number | undefined>;
  /** The privacy ledger: every published round and closed round window with its (z, q), oldest first. */
  privacyLedger(): Promise<RoundPrivacy[]>;
  /** The persisted server optimiser state, if any round has produced one. */
  optimizerState(): Promise<FedAdamState | undefined>;
  counts(): Promise<StoreCounts>;
  /**
   * The newest `limit` rounds, oldest first, with their updates' received norms: what the dashboard
   * draws. Read-only and outside any round transaction, so it may be a moment behind.
   */
  history(limit: number): Promise<RoundHistory[]>;
  /** The current catalogue, or undefined if none was ever stored. */
  catalog(): Promise<StoredCatalog | undefined>;
  /** The current catalogue's version, time and digest without its items (cheap: every GET asks). */
  catalogHead(): Promise<Omit<StoredCatalog, 'items'> | undefined>;
  /**
   * Atomically stores `items` as the next catalogue version (current + 1, from 1), unless they
   * equal the current version's items; keeps the newest CATALOG_VERSIONS_KEPT versions.
   */
  replaceCatalog(items: readonly CatalogItem[], now?: Date): Promise<CatalogChange>;
  /**
   * Publishes version current + 1 grown by a row for each item of the current catalogue that the
   * model lacks (catalog-growth.ts), without a round: no update is read, no privacy is spent, no
   * other row moves. Returns that version, or undefined when there is no model yet or it already has
   * every catalogue item. So an item added to the catalogue is in the model at once, not only after
   * the next round publishes.
   */
  growToCatalog(
    layoutFields?: RoundPolicy['layoutFields'],
    now?: Date,
  ): Promise<number | undefined>;
  /**
   * Atomically publishes version `over` + 1 with the weights of the earlier version `from` (a
   * rollback, server/rollback.ts): no round, nothing in the privacy ledger, the optimiser state
   * kept. Returns the new version; undefined when `over` is no longer the current version, `from`
   * is not older, is not stored, or has another shape (the catalogue grew since).
   */
  republish(
    from: number,
    over: number,
    layoutFields?: RoundPolicy['layoutFields'],
    now?: Date,
  ): Promise<number | undefined>;
  /**
   * Records (or refreshes) server instance `id` as reachable at `url`, and forgets instances not
   * seen for `forgetAfterMs` (crashed ones never say goodbye): how instances sharing one database
   * find the one that runs a secure round (peers.ts).
   */
  registerInstance(id: string, url: string, now: Date, forgetAfterMs: number): Promise<void>;
  /** The URL instance `id` registered, or undefined if it never did or has left. */
  instanceUrl(id: string): Promise<string | undefined>;
  /** Removes instance `id` (it is shutting down). */
  forgetInstance(id: string): Promise<void>;
  /** The secure round now forming, across the instances sharing the store, if one claimed it. */
  formingRound(): Promise<FormingClaim | undefined>;
  /**
   * Compare-and-swap of the forming round: replaces the claim whose round is `expected` (undefined:
   * no claim) with `next` (undefined: none). False, and nothing changed, when the claim is another.
   */
  swapFormingRound(expected: string | undefined, next: FormingClaim | undefined): Promise<boolean>;
  close(): Promise<void>;
}
