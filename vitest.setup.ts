/**
 * Set-up run before every unit test file: the tfjs environment of Node (every gradient registered,
 * the wasm binaries' folder known, single-threaded wasm), as tools/tf-node.ts gives the CLIs. Tests
 * then pick a backend with `tf.setBackend('cpu' | 'wasm')`, so the model's own tests import nothing
 * but tfjs and the model.
 */
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { wasmDistDir } from './tools/tf-node.js';

tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
setWasmPaths(wasmDistDir());
