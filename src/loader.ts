/**
 * The script-tag entry (built as the IIFE `hearth.js`):
 *
 *   <script defer src="https://cdn.example/hearth.js" data-endpoint="https://fl.example"></script>
 *
 * It reads its options, starts the engine worker, installs `window.hearth` (a function for queued
 * `hearth('track', …)` calls, with the client's methods on it), replays calls queued before it
 * loaded, captures clicks on `[data-hearth-item]`, and announces itself with `hearth-ready` /
 * `hearth-error` events on window. On bad options it logs one error and leaves the page untouched.
 */
import type { TrackEvent } from '../protocol/api.js';
import { HearthError } from '../protocol/errors.js';
import { captureClicks } from './capture.js';
import { resolveOptions, scriptOptions } from './config.js';
import { startHearth, type Hearth } from './client.js';

type Queued = IArguments | unknown[];
type Stub = ((...args: unknown[]) => void) & { q?: Queued[] };

function emit(name: string, detail: unknown): void {
  window.dispatchEvent(new CustomEvent(name, { detail }));
}

function run(hearth: Hearth, args: Queued): unknown {
  const [command, ...rest] = Array.from(args);
  const method = hearth[command as keyof Hearth];
  if (typeof method !== 'function' || command === 'ready') {
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
  try {
    if (!script)
      throw new HearthError('HEARTH_E_CONFIG', 'hearth.js must be loaded by a <script> tag');
    const options = resolveOptions(scriptOptions(script, override), script.src || location.href);
    hearth = startHearth(options);
    if (options.capture) {
      captureClicks((event: TrackEvent) => {
        hearth.track(event).then(
          () => emit('hearth-track', event),
          (error: HearthError) =>
            emit('hearth-error', { code: error.code, message: error.message }),
        );
      });
    }
  } catch (error) {
    const e = error as HearthError;
    // The site owner must see a misconfiguration even with logging silent: one line, with its code.
    // eslint-disable-next-line no-console
    console.error(`[hearth] ${e.code ?? 'HEARTH_E_CONFIG'}: ${e.message}`);
    emit('hearth-error', { code: e.code ?? 'HEARTH_E_CONFIG', message: e.message });
    return;
  }
  const api = Object.assign((...args: unknown[]) => run(hearth, args), hearth);
  (window as { hearth?: unknown }).hearth = api;
  for (const args of queue) void Promise.resolve(run(hearth, args)).catch(() => undefined);
  hearth.ready.then(
    (status) => emit('hearth-ready', status),
    (error: HearthError) => emit('hearth-error', { code: error.code, message: error.message }),
  );
}

boot();
