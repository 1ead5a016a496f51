/**
 * Checkpoints of a federated run, so that a long run can stop and resume: the global weights,
 * FedAdam's moments, the older versions' weights that stale devices train on, the rounds done, the
 * rows so far and the wall time. A checkpoint of a run with other settings or another model shape
 * is refused, not silently continued.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HearthError } from '../../protocol/errors.js';
import type { ModelDims } from '../../protocol/manifest.js';
import type { FederateRow } from './report.js';
import type { GlobalState } from './rounds.js';
import type { RunSettings } from './run.js';

/** What a checkpoint restores. */
export interface RunState {
  readonly state: GlobalState;
  readonly round: number;
  readonly rows: FederateRow[];
  /** Seconds of the run before this checkpoint. */
  readonly wall: number;
}

interface Meta {
  readonly format: 'hearth-federate/1';
  readonly settings: RunSettings;
  readonly dims: ModelDims;
  readonly round: number;
  readonly rows: FederateRow[];
  readonly wall: number;
  readonly fedAdamStep: number | null;
  /** Older versions' weights kept for stale devices (past-<k>.f32); absent in older checkpoints. */
  readonly past?: number;
}

const META = 'state.json';

/** The bytes of a float array, as written to a file (no copy). */
export function bytesOf(array: Float32Array | Float64Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** A file written by bytesOf, read back as floats (an aligned copy of its bytes). */
export async function readFloats<T extends Float32Array | Float64Array>(
  file: string,
  Type: { new (buffer: ArrayBuffer): T },
): Promise<T> {
  const bytes = await readFile(file);
  return new Type(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** Writes a checkpoint (each file written aside and renamed, so a crash leaves the previous one). */
export async function saveRunState(
  dir: string,
  settings: RunSettings,
  dims: ModelDims,
  run: RunState,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const put = async (name: string, data: Uint8Array | string) => {
    await writeFile(join(dir, `${name}.tmp`), data);
    await rename(join(dir, `${name}.tmp`), join(dir, name));
  };
  await put('weights.f32', bytesOf(run.state.weights));
  if (run.state.optimizer) {
    await put('adam-m.f64', bytesOf(run.state.optimizer.m));
    await put('adam-v.f64', bytesOf(run.state.optimizer.v));
  }
  const past = run.state.past ?? [];
  for (const [k, weights] of past.entries()) await put(`past-${k}.f32`, bytesOf(weights));
  const meta: Meta = {
    format: 'hearth-federate/1',
    settings,
    dims,
    round: run.round,
    rows: run.rows,
    wall: run.wall,
    fedAdamStep: run.state.optimizer?.step ?? null,
    past: past.length,
  };
  // The metadata goes last: it names the round the arrays belong to.
  await put(META, JSON.stringify(meta));
}

/**
 * The checkpoint in `dir` for these settings, or null when there is none. `shapes` are the model
 * shapes the run may be at (two when new items grow it mid-run); the state comes with its own.
 */
export async function loadRunState(
  dir: string,
  settings: RunSettings,
  shapes: readonly ModelDims[],
): Promise<(RunState & { readonly dims: ModelDims }) | null> {
  let meta: Meta;
  try {
    meta = JSON.parse(await readFile(join(dir, META), 'utf8')) as Meta;
  } catch {
    return null;
  }
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  // More rounds, or measuring more often, continue the same run; anything else is another run.
  const decisive = (s: RunSettings) => ({ ...s, rounds: 0, evalEvery: 0 });
  if (
    meta.format !== 'hearth-federate/1' ||
    !same(decisive(settings), decisive(meta.settings)) ||
    !shapes.some((dims) => same(dims, meta.dims))
  ) {
    throw new HearthError(
      'HEARTH_E_DATASET',
      `${dir} holds a checkpoint of another run (settings or model shape differ); ` +
        'remove it or choose another --checkpoint directory',
    );
  }
  const weights = await readFloats(join(dir, 'weights.f32'), Float32Array);
  const optimizer =
    meta.fedAdamStep === null
      ? undefined
      : {
          step: meta.fedAdamStep,
          m: await readFloats(join(dir, 'adam-m.f64'), Float64Array),
          v: await readFloats(join(dir, 'adam-v.f64'), Float64Array),
        };
  const past: Float32Array[] = [];
  for (let k = 0; k < (meta.past ?? 0); k++) {
    past.push(await readFloats(join(dir, `past-${k}.f32`), Float32Array));
  }
  return {
    state: { weights, optimizer, ...(past.length > 0 ? { past } : {}) },
    round: meta.round,
    rows: meta.rows,
    wall: meta.wall,
    dims: meta.dims,
  };
}
