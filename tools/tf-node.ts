/**
 * tfjs set-up for Node programs (training, evaluation, tests). The model code itself is backend-neutral;
 * only Node needs to be told where the wasm binaries live.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// Side effect only: the umbrella package's Node bundle registers every tfjs gradient with tfjs-core's
// global registry. tfjs-core alone registers none, and its ESM registration file does not load in Node
// (see model/gradients.ts).
import '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

/** Backends Node training can use (`@tensorflow/tfjs-node` does not install here: ENV.md pitfall 7). */
export type NodeBackend = 'wasm' | 'cpu';

/** Absolute path of the wasm backend's `dist/` folder, with the trailing slash `setWasmPaths` needs. */
export function wasmDistDir(): string {
  const main = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
  return `${dirname(main)}/`;
}

/**
 * Selects and initialises a tfjs backend in Node. wasm is single-threaded on purpose: the threaded
 * build needs cross-origin isolation in browsers (ENV.md pitfall 3), and one code path everywhere keeps
 * results comparable. `setWasmPaths` needs an absolute folder with a trailing slash (pitfall 6).
 */
export async function initNodeBackend(name: NodeBackend = 'wasm'): Promise<void> {
  if (name === 'wasm') {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    setWasmPaths(wasmDistDir());
  }
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`tfjs backend ${name} failed to initialise`);
  await tf.ready();
}
