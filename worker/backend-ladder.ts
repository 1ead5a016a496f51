/**
 * Picks the tfjs backend: WebGPU -> WebGL -> WASM -> CPU, each rung tried in turn and used only if it
 * initialises AND passes a self-test against a plain-JS answer. Initialising is not enough: WebGPU on
 * a software adapter initialises and then computes this LSTM wrongly (ENV.md pitfall 2), and tfjs
 * alone would happily use it.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { BackendAttempt, BackendName } from '../protocol/api.js';
import { createLogger } from '../protocol/logger.js';
import { selfTest, type SelfTestModel } from './self-test.js';

const log = createLogger('backend');

/**
 * Largest error, relative to the score scale, the self-test accepts. Correct float32 backends land
 * near 1e-7; a broken one is off by whole units.
 */
export const SELF_TEST_TOLERANCE = 1e-3;

/** Result of walking the ladder. */
export interface LadderResult {
  readonly chosen: BackendName | null;
  readonly attempts: BackendAttempt[];
}

/** Capability check before even trying a rung, so absent APIs are 'skipped', not 'failed'. */
function available(name: BackendName): boolean {
  const g = globalThis as { navigator?: { gpu?: unknown }; OffscreenCanvas?: unknown };
  if (name === 'webgpu') return !!g.navigator?.gpu;
  if (name === 'webgl') return typeof g.OffscreenCanvas === 'function';
  if (name === 'wasm') return typeof WebAssembly === 'object';
  return true;
}

/**
 * Tries each backend of `order` until one initialises and passes the self-test on `probe` (the model
 * to be served, when loaded). `wasmPath` is the absolute URL prefix of the tfjs wasm binaries.
 * Never throws: a null `chosen` means none passed.
 */
export async function chooseBackend(
  order: readonly BackendName[],
  wasmPath: string,
  probe?: SelfTestModel,
): Promise<LadderResult> {
  // Multithreaded wasm breaks in minified builds and needs COOP/COEP that host sites will not send
  // (ENV.md pitfall 3); it must be off before the first wasm initialisation.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  setWasmPaths(wasmPath);
  const attempts: BackendAttempt[] = [];
  let chosen: BackendName | null = null;
  for (const name of order) {
    if (chosen) {
      attempts.push({ backend: name, outcome: 'not-tried' });
      continue;
    }
    if (!available(name)) {
      attempts.push({ backend: name, outcome: 'skipped', detail: 'not available here' });
      continue;
    }
    try {
      // setBackend resolves false (or throws) when initialisation fails.
      if (!(await tf.setBackend(name))) throw new Error('initialisation failed');
      await tf.ready();
    } catch (error) {
      attempts.push({ backend: name, outcome: 'init-failed', detail: String(error) });
      continue;
    }
    try {
      const maxError = await selfTest(probe);
      if (maxError <= SELF_TEST_TOLERANCE) {
        chosen = name;
        attempts.push({ backend: name, outcome: 'chosen', detail: `max error ${maxError}` });
      } else {
        attempts.push({
          backend: name,
          outcome: 'self-test-failed',
          detail: `max error ${maxError}`,
        });
      }
    } catch (error) {
      attempts.push({ backend: name, outcome: 'self-test-failed', detail: String(error) });
    }
    log.info(attempts[attempts.length - 1]);
  }
  return { chosen, attempts };
}
