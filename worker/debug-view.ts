/**
 * With `data-debug`, what the worker last did that a site's developer may want to look at, kept on
 * the worker's own global scope as `self.hearthDebug` (devtools' worker console reads it, and so do
 * the e2e tests, through Playwright's worker handle). The page cannot reach it, and nothing here is
 * sent anywhere: it is the device's own data, shown on the device.
 */

/** What the worker shows under `self.hearthDebug`. */
export interface DebugView {
  /**
   * The clipped update this device put into its last secure round, before fixed-point encoding,
   * noise and masks: the plaintext the server never sees, to check a published sum against.
   */
  secureInput?: { readonly round: string; readonly version: number; readonly delta: Float32Array };
}

/** Records `value` under `key` of `self.hearthDebug`. */
export function showForDebugging<K extends keyof DebugView>(key: K, value: DebugView[K]): void {
  const scope = globalThis as { hearthDebug?: DebugView };
  (scope.hearthDebug ??= {})[key] = value;
}
