/**
 * The Hearth Web Worker entry: builds the engine and exposes its API to the page with comlink.
 * Started by the SDK as a module worker; tfjs and the model live only here, never on the page's main
 * thread.
 */
import { expose, transferHandlers } from 'comlink';
import { ENGINE_API_METHODS, type EngineApi } from '../protocol/api.js';
import { installErrorTransfer } from '../protocol/error-wire.js';
import { Engine } from './engine.js';

/**
 * What the page may call: exactly the documented `EngineApi` methods, bound to `engine`. Not the
 * engine itself: comlink answers any property path, so an exposed instance would also hand the
 * page its replay and test helpers (`sessionScores`, `learnPending`, `dispose`) and its fields. No
 * prototype, so nothing of `Object.prototype` is reachable either; frozen, so nothing is added.
 */
export function pageApi(engine: EngineApi): EngineApi {
  const api: Record<string, unknown> = Object.create(null);
  for (const method of ENGINE_API_METHODS) api[method] = engine[method].bind(engine);
  return Object.freeze(api) as unknown as EngineApi;
}

installErrorTransfer(transferHandlers as never);
const engine = new Engine();
// Every request the worker sends (the engine's, tfjs's wasm loads) goes into the privacy ledger.
globalThis.fetch = engine.requests.wrap(globalThis.fetch.bind(globalThis));
expose(pageApi(engine));
