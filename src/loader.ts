/**
 * The script-tag entry (built as the IIFE `hearth.js`):
 *
 *   <script defer src="https://cdn.example/hearth.js" data-endpoint="https://fl.example"></script>
 *
 * It reads its options, starts the engine worker, installs `window.hearth` (a function for queued
 * `hearth('track', …)` calls, with the client's methods on it), replays calls queued before it
 * loaded, imports `hearth-capture.js` (from next to the worker) to capture clicks, views and dwell
 * on `[data-hearth-item]`, and announces itself with `hearth-ready` / `hearth-error` events on
 * window. Every page pays for this file up front, so it stays under 2 KB brotli
 * (e2e/bundles.spec.ts): no comlink, no error catalogue, no tfjs. If anything fails it emits one
 * `hearth-error` and leaves the page's DOM as it was.
 */
import { startHearth, type Hearth } from './client.js';
import { resolveOptions, scriptOptions } from './config.js';
import { HearthError } from '../protocol/hearth-error.js';

type Queued = IArguments | unknown[];
type Stub = ((...args: unknown[]) => void) & { q?: Queued[] };

const emit = (name: string, detail: unknown): boolean =>
  window.dispatchEvent(new CustomEvent(name, { detail }));

const emitError = (error: HearthError): boolean =>
  emit('hearth-error', { code: error.code, message: error.message });

function run(hearth: Hearth, args: Queued): unknown {
  const [command, ...rest] = Array.from(args);
  const method = hearth[command as keyof Hearth];
  if (typeof method !== 'function') {
    return Promise.reject(
      new HearthError('HEARTH_E_ARGUMENT', `unknown command ${String(command)}`),
    );
  }
  return (method as (...a: unknown[]) => unknown)(...rest);
}

function boot(): void {
  const script = document.currentScript as HTMLScriptElement | null;
  const existing = (window as { hearth?: unknown }).hearth;
  const queue = typeof existing === 'function' ? ((existing as Stub).q ?? []) : [];
  const override =
    typeof existing === 'object' && existing !== null ? (existing as Record<string, unknown>) : {};
  let hearth: Hearth;
  let capturing: Promise<() => void> | undefined;
  try {
    if (!script) {
      throw new HearthError('HEARTH_E_CONFIG', 'hearth.js needs a <script> tag');
    }
    const options = resolveOptions(
      scriptOptions(script, override),
      script.src || location.href,
      location.href,
    );
    hearth = startHearth(options);
    if (options.capture) {
      // Capture code loads beside the worker: a site that self-hosts the worker self-hosts it too.
      const url = new URL('hearth-capture.js', options.workerUrl).href;
      capturing = (import(/* @vite-ignore */ url) as Promise<typeof import('./capture.js')>).then(
        (m) =>
          m.capture((event) =>
            hearth.track(event).then((warning) => {
              // The first id the catalogue does not know (TrackWarning), reported once.
              if (warning) emit('hearth-error', warning);
              emit('hearth-track', event);
            }, emitError),
          ),
      );
      capturing.catch(() => emitError(new HearthError('HEARTH_E_CAPTURE', `${url} did not load`)));
    }
  } catch (error) {
    const e =
      error instanceof HearthError ? error : new HearthError('HEARTH_E_CONFIG', String(error));
    // The site owner must see a misconfiguration even with logging silent: one line, with its code.
    // eslint-disable-next-line no-console
    console.error(`[hearth] ${e.code}: ${e.message}`);
    emitError(e);
    return;
  }
  // Commands run on `api`, the object whose `forget` hearth-capture.js wraps (capture.ts).
  const api: Hearth = Object.assign((...args: unknown[]) => run(api, args), hearth);
  (window as { hearth?: unknown }).hearth = api;
  for (const args of queue) void Promise.resolve(run(api, args)).catch(() => undefined);
  hearth.ready.then(
    (status) => emit('hearth-ready', status),
    (error: HearthError) => {
      // Nothing could be tracked anyway: stop listening so clicks do not each report the failure.
      capturing?.then((stop) => stop(), Boolean);
      emitError(error);
    },
  );
}

boot();
