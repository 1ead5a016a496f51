/**
 * Picks the tfjs backend from the ladder WebGPU -> WebGL -> WASM -> CPU. A rung is usable only if it
 * initialises AND passes a self-test against a plain-JS answer on the model to be served:
 * initialising proves nothing (WebGPU on a software adapter initialises and has computed LSTMs
 * wrongly, ENV.md). Among usable rungs the first in ladder order wins unless another is measurably
 * faster at scoring this model on this device: on a machine without a GPU, WebGPU runs on a software
 * adapter and is ~25x slower than wasm (bench/browser.ts). The decision is cached per browser. A
 * rung whose GPU is lost mid-test, or that gives no answer within RUNG_TIME_LIMIT_MS, fails like one
 * that computes wrongly (worker/gpu-loss.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { BackendAttempt, BackendName } from '../protocol/api.js';
import { createLogger } from '../protocol/logger.js';
import { capabilities } from './capabilities.js';
import { bounded, whenLost } from './gpu-loss.js';
import { selfTest, timeScoring, type SelfTestModel } from './self-test.js';

const log = createLogger('backend');

/**
 * Largest error, relative to the score scale, the self-test accepts. Correct float32 backends land
 * near 1e-7; a broken one is off by whole units.
 */
export const SELF_TEST_TOLERANCE = 1e-3;

/** A later rung replaces the first correct one only when it is at least this much faster. */
export const FASTER_BY = 1.5;

/** Result of walking the ladder. */
export interface LadderResult {
  readonly chosen: BackendName | null;
  readonly attempts: BackendAttempt[];
}

/** Capability check before even trying a rung, so absent APIs are 'skipped', not 'failed'. */
function available(name: BackendName): boolean {
  const can = capabilities();
  if (name === 'webgpu') return can.webgpu;
  // tfjs' WebGL backend in a worker needs an OffscreenCanvas; it falls back to WebGL 1 without 2.
  if (name === 'webgl') return can.offscreenCanvas;
  if (name === 'wasm') return can.wasm;
  return true;
}

type Trial =
  | { readonly ok: true; readonly ms: number; readonly detail: string }
  | { readonly ok: false; readonly attempt: BackendAttempt };

/**
 * How long one rung may take to initialise, self-test and time (ms). Only a stuck rung reaches it:
 * a GPU whose context is lost mid-test never answers a read-back (worker/gpu-loss.ts).
 */
export const RUNG_TIME_LIMIT_MS = 30_000;

/** Initialises one rung, self-tests it and times it, within RUNG_TIME_LIMIT_MS. */
async function tryRung(name: BackendName, probe?: SelfTestModel): Promise<Trial> {
  if (!available(name)) {
    return {
      ok: false,
      attempt: { backend: name, outcome: 'skipped', detail: 'not available here' },
    };
  }
  const deadline = Date.now() + RUNG_TIME_LIMIT_MS;
  const never = new Promise<string>(() => undefined);
  try {
    // setBackend resolves false (or throws) when initialisation fails.
    const init = async (): Promise<void> => {
      if (!(await tf.setBackend(name))) throw new Error('initialisation failed');
      await tf.ready();
    };
    await bounded(init(), never, RUNG_TIME_LIMIT_MS);
  } catch (error) {
    return { ok: false, attempt: { backend: name, outcome: 'init-failed', detail: String(error) } };
  }
  const watch = whenLost(name);
  try {
    const test = async (): Promise<Trial> => {
      const error = await selfTest(probe);
      const detail = `relative error ${error.toExponential(2)}`;
      if (!(error <= SELF_TEST_TOLERANCE)) {
        return { ok: false, attempt: { backend: name, outcome: 'self-test-failed', detail } };
      }
      return { ok: true, ms: await timeScoring(probe), detail };
    };
    return await bounded(test(), watch.lost, Math.max(0, deadline - Date.now()));
  } catch (error) {
    return {
      ok: false,
      attempt: { backend: name, outcome: 'self-test-failed', detail: String(error) },
    };
  } finally {
    watch.stop();
  }
}

/**
 * The decision rule: the first correct rung in ladder order, unless another correct rung scores at
 * least FASTER_BY times faster (then the fastest). Undefined when none passed.
 */
export function pickRung<T extends { readonly ms: number }>(passed: readonly T[]): T | undefined {
  const first = passed[0];
  if (!first) return undefined;
  const fastest = passed.reduce((a, b) => (b.ms < a.ms ? b : a));
  return fastest.ms * FASTER_BY <= first.ms ? fastest : first;
}

/** Options of `chooseBackend`. */
export interface LadderOptions {
  /** Absolute URL prefix of the tfjs wasm binaries. */
  readonly wasmPath: string;
  /** The model to be served (self-test and timing run on it); a small fixed model when absent. */
  readonly probe?: SelfTestModel;
  /** A rung decided on an earlier visit: tried (and self-tested) first, alone if it passes. */
  readonly cached?: BackendName;
}

/**
 * Walks the ladder `order` and returns the chosen backend (set as tfjs' backend) with every rung's
 * outcome. Never throws: a null `chosen` means no rung passed.
 */
export async function chooseBackend(
  order: readonly BackendName[],
  options: LadderOptions,
): Promise<LadderResult> {
  // Multithreaded wasm breaks in minified builds and needs COOP/COEP that host sites will not send
  // (ENV.md pitfall 3); it must be off before the first wasm initialisation.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  setWasmPaths(options.wasmPath);
  const { probe, cached } = options;
  if (cached && order.includes(cached)) {
    const trial = await tryRung(cached, probe);
    if (trial.ok) {
      const attempts = order.map((backend): BackendAttempt =>
        backend === cached
          ? { backend, outcome: 'chosen', detail: `cached choice; ${trial.detail}`, ms: trial.ms }
          : { backend, outcome: 'not-tried', detail: 'cached choice' },
      );
      return { chosen: cached, attempts };
    }
    log.info('cached backend no longer passes; walking the whole ladder', trial.attempt);
  }
  const attempts: BackendAttempt[] = [];
  const passed: { backend: BackendName; ms: number; index: number }[] = [];
  for (const name of order) {
    // CPU is the last resort: it is never faster than a working wasm, so time it only if needed.
    if (name === 'cpu' && passed.some((p) => p.backend === 'wasm')) {
      attempts.push({ backend: name, outcome: 'not-tried', detail: 'wasm passed' });
      continue;
    }
    const trial = await tryRung(name, probe);
    if (trial.ok) {
      passed.push({ backend: name, ms: trial.ms, index: attempts.length });
      attempts.push({ backend: name, outcome: 'passed', detail: trial.detail, ms: trial.ms });
    } else {
      attempts.push(trial.attempt);
    }
  }
  const winner = pickRung(passed);
  if (!winner) return { chosen: null, attempts };
  attempts[winner.index] = { ...attempts[winner.index]!, outcome: 'chosen' };
  await tf.setBackend(winner.backend);
  log.info('backend ladder', attempts);
  return { chosen: winner.backend, attempts };
}
