/**
 * tfjs-core registers no gradients by itself (the `@tensorflow/tfjs` umbrella package does it as a side
 * effect), and the model imports only tfjs-core. Bundles (Vite, the worker) load tfjs-core's ESM
 * registration file, split into its own chunk. Node cannot load that file (its extensionless ESM
 * imports fail with ERR_UNSUPPORTED_DIR_IMPORT); there the umbrella package's CommonJS bundle registers
 * the same gradients into tfjs-core's global registry (tools/tf-node.ts imports it up front).
 */
import * as tf from '@tensorflow/tfjs-core';

/** Makes sure tfjs gradients are registered before training; loads them on first use. */
export async function ensureGradients(): Promise<void> {
  if (tf.getGradient('BatchMatMul') !== undefined) return;
  try {
    await import('@tensorflow/tfjs-core/dist/register_all_gradients');
  } catch (bundleError) {
    try {
      // Node fallback. The specifier is a variable so bundlers do not pull the umbrella package
      // (layers, converter, data) into the worker build for a branch browsers never take.
      const umbrella = '@tensorflow/tfjs';
      await import(/* @vite-ignore */ umbrella);
    } catch {
      throw new Error(
        'tfjs gradients are not registered: import @tensorflow/tfjs (Node) or ' +
          '@tensorflow/tfjs-core/dist/register_all_gradients (bundlers) before training',
        { cause: bundleError },
      );
    }
  }
  if (tf.getGradient('BatchMatMul') === undefined) {
    throw new Error('tfjs gradients were loaded into another copy of tfjs-core');
  }
}
