/**
 * A federated run from start to finish: the starting model of the scenario, the rounds (rounds.ts)
 * with each device's own participation coin, a measurement every few rounds, checkpoints to resume
 * from, and the JSON rows of the report (`{ run, scenario, round, metric, k, value }`).
 */
import { sampleNegatives } from '../../model/device-batch.js';
import { initialWeights } from '../../model/init.js';
import { growForCatalog } from '../../server/catalog-growth.js';
import type { LocalUpdateSettings } from '../../model/local-update.js';
import { SessionModel } from '../../model/session-model.js';
import {
  manifestFor,
  parameterCount,
  tensorLayout,
  type ModelDims,
} from '../../protocol/manifest.js';
import { mulberry32, normal } from '../../protocol/prng.js';
import { manifestLayout, updateLength, type UpdateLayout } from '../../protocol/update-layout.js';
import {
  DEFAULT_CONFIG,
  MIN_ROUND_WINDOW_SECONDS,
  type ServerConfig,
} from '../../server/config.js';
import { currentSettings, effectiveSampleRate } from '../../server/privacy.js';
import type { UpdateDtypeName } from '../../protocol/update-format.js';
import { initialFedAdamState } from '../../server/fedadam.js';
import { ledgerEpsilon, windowNoiseMultiplier } from '../../protocol/privacy/index.js';
import { runEpsilon, type Accountant } from './calibrate.js';
import { secureEncoding } from '../../server/secure-rounds.js';
import { federationParams, servedManifest, versionLayout } from '../../server/versions.js';
import { KEPT_KINDS, servedByteLength } from '../../server/kept-bodies.js';
import { encodeWeights } from '../../protocol/weights-codec.js';
import { Pop } from '../baselines/popularity.js';
import type { LoadedDataset } from '../data/datasets.js';
import { evaluateModel, evaluateRecommender } from '../eval/evaluate.js';
import { evenlySpaced } from '../train/splits.js';
import { loadRunState, saveRunState } from './checkpoint.js';
import { Newest, type NewItemsPlan } from './new-items.js';
import { countMinGate, heldCounts, mostHeldRows, type CountMinGate } from './held.js';
import { participants, type Population, type Scenario } from './population.js';
import type { FederateRow } from './report.js';
import {
  runRound,
  summable,
  type RoundGate,
  type DeviceRunner,
  type GlobalState,
  type RoundResult,
  type StaleGroup,
} from './rounds.js';

/** Everything that decides a run's numbers. */
export interface RunSettings {
  readonly scenario: Scenario;
  readonly rounds: number;
  /** Participation probability q of every device in every round. */
  readonly sampleRate: number;
  /** Noise multiplier z (0: no noise, epsilon infinite). */
  readonly noise: number;
  /** Clip bound S. */
  readonly clip: number;
  readonly delta: number;
  /**
   * How the epsilon rows are priced: 'rdp' (absent), the server's ledger; 'pld', the privacy loss
   * distribution of the run's Gaussian rounds (protocol/privacy/pld.ts), tighter. Not with secure.
   */
  readonly accountant?: Accountant;
  readonly seed: number;
  /** Item rows named per round (the rest of the update is the dense tensors); null: whole model. */
  readonly rowsPerRound: number | null;
  /**
   * How a round's rows are named: 'window' moves through a public permutation (roundRows); 'bias'
   * names half of them by the global model's item bias and moves the window over the rest
   * (biasLedRows). Both depend on public data only. 'held' names the rows the round's devices hold
   * most often (held.ts: the round's item histogram, which the server has no way to learn yet).
   */
  readonly rowChoice: 'window' | 'bias' | 'held';
  /**
   * Buckets of the count sketch the devices send their item rows in (protocol/item-sketch.ts; with
   * the full layout; noise only per device); absent: the rows as the layout names them.
   */
  readonly itemSketch?: number;
  /**
   * Each round is a round window of the server (server/round-windows.ts): it publishes only if its
   * count plus N(0, countNoise²) reaches m, as the mean over that noised count, and it is charged
   * at the combined multiplier whether or not it publishes. Absent: rounds of a fixed denominator.
   */
  readonly roundWindow?: {
    readonly countNoise: number;
    /** The m a window's noised count must reach (absent: windowGate's default). */
    readonly minCohort?: number;
  };
  /** Tables of itemSketch buckets (server/config.ts sketchDepth; default 1). */
  readonly sketchDepth?: number;
  /** One in this many dense values a sketch carries (server/config.ts sketchDenseStride; default 1). */
  readonly sketchDenseStride?: number;
  /**
   * 'held': a sketch's rows that no device of the round holds and no shared negative names read
   * as zero (held.ts; the round's item histogram, which the server has no way to learn yet).
   */
  readonly sketchGate?: 'held' | SketchCountMinGate;
  readonly local: Omit<LocalUpdateSettings, 'seed'>;
  readonly serverOptimizer: ServerConfig['serverOptimizer'];
  readonly serverLearningRate: number;
  /** FedAdam's tau (null: the server's default). */
  readonly serverTau: number | null;
  /** FedAdam's tau on the item rows only (null: serverTau's, or the server's default). */
  readonly serverItemTau: number | null;
  /** The server's step size on item rows and biases (null: serverLearningRate). */
  readonly itemLearningRate: number | null;
  /**
   * Every device's body encoded and decoded one by one, even where the round could be summed
   * without them (one plain local step, equal weights: rounds.ts summable, model/cohort-sum.ts).
   */
  readonly perDevice: boolean;
  /**
   * What a device's body carries its values in (the manifest's `federation.updateDtype`): int8 and
   * int4 round stochastically (protocol/update-quant.ts), so they need every body formed (perDevice).
   */
  readonly updateDtype: UpdateDtypeName;
  /**
   * The server learns each round through secure aggregation (server/secure-sum.ts stands in for
   * it: the fixed-point sum with the devices' Skellam noise, priced by the Skellam accountant);
   * off, the server sees each update and adds Gaussian noise to the mean.
   */
  readonly secure: boolean;
  /**
   * A share of each round's devices trained on an older version, 1 to `maxStaleness` versions
   * behind (drawn evenly, at most the rounds so far), as devices whose upload reaches the server
   * after others' have published (server/ingest.ts). `layout` is what they send in: 'newest', the
   * round's layout (the worker's inNewestLayout), or 'carried', their version's layout, carried
   * over as the server carries named rows (fitToVersion; a stale sketch it now refuses, as it
   * measured worse than refusing it). The server's sample rate is then (s + 1) q
   * (server/privacy.ts effectiveSampleRate). Absent: every device trains on the current version.
   */
  readonly stale?: {
    readonly share: number;
    readonly maxStaleness: number;
    readonly layout: 'newest' | 'carried';
  };
  /** Measure every this many rounds (and after the last). */
  readonly evalEvery: number;
  /** Cases of the intermediate measurements (evenly spaced); the last one uses all. */
  readonly evalCases: number;
  /**
   * The newest `fraction` of items held out of the starting model and added to the catalogue after
   * `at` rounds (new-items.ts); absent: every item is in the model from the start.
   */
  readonly newItems?: {
    readonly fraction: number;
    readonly at: number;
    /**
     * Whether the catalogue says when each item was published (so a new row starts from the items
     * published within a day of it); false: no dates, and a new row starts as a seeded random one.
     */
    readonly dated: boolean;
  };
}

/** Progress callbacks (a progress bar). */
export interface RunHooks {
  /** Where the devices' code runs (default: this thread; device-pool.ts for worker threads). */
  readonly runner?: DeviceRunner;
  readonly onRound?: (round: number, result: RoundResult) => void;
  readonly onMeasure?: (row: { round: number; hr: number; mrr: number; epsilon: number }) => void;
}

/**
 * The m a round window's noised count must reach: as given, or two standard deviations of that
 * count (binomial over n devices at q, plus the count's noise) below its expectation q n, so that
 * about 98% of windows publish.
 */
export function windowGate(
  q: number,
  devices: number,
  window: NonNullable<RunSettings['roundWindow']>,
): number {
  if (window.minCohort !== undefined) return window.minCohort;
  const spread = Math.sqrt(devices * q * (1 - q) + window.countNoise ** 2);
  return Math.max(1, Math.floor(q * devices - 2 * spread));
}

/** The label of a run in reports. */
export function runLabel(s: RunSettings): string {
  const what =
    s.rowsPerRound === null
      ? s.itemSketch
        ? `sketch ${s.itemSketch}${s.sketchDepth && s.sketchDepth > 1 ? `x${s.sketchDepth}` : ''}` +
          (s.sketchDenseStride && s.sketchDenseStride > 1
            ? ` dense 1/${s.sketchDenseStride}`
            : '') +
          (s.sketchGate
            ? s.sketchGate === 'held'
              ? ' gated by held'
              : ` gated by count-min ${s.sketchGate.buckets}x${s.sketchGate.depth}` +
                (s.sketchGate.noise > 0
                  ? ` σg=${s.sketchGate.noise} cap ${s.sketchGate.cap} at ${s.sketchGate.threshold}`
                  : '')
            : '')
        : 'full'
      : `rows ${s.rowsPerRound}${s.rowChoice === 'window' ? '' : ` ${s.rowChoice}-led`}`;
  const added = s.newItems
    ? ` new items ${100 * s.newItems.fraction}% at ${s.newItems.at}${s.newItems.dated ? '' : ' undated'}`
    : '';
  const dtype =
    (s.updateDtype === 'float16' ? '' : ` ${s.updateDtype}`) +
    (s.roundWindow ? ` windows σc=${s.roundWindow.countNoise}` : '') +
    (s.stale ? ` stale ${100 * s.stale.share}% ≤${s.stale.maxStaleness} ${s.stale.layout}` : '');
  const z = `z=${s.noise}${s.accountant === 'pld' ? ' (PLD)' : ''}`;
  return `${s.scenario} q=${s.sampleRate} ${z} S=${s.clip} ${what}${dtype}${added}`;
}

/** The server configuration a run's rounds use (what `npm run server` would be started with). */
export function serverConfig(s: RunSettings, devices: number): ServerConfig {
  return {
    ...DEFAULT_CONFIG,
    clipNorm: s.clip,
    noiseMultiplier: s.noise,
    sampleRate: s.sampleRate,
    delta: s.delta,
    // The fixed denominator of DP-FedAvg is the expected cohort q * n (McMahan et al. 2018); a
    // round window's m is the count its noised count must reach (windowGate).
    minCohort: s.roundWindow
      ? windowGate(s.sampleRate, devices, s.roundWindow)
      : Math.max(1, Math.round(s.sampleRate * devices)),
    serverOptimizer: s.serverOptimizer,
    updateRows: s.rowsPerRound ?? 'full',
    itemSketch: s.itemSketch ?? 'off',
    sketchDepth: s.sketchDepth ?? 1,
    sketchDenseStride: s.sketchDenseStride ?? 1,
    // Rows named by the round's histogram are named here (run.ts), not by a server's version.
    rowChoice: s.rowChoice === 'held' ? 'window' : s.rowChoice,
    updateDtype: s.updateDtype,
    serverLearningRate: s.serverLearningRate,
    ...(s.itemLearningRate === null ? {} : { itemLearningRate: s.itemLearningRate }),
    ...(s.serverTau === null ? {} : { fedAdamTau: s.serverTau }),
    ...(s.serverItemTau === null ? {} : { fedAdamItemTau: s.serverItemTau }),
    // Without `stale`, every simulated device trains on the current version and q is the rate.
    maxStaleness: s.stale?.maxStaleness ?? 0,
    aggregation: s.secure ? 'secure' : 'plaintext',
    // Every simulated device is honest; the round guard is measured by bench:poison.
    roundGuard: 'off',
    // A window's length only says when it closes; a simulated window closes at its round's end.
    ...(s.roundWindow
      ? { roundWindowSeconds: MIN_ROUND_WINDOW_SECONDS, countNoise: s.roundWindow.countNoise }
      : {}),
  };
}

/**
 * The update layout of a round, as the server's store records it in a version's manifest
 * (server/versions.ts versionLayout): the rows named on the round's number, or the sketch drawn
 * for the version its devices train on (round + 1).
 */
export function layoutFor(
  config: Pick<
    ServerConfig,
    'updateRows' | 'rowChoice' | 'itemSketch' | 'sketchDepth' | 'sketchDenseStride'
  >,
  dims: ModelDims,
  round: number,
  weights: Float32Array,
  seed: number,
): UpdateLayout {
  const version = config.itemSketch === 'off' ? round : round + 1;
  return manifestLayout(versionLayout(config, dims, version, weights, seed));
}

/**
 * A sketch's gate read from a count-min sketch of the round's item histogram (held.ts), each
 * device counting at most `cap` items; with noise, the gate is a Gaussian mechanism of L2
 * sensitivity √(depth cap), charged with the round (gateMultiplier).
 */
export type SketchCountMinGate = CountMinGate & { readonly cap: number };

/** The noise multiplier of a noised count-min gate: its bucket noise over its L2 sensitivity. */
export function gateMultiplier(gate: SketchCountMinGate): number {
  return gate.noise / Math.sqrt(gate.depth * gate.cap);
}

/**
 * A round's update layout, and the gate of a sketch gated by the round's item histogram (held.ts):
 * with `--row-choice held` the rows the round's devices hold most, else what the server's version
 * names (layoutFor); with `--sketch-gate held` the rows held and the round's shared negatives.
 */
export function roundLayout(
  settings: RunSettings,
  config: ServerConfig,
  dims: ModelDims,
  round: number,
  weights: Float32Array,
  devices: readonly (readonly number[])[],
  local: LocalUpdateSettings,
): { layout: UpdateLayout; gate?: RoundGate } {
  const byHeld = settings.rowChoice === 'held' && settings.rowsPerRound !== null;
  const gate = settings.sketchGate;
  const held = byHeld || gate ? heldCounts(devices, dims.items) : null;
  const layout: UpdateLayout =
    held && byHeld
      ? { kind: 'rows', rows: mostHeldRows(held, settings.rowsPerRound!) }
      : layoutFor(config, dims, round, weights, settings.seed);
  if (!held || !gate) return { layout };
  const { negatives, seed, negativeAlpha } = local;
  const shared = sampleNegatives(dims, weights, negatives, seed, negativeAlpha ?? 0).rows;
  if (gate === 'held') return { layout, gate: { held, negatives: shared } };
  // The gate's noise has a stream of its own, so that the round's other draws stay as they were.
  const rng = mulberry32((settings.seed * 7_368_787 + round * 31 + 5) >>> 0);
  const capped = Number.isFinite(gate.cap) ? heldCounts(devices, dims.items, gate.cap) : held;
  return {
    layout,
    gate: { held: countMinGate(capped, gate, round, () => normal(rng)), negatives: shared },
  };
}

/** The item rows a gate keeps: rows held (or kept by its sketch) and the shared negatives. */
function keptRows(gate: RoundGate, items: number): number {
  const kept = Uint8Array.from(gate.held, (c) => (c > 0 ? 1 : 0));
  for (const row of gate.negatives) kept[row] = 1;
  return kept.subarray(1, items).reduce((sum, k) => sum + k, 0);
}

/**
 * Runs (or resumes from `checkpointDir`) the rounds of `settings` from `start` weights over
 * `population`, and returns the rows. Round 0 is the starting model. With `settings.newItems`,
 * `plan` says which items arrive when: `dims` and `start` are then the model without them.
 */
export async function runFederation(
  loaded: LoadedDataset,
  population: Population,
  startDims: ModelDims,
  start: Float32Array | null,
  settings: RunSettings,
  checkpointDir: string | null,
  hooks: RunHooks = {},
  plan: NewItemsPlan | null = null,
): Promise<FederateRow[]> {
  if (settings.newItems && !plan) throw new Error('a run with new items needs their plan');
  const run = runLabel(settings);
  const config = serverConfig(settings, population.devices.length);
  let dims = startDims;
  const fullDims = plan ? { ...startDims, items: plan.modelIds.length } : startDims;
  const fresh = (): { state: GlobalState; round: number; rows: FederateRow[]; wall: number } => ({
    state: {
      weights: start ? start.slice() : initialWeights(dims, settings.seed),
      optimizer:
        settings.serverOptimizer === 'fedadam'
          ? initialFedAdamState(parameterCount(tensorLayout(dims)))
          : undefined,
    },
    round: 0,
    rows: [],
    wall: 0,
  });
  const resumed = checkpointDir
    ? await loadRunState(checkpointDir, settings, [startDims, fullDims])
    : null;
  const { state, rows } = resumed ?? fresh();
  if (resumed) dims = resumed.dims;
  // The weights live in shared memory for the whole run: device threads read them in place, and
  // each round writes its layout's coordinates back into the same array.
  state.weights = sharedCopy(state.weights);
  if (state.past) state.past = state.past.map(sharedCopy);
  let round = resumed?.round ?? 0;
  const began = performance.now() - (resumed?.wall ?? 0) * 1000;
  let uploadBytes = 0;
  const subset = evenlySpaced(population.pairs, settings.evalCases);

  // Every round is charged alike: with --secure, as a secure round of m devices on a round's
  // layout (every round's has the same length), with the devices' Skellam noise.
  const length = updateLength(dims, layoutFor(config, dims, 0, state.weights, settings.seed));
  const m = config.minCohort;
  // A round window is charged as the server charges it (server/privacy.ts currentSettings).
  const privacy = settings.roundWindow
    ? currentSettings(config)
    : {
        // A noised gate is released with the round's sum: one Gaussian mechanism of both.
        noiseMultiplier:
          typeof settings.sketchGate === 'object' && settings.sketchGate.noise > 0
            ? windowNoiseMultiplier(settings.noise, gateMultiplier(settings.sketchGate))
            : settings.noise,
        // Stale updates are taken within s versions: the server's rate is then (s + 1) q.
        sampleRate: effectiveSampleRate(settings.sampleRate, config.maxStaleness),
        ...(settings.secure && settings.noise > 0
          ? { skellam: secureEncoding(config.clipNorm, settings.noise, m, m, length).skellam }
          : {}),
      };
  // The model's item ids: the dataset's, or the plan's rows so far (evaluate.ts maps the cases).
  const modelIds = () => (plan ? plan.modelIds.slice(0, dims.items) : loaded.data.itemIds);
  const devicesNow = () =>
    !plan
      ? population.devices
      : dims.items < fullDims.items
        ? plan.devicesBefore
        : plan.devicesAfter;
  // The new items reach the catalogue: the next version grows as the server grows it.
  const growIfDue = () => {
    if (!plan || round !== settings.newItems!.at || dims.items === fullDims.items) return;
    const manifest = manifestFor(dims, {
      itemIds: modelIds(),
      federation: federationParams(config),
    });
    const grown = growForCatalog(manifest, state.weights, state.optimizer, plan.catalog);
    if (grown.manifest.itemIds.length !== fullDims.items) {
      throw new Error('the catalogue grew the model other than the plan says');
    }
    dims = grown.manifest.dims;
    state.weights = sharedCopy(grown.weights);
    state.optimizer = grown.optimizerState;
  };
  const newSubset = plan ? evenlySpaced(plan.newPairs, settings.evalCases) : [];
  /**
   * What a device downloads for a new version, as the server sends it to a browser: the served
   * manifest (in brotli; without the popular and recent items a trained model's lists, which the
   * simulation does not keep) and the weights in the server's default dtype (in gzip).
   */
  const downloadBytes = async (): Promise<number> => {
    const manifest = servedManifest(
      manifestFor(dims, { itemIds: modelIds(), federation: federationParams(config) }),
      config,
    );
    const weights = encodeWeights(state.weights, manifest.tensors, manifest.weights.dtype);
    const [head, body] = await Promise.all([
      servedByteLength(KEPT_KINDS.manifest, JSON.stringify(manifest)),
      servedByteLength(KEPT_KINDS.weights, weights),
    ]);
    return head + body;
  };
  const measure = async (final: boolean) => {
    const model = SessionModel.fromFlat(dims, state.weights);
    const pairs = final ? population.pairs : subset;
    const metrics = await evaluateModel(model, modelIds(), loaded.data, pairs);
    const onNew = plan
      ? await evaluateModel(model, modelIds(), loaded.data, final ? plan.newPairs : newSubset)
      : null;
    model.dispose();
    const epsilon =
      settings.accountant === 'pld'
        ? runEpsilon('pld', privacy.noiseMultiplier, privacy.sampleRate, round, settings.delta)
        : ledgerEpsilon(new Array(round).fill(privacy), settings.delta).epsilon;
    const base = { run, scenario: settings.scenario, round } as const;
    const hr = metrics.hr[20]!;
    const mrr = metrics.mrr[20]!;
    rows.push(
      { ...base, metric: 'hr', k: 20, value: hr },
      { ...base, metric: 'mrr', k: 20, value: mrr },
      { ...base, metric: 'epsilon', k: null, value: Number.isFinite(epsilon) ? epsilon : null },
      { ...base, metric: 'upload_bytes', k: null, value: uploadBytes },
      { ...base, metric: 'download_bytes', k: null, value: round > 0 ? await downloadBytes() : 0 },
      { ...base, metric: 'wall_s', k: null, value: (performance.now() - began) / 1000 },
    );
    if (onNew) {
      rows.push(
        { ...base, metric: 'hr_new', k: 20, value: onNew.hr[20]! },
        { ...base, metric: 'mrr_new', k: 20, value: onNew.mrr[20]! },
      );
    }
    hooks.onMeasure?.({ round, hr, mrr, epsilon });
  };

  if (!resumed) {
    if (plan) rows.push(...newItemBaselines(loaded, plan, run, settings.scenario));
    growIfDue();
    await measure(settings.rounds === 0);
  }
  while (round < settings.rounds) {
    const who = participants(settings.seed, round, population.devices.length, settings.sampleRate);
    const histories = devicesNow();
    const devices = Array.from(who, (i) => histories[i]!);
    // One Gaussian stream per round, seeded: a resumed run draws what the uninterrupted one drew.
    const uniform = mulberry32((settings.seed * 1_000_003 + round) >>> 0);
    const local = { ...settings.local, seed: localSeed(settings.seed, round) };
    const { layout, gate } = roundLayout(
      settings,
      config,
      dims,
      round,
      state.weights,
      devices,
      local,
    );
    const { fresh, stale } = staleGroups(
      settings,
      config,
      dims,
      round,
      layout,
      devices,
      state.past,
    );
    const before = settings.stale ? sharedCopy(state.weights) : null;
    const result = await runRound(
      state,
      dims,
      fresh,
      layout,
      round + 1,
      local,
      config,
      () => normal(uniform),
      hooks.runner,
      !settings.perDevice && summable(local, config),
      gate,
      stale,
    );
    if (result.uploads > 0) uploadBytes = result.uploadBytes;
    // The versions stale devices may train on, newest first.
    if (before) state.past = [before, ...(state.past ?? [])].slice(0, config.maxStaleness);
    round++;
    growIfDue();
    hooks.onRound?.(round, gate ? { ...result, gateRows: keptRows(gate, dims.items) } : result);
    const last = round === settings.rounds;
    if (round % settings.evalEvery === 0 || last) {
      await measure(last);
      if (checkpointDir) {
        await saveRunState(checkpointDir, settings, dims, {
          state,
          round,
          rows,
          wall: (performance.now() - began) / 1000,
        });
      }
    }
  }
  return rows;
}

/**
 * A round's devices split into those on the current version and the stale groups (RunSettings
 * stale): each device is stale with probability `share`, `lag` versions behind, drawn evenly from
 * 1 to s and cut to the versions there are; a stale group trains on `past[lag - 1]` with its
 * version's round seed, and sends in the round's `layout` or its version's. The draws have a stream
 * of their own, so that the round's other draws stay as they were.
 */
export function staleGroups(
  settings: RunSettings,
  config: ServerConfig,
  dims: ModelDims,
  round: number,
  layout: UpdateLayout,
  devices: readonly (readonly number[])[],
  past: readonly Float32Array[] | undefined,
): { fresh: (readonly number[])[]; stale: StaleGroup[] } {
  const stale = settings.stale;
  if (!stale || !past || past.length === 0) return { fresh: [...devices], stale: [] };
  const rng = mulberry32((settings.seed * 9_176_077 + round * 131 + 7) >>> 0);
  const fresh: (readonly number[])[] = [];
  const byLag: (readonly number[])[][] = past.map(() => []);
  for (const items of devices) {
    const isStale = rng() < stale.share;
    const lag = 1 + Math.floor(rng() * stale.maxStaleness);
    if (isStale) byLag[Math.min(lag, past.length) - 1]!.push(items);
    else fresh.push(items);
  }
  const groups = byLag.flatMap((group, k): StaleGroup[] => {
    if (group.length === 0) return [];
    // Version round + 1 - lag: trained on in round - lag, with that round's seed and layout.
    const at = round - (k + 1);
    const weights = past[k]!;
    return [
      {
        devices: group,
        weights,
        local: { ...settings.local, seed: localSeed(settings.seed, at) },
        layout:
          stale.layout === 'newest' ? layout : layoutFor(config, dims, at, weights, settings.seed),
      },
    ];
  });
  return { fresh, stale: groups };
}

/** The seed of round `round`'s local training (its negatives, a dropout mask). */
function localSeed(seed: number, round: number): number {
  return (seed ^ Math.imul(round + 1, 0x9e3779b1)) >>> 0;
}

/**
 * HR@20 and MRR@20 of the recency (newest first) and popularity baselines on the cases whose target
 * is a new item, as rows of round 0 (they do not change with rounds).
 */
export function newItemBaselines(
  loaded: LoadedDataset,
  plan: NewItemsPlan,
  run: string,
  scenario: Scenario,
): FederateRow[] {
  const base = { run, scenario, round: 0 } as const;
  return (
    [
      ['newest', new Newest(plan.newestFirst)],
      ['popular', new Pop()],
    ] as const
  ).flatMap(([name, recommender]) => {
    const metrics = evaluateRecommender(recommender, loaded.data, plan.newPairs);
    return [
      { ...base, metric: `hr_new_${name}`, k: 20, value: metrics.hr[20]! },
      { ...base, metric: `mrr_new_${name}`, k: 20, value: metrics.mrr[20]! },
    ] as const;
  });
}

/** `values` copied into a SharedArrayBuffer. */
function sharedCopy(values: Float32Array): Float32Array {
  const shared = new Float32Array(new SharedArrayBuffer(values.byteLength));
  shared.set(values);
  return shared;
}
