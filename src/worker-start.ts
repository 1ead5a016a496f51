/**
 * Starting the engine worker wherever the SDK is served from. A page may only run `new Worker(url)`
 * for a same-origin URL, and the SDK normally comes from a CDN: then the worker starts from a
 * same-origin blob module whose one line imports the real worker (module imports are CORS fetches,
 * so the CDN must send `Access-Control-Allow-Origin`). A site that self-hosts the worker
 * (`data-worker-url` on its own origin) gets a direct start and needs no `blob:` in its CSP.
 *
 * The start is confirmed by a handshake (the worker answers with its API version). A blocked start
 * (CSP, CORS, a 404, a hung load) rejects with a HearthError and leaves nothing behind.
 */
import { ENGINE_API_VERSION, type EngineApi } from '../protocol/api.js';
import { HearthError } from '../protocol/hearth-error.js';
import { connect, type Remote } from './rpc.js';

/**
 * How long the worker may take to load and answer the handshake. Generous: hearth-worker.js is
 * ~300 KB gzip and a visitor may be on a slow connection. CSP and load failures are reported by
 * events long before this; the timeout only catches a start that never settles.
 */
export const START_TIMEOUT_MS = 30_000;

/** A started worker and the typed engine inside it. */
export interface StartedWorker {
  readonly worker: Worker;
  readonly engine: Remote<EngineApi>;
}

/** Starts the worker at `url` (absolute) and waits for its handshake. */
export function startWorker(url: string, timeoutMs = START_TIMEOUT_MS): Promise<StartedWorker> {
  const direct = new URL(url).origin === location.origin;
  const src = direct
    ? url
    : URL.createObjectURL(
        new Blob([`import ${JSON.stringify(url)};`], { type: 'text/javascript' }),
      );
  let worker: Worker | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onViolation: (event: SecurityPolicyViolationEvent) => void = () => undefined;
  return new Promise<StartedWorker>((resolve, reject) => {
    const fail = (code: HearthError['code'], detail: string): void =>
      reject(new HearthError(code, detail));
    // A CSP that refuses the worker (worker-src without blob: or without the worker's origin) is
    // reported to the document; the worker itself then only fires a bare `error`.
    onViolation = (event) => {
      const blocked = event.blockedURI;
      if (blocked === url || blocked.startsWith('blob')) {
        fail('HEARTH_E_CSP', `${event.effectiveDirective} refused ${blocked}`);
      }
    };
    document.addEventListener('securitypolicyviolation', onViolation);
    timer = setTimeout(
      () => fail('HEARTH_E_WORKER_START', `no answer from ${url} in ${timeoutMs} ms`),
      timeoutMs,
    );
    try {
      worker = new Worker(src, { type: 'module', name: 'hearth' });
    } catch (error) {
      const e = error as Error;
      return fail(e.name === 'SecurityError' ? 'HEARTH_E_CSP' : 'HEARTH_E_WORKER_START', e.message);
    }
    worker.addEventListener('error', (event) =>
      // The violation event, when there is one, is queued with this error: let it win the race so
      // a CSP block is reported as such.
      setTimeout(() =>
        fail(
          'HEARTH_E_WORKER_START',
          event.message || `${url} did not load (CSP, CORS or network)`,
        ),
      ),
    );
    const engine = connect<EngineApi>(worker);
    engine.handshake().then((version) => {
      if (version === ENGINE_API_VERSION) resolve({ worker: worker!, engine });
      else
        fail('HEARTH_E_WORKER_START', `${url} speaks API v${version}, not v${ENGINE_API_VERSION}`);
    }, reject);
  }).then(
    (started) => {
      cleanUp();
      return started;
    },
    (error: unknown) => {
      cleanUp();
      worker?.terminate();
      throw error;
    },
  );

  function cleanUp(): void {
    clearTimeout(timer);
    document.removeEventListener('securitypolicyviolation', onViolation);
    // The worker has fetched its blob (or failed to): the URL is no longer needed.
    if (!direct) URL.revokeObjectURL(src);
  }
}
