/**
 * The page <-> worker contract: what the SDK on the main thread may ask of the engine in the worker
 * (exposed with comlink), plus the JSON shapes of the server's small HTTP replies.
 */
import type { RoundPrivacySettings } from './privacy/ledger.js';

/** Kinds of interaction a page can report, weakest signal first. */
export const INTERACTION_TYPES = ['view', 'dwell', 'click', 'cart', 'purchase'] as const;
export type InteractionType = (typeof INTERACTION_TYPES)[number];

/**
 * Sample weight of each interaction type in local learning: a purchase says more about intent than a
 * glance (DESIGN.md: view < click < add-to-cart < purchase). A dwell (an item on screen for a long
 * time on one page: reading it) says more than a view and less than a click.
 */
export const INTERACTION_WEIGHTS: Readonly<Record<InteractionType, number>> = {
  view: 0.25,
  dwell: 0.4,
  click: 0.5,
  cart: 0.75,
  purchase: 1,
};

/**
 * Interactions the page records without the visitor doing anything (an item on screen). A list
 * redraws after the visitor acts, never after these: a redraw puts new items on screen, which would
 * be "viewed" in turn and redraw the list again, a loop with no visitor in it.
 */
export const PASSIVE_INTERACTIONS: readonly InteractionType[] = ['view', 'dwell'];

/** True for what the visitor did (click, cart, purchase), false for what the page saw. */
export function isVisitorAction(event: { readonly type?: unknown } | null | undefined): boolean {
  return (
    INTERACTION_TYPES.includes(event?.type as InteractionType) &&
    !PASSIVE_INTERACTIONS.includes(event!.type as InteractionType)
  );
}

/** What `hearth.track()` accepts. `item` is the site's own item id. */
export interface TrackEvent {
  readonly type: InteractionType;
  readonly item: string;
}

/**
 * Why an item was recommended: `viewed` names the item of the current session nearest to it in the
 * model's embedding space ("because you viewed X"). Computed on the device; never sent anywhere.
 */
export interface RecommendationReason {
  readonly item: string;
  readonly kind: 'viewed';
  /** The item's title, when the server has a catalogue. */
  readonly title?: string;
}

/** What `track` reports once per page when the page's ids do not match the catalogue's. */
export interface TrackWarning {
  readonly code: 'HEARTH_E_UNKNOWN_ITEM';
  readonly message: string;
}

/** One recommended item. */
export interface Recommendation {
  readonly item: string;
  readonly score: number;
  /** Present when `explain: true` was asked and the session has an item to point to. */
  readonly reason?: RecommendationReason;
  /**
   * True on the one exploration slot (EngineConfig `explore`): an item the model ranks just below
   * the list, shown so that the visitor's reaction teaches the model about it.
   */
  readonly explore?: true;
  /** What the server's catalogue (`GET /v1/catalog`) says of the item, when it has one. */
  readonly title?: string;
  readonly url?: string;
  readonly image?: string;
}

/** Options of `hearth.recommend()`. */
export interface RecommendOptions {
  /** How many items, 1..100 (default 6). */
  readonly k?: number;
  /** Item ids never to return (the session's own items are excluded anyway). */
  readonly exclude?: readonly string[];
  /**
   * Only these item ids may be returned (e.g. what is in stock, or one category page's items).
   * Ids the model does not know are ignored. Left out: the whole catalogue.
   */
  readonly allow?: readonly string[];
  /** Attach a `reason` to each result (default false). */
  readonly explain?: boolean;
}

/** An interaction as stored on the device (and shown in the privacy panel; it never leaves). */
export interface StoredInteraction {
  readonly id: number;
  readonly item: string;
  readonly type: InteractionType;
  readonly ts: number;
  readonly session: number;
}

/**
 * What a request the engine sent was for (worker/request-log.ts): the global model's manifest, its
 * weights, the catalogue, a round's join or update (plaintext mode), a step of a secure round, or
 * anything else (the tfjs wasm binaries).
 */
export const REQUEST_KINDS = [
  'model',
  'weights',
  'catalog',
  'join',
  'update',
  'secure',
  'other',
] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

/** One request that left the device, as the privacy ledger keeps it (never its body). */
export interface SentRequest {
  /** When it was sent (ms since the epoch). */
  readonly ts: number;
  readonly kind: RequestKind;
  readonly method: string;
  readonly url: string;
  /** Bytes of the request body (0 without one). */
  readonly sent: number;
  /** Bytes of the reply body (0 without a reply). */
  readonly received: number;
  /** The reply's HTTP status; 0 when none came (offline, refused, aborted). */
  readonly status: number;
}

/** A round this device's update was counted in. */
export interface JoinedRound {
  /** The server's id of the round. */
  readonly round: string;
  /** The model version the update was computed on. */
  readonly version: number;
  /** When the round took the update (ms since the epoch). */
  readonly at: number;
  /** secure: the server saw only the sum; plaintext: it saw this device's update itself. */
  readonly mode: 'secure' | 'plaintext';
  /**
   * The round's noise as the device knows it (the manifest's z; a secure round's Skellam noise),
   * charged at sampling rate 1: the device knows it took part.
   */
  readonly privacy: RoundPrivacySettings;
}

/** Everything stored on this device about one item. */
export interface LedgerItem {
  readonly item: string;
  /** The catalogue's title, when it has one. */
  readonly title?: string;
  /** Stored interactions with the item, by type. */
  readonly types: Partial<Record<InteractionType, number>>;
  readonly count: number;
  readonly first: number;
  readonly last: number;
}

/**
 * The visitor's privacy ledger (`hearth.ledger()`): what is stored on this device, every request
 * the engine sent, the rounds this device took part in and what they cost it in (epsilon, delta).
 */
export interface Ledger {
  /** Stored interactions grouped by item, most recently touched first. */
  readonly items: readonly LedgerItem[];
  /** Requests the engine sent, newest first; the newest `requestsKept` are kept. */
  readonly requests: readonly SentRequest[];
  readonly requestsKept: number;
  /** Rounds this device's update was counted in, oldest first. */
  readonly rounds: readonly JoinedRound[];
  /**
   * Epsilon at `delta` of this device's own participation: the rounds it took part in, composed
   * with no credit for sampling (whoever knows that it took part). `curve[i]` is epsilon after
   * round i + 1. Infinity once a round had no noise. Against the server itself this holds only for
   * secure rounds: in a plaintext round the server saw the update before its noise was added.
   */
  readonly privacy: {
    readonly delta: number;
    readonly epsilon: number;
    readonly curve: readonly number[];
  };
  /** How the current model's rounds aggregate (its manifest); null before a model is loaded. */
  readonly aggregation: 'secure' | 'plaintext' | null;
}

/** tfjs backends, in the order the ladder tries them. */
export const BACKEND_LADDER = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_LADDER)[number];

/**
 * What happened to one rung of the backend ladder: `passed` means correct but not chosen (another
 * correct rung was measurably faster, or the first correct rung was not beaten by enough).
 */
export interface BackendAttempt {
  readonly backend: BackendName;
  readonly outcome:
    'chosen' | 'passed' | 'skipped' | 'init-failed' | 'self-test-failed' | 'not-tried';
  /** Error message, the self-test's relative error, or why the rung was not tried. */
  readonly detail?: string;
  /** Median time of one next-item scoring on this rung, in ms, when it passed. */
  readonly ms?: number;
}

/** Configuration handed from the SDK to the engine (already validated on the main thread). */
export interface EngineConfig {
  /** Base URL of the aggregation server, e.g. `https://fl.example.com`. */
  readonly endpoint: string;
  /** Backends to try, in order; defaults to the whole ladder. */
  readonly backends: readonly BackendName[];
  /** Whether clipped model updates may be uploaded (off under GPC / DNT / opt-out). */
  readonly uploads: boolean;
  /** Visitor actions (clicks, carts, purchases; not views) after which the engine syncs. */
  readonly uploadEvery: number;
  /** Absolute URL prefix of the tfjs wasm binaries (ends with '/'). */
  readonly wasmPath: string;
  readonly debug: boolean;
  /** Sent as `x-hearth-key` on join and update requests when the server has per-site keys. */
  readonly siteKey?: string;
  /**
   * Fill the last position of each list (when k >= 2) with an exploration item (`explore: true`).
   * Default off; the SDK's `data-explore` turns it on.
   */
  readonly explore?: boolean;
  /**
   * Fine-tune a local copy of the model on the device after interactions and on new global versions
   * (default true). Local learning sends nothing; `uploads` alone decides what is shared.
   */
  readonly learn?: boolean;
}

/** Outcome of one learning + upload attempt. */
export interface SyncResult {
  readonly status: 'uploaded' | 'skipped' | 'failed';
  readonly reason?: string;
  readonly modelVersion: number;
  /** Bytes of the update body when one was sent. */
  readonly bytes?: number;
}

/**
 * What the worker's browser offers, detected once when the engine first asks (worker/capabilities.ts)
 * and frozen. `privacySignal` is Global Privacy Control or Do Not Track as the worker's own navigator
 * shows them; the page reads its navigator too (workers do not see Do Not Track) and turns uploads
 * or learning off through `EngineConfig`, which `EngineStatus.uploads` / `learning` report.
 */
export interface Capabilities {
  /** `navigator.gpu` is there (the WebGPU rung may be tried). */
  readonly webgpu: boolean;
  /** `OffscreenCanvas` is there: a worker can hold a WebGL context (the WebGL rung may be tried). */
  readonly offscreenCanvas: boolean;
  /** `OffscreenCanvas` and `WebGL2RenderingContext` are there. */
  readonly webgl2: boolean;
  /** `WebAssembly` is there (the wasm rung may be tried). */
  readonly wasm: boolean;
  /** `indexedDB` is there (history and model cache persist; otherwise they live in memory). */
  readonly indexedDB: boolean;
  /** `navigator.locks` can be requested (one tab at a time trains and uploads). */
  readonly webLocks: boolean;
  /** `BroadcastChannel` is there (tabs tell each other about adopted weights). */
  readonly broadcastChannel: boolean;
  /** GPC (`navigator.globalPrivacyControl`) or DNT (`navigator.doNotTrack === '1'`) is on. */
  readonly privacySignal: boolean;
}

/** Snapshot of the engine for the demo's panel and for tests. */
export interface EngineStatus {
  readonly backend: BackendName | null;
  readonly backends: readonly BackendAttempt[];
  readonly modelVersion: number;
  readonly modelItems: number;
  readonly storage: 'indexeddb' | 'memory';
  readonly interactions: number;
  readonly uploads: {
    readonly enabled: boolean;
    readonly sent: number;
    readonly last?: SyncResult;
  };
  /**
   * On-device learning: `enabled` is off when the page asked for none (GPC / DNT with
   * `data-privacy-signal="learning"`); `personalised` is true once recommendations come from this
   * device's fine-tuned copy of the global model. `lastUpdate` says how long the newest online
   * update took on this device, by phase (absent before the first).
   */
  readonly learning: {
    readonly enabled: boolean;
    readonly personalised: boolean;
    readonly lastUpdate?: UpdateTiming;
  };
  /** What the worker's browser offers (detected once per worker). */
  readonly capabilities: Capabilities;
}

/**
 * Milliseconds one online update spent reading the stored history, in the optimiser steps, and
 * building and serving the new model, and in all.
 */
export interface UpdateTiming {
  readonly readMs: number;
  readonly learnMs: number;
  readonly serveMs: number;
  readonly totalMs: number;
}

/**
 * Version of `EngineApi`. The page checks it in the start-up handshake: a site that self-hosts an
 * old `hearth-worker.js` next to a newer `hearth.js` gets a clear HEARTH_E_WORKER_START, not odd
 * failures later. Bump it whenever a method is added, removed or changes meaning.
 */
export const ENGINE_API_VERSION = 3;

/** The API object the worker exposes with comlink. Every method may reject with a HearthError. */
export interface EngineApi {
  /** Answers at once, before `init`: proves the worker started, and says which API it speaks. */
  handshake(): Promise<number>;
  init(config: EngineConfig): Promise<EngineStatus>;
  /**
   * Records the event; resolves with a warning the first time the page tracks an id the catalogue
   * (or, without one, the model) does not know (the loader raises it as `hearth-error` for the
   * events it captures).
   */
  track(event: TrackEvent): Promise<TrackWarning | undefined>;
  /** Options may be left out (the page forwards calls as they come). */
  recommend(options?: RecommendOptions): Promise<Recommendation[]>;
  status(): Promise<EngineStatus>;
  /** The most recent stored interactions, newest first (default 50). */
  stored(limit?: number): Promise<StoredInteraction[]>;
  /** Fine-tune on local history and upload a clipped update now (if allowed). */
  sync(): Promise<SyncResult>;
  /** Turns uploads off on this device, persisted (it survives reloads until `optIn` or `forget`). */
  optOut(): Promise<void>;
  /** Undoes `optOut` (uploads still stay off under GPC / DNT / `data-uploads="off"`). */
  optIn(): Promise<void>;
  /**
   * Erases everything Hearth keeps on this device: the IndexedDB database (interactions, counters,
   * opt-out, the privacy ledger), the in-memory session and the personalised model copy.
   * Recommendations go back to cold start; the global model stays loaded (it holds nothing about
   * this visitor). With `item`, erases only that item's interactions, and with them the
   * personalised copy and any pending update (both learned from them); the copy is learned again
   * from what is left.
   */
  forget(item?: string): Promise<void>;
  /** The privacy ledger: what is stored, what was sent, the rounds joined and their epsilon. */
  ledger(): Promise<Ledger>;
}

/**
 * Every method of `EngineApi`, in the order documented above: the exact keys of the object the
 * worker exposes (worker/index.ts). Nothing else of the engine is reachable from the page.
 */
export const ENGINE_API_METHODS = [
  'handshake',
  'init',
  'track',
  'recommend',
  'status',
  'stored',
  'sync',
  'optOut',
  'optIn',
  'forget',
  'ledger',
] as const satisfies readonly (keyof EngineApi)[];

/**
 * comlink's wire format, for the page side's tiny client (src/rpc.ts) that speaks it without
 * shipping comlink itself (the loader's size budget). Only what that client uses: method calls
 * out, plain or thrown values back. Mirrors comlink 4's `protocol.ts`.
 */
export interface RpcCall {
  readonly id: number;
  readonly type: 'APPLY';
  readonly path: readonly string[];
  readonly argumentList: readonly { readonly type: 'RAW'; readonly value: unknown }[];
}

/** A reply: `RAW` carries the return value; `HANDLER` named `throw` carries a thrown error. */
export type RpcReply =
  | { readonly id: number; readonly type: 'RAW'; readonly value: unknown }
  | {
      readonly id: number;
      readonly type: 'HANDLER';
      readonly name: string;
      readonly value: unknown;
    };

/** Reply of `POST /v1/rounds/join`. */
export interface JoinReply {
  readonly token: string;
  readonly version: number;
  readonly round: number;
}

/** Reply of an accepted `POST /v1/updates`. */
export interface UpdateReply {
  readonly accepted: true;
  readonly round: number;
  /** Updates received in this round so far, including this one. */
  readonly received: number;
  /** Current global version after this update (advances when the round aggregated). */
  readonly version: number;
}

/** Body of every error reply. */
export interface ErrorReply {
  readonly error: { readonly code: string; readonly message: string };
}
