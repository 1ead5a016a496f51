/**
 * The device's side of a federated round: turn local fine-tuning into a clipped delta and send it.
 * What leaves the device is exactly the binary update of protocol/update-format.ts: the delta
 * `local - global` clipped to L2 norm S, in float16 or the int8 / int4 / int2 the manifest names,
 * the base version, the layout hash, a clamped example count and a single-use round token. No item
 * id, no timestamp, no session.
 */
import type { ErrorReply, JoinReply, SyncResult, UpdateReply } from '../protocol/api.js';
import { clipL2InPlace } from '../protocol/clip.js';
import { HearthError, isErrorCode } from '../protocol/errors.js';
import { updateDtypeOf, type ModelManifest } from '../protocol/manifest.js';
import { PATHS, SITE_KEY_HEADER } from '../protocol/routes.js';
import {
  UPDATE_CONTENT_TYPE,
  UPDATE_DTYPES,
  encodeUpdate,
  tokenFromHex,
} from '../protocol/update-format.js';

/**
 * Uniform draws in [0, 1) from the platform's CSPRNG (Web Crypto, in browsers and Node alike), read
 * 4,096 at a time: a device's rounding must not be predictable from a seed.
 */
export function cryptoRandom(): () => number {
  const buffer = new Uint32Array(4096);
  let at = buffer.length;
  return () => {
    if (at === buffer.length) {
      crypto.getRandomValues(buffer);
      at = 0;
    }
    return buffer[at++]! / 4294967296;
  };
}

/** Clips `delta` in place to what the server accepts for bound S; returns it. */
export function clipForUpload(delta: Float32Array, clipNorm: number): Float32Array {
  // A little headroom: float16 rounding on the wire can grow the norm by ~5e-4 relative, and the
  // server rejects updates over S (after a 1e-3 slack).
  clipL2InPlace(delta, clipNorm * (1 - 1e-3));
  return delta;
}

async function postJson<T>(
  url: string,
  body: BodyInit | null,
  contentType: string,
  siteKey: string | undefined,
): Promise<T> {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (siteKey) headers[SITE_KEY_HEADER] = siteKey;
  const response = await fetch(url, { method: 'POST', body, headers, credentials: 'omit' });
  // A failed reply should be an ErrorReply, but whatever came back is read defensively.
  const json = (await response.json().catch(() => null)) as
    (T & { error?: Partial<ErrorReply['error']> }) | null;
  if (!response.ok) {
    const code = json?.error?.code;
    throw new HearthError(
      isErrorCode(code) ? code : 'HEARTH_E_UPLOAD',
      `HTTP ${response.status}: ${json?.error?.message ?? 'no error body'}`,
    );
  }
  return json as T;
}

/**
 * Asks the server for a round token (the device has already decided to take part). With round
 * windows, `window` names the window whose coin said so: the server takes the join only in that
 * window (server/round-windows.ts checkJoinWindow).
 */
export function joinRound(endpoint: string, siteKey?: string, window?: number): Promise<JoinReply> {
  const url = new URL(PATHS.join, endpoint).href;
  const body = window === undefined ? '{}' : JSON.stringify({ window });
  return postJson<JoinReply>(url, body, 'application/json', siteKey);
}

/** Everything needed to send one update. */
export interface ShareRequest {
  readonly endpoint: string;
  readonly manifest: ModelManifest;
  readonly delta: Float32Array;
  readonly examples: number;
  /** The version the delta was computed on (an update kept offline may be behind the manifest). */
  readonly baseVersion?: number;
  /**
   * How many versions after `baseVersion` the delta's layout is of (0 when absent): `manifest` is
   * then that version's, published while the device trained (local-training.ts inNewestLayout).
   */
  readonly layoutAhead?: number;
  readonly join: JoinReply;
  readonly siteKey?: string;
}

/**
 * The bytes a device sends for a clipped delta, against `manifest`'s version, in the dtype the
 * manifest names (float16 where it names none; int8 / int4 / int2 round stochastically with
 * `random`, the platform's CSPRNG unless a simulation passes a seeded one). A delta trained on an
 * earlier version names it as `baseVersion`; with `layoutAhead` k, the delta is in the layout of
 * version baseVersion + k, which `manifest` then is.
 */
export function encodeDeviceUpdate(
  manifest: Pick<ModelManifest, 'version' | 'layoutHash' | 'federation'>,
  delta: Float32Array,
  examples: number,
  roundToken: Uint8Array,
  baseVersion: number = manifest.version,
  random: () => number = cryptoRandom(),
  layoutAhead = 0,
): Uint8Array<ArrayBuffer> {
  if (layoutAhead > 0 && baseVersion + layoutAhead !== manifest.version) {
    throw new RangeError(
      `a layout ${layoutAhead} after v${baseVersion} is v${baseVersion + layoutAhead}'s, not v${manifest.version}'s`,
    );
  }
  return encodeUpdate(
    {
      dtype: UPDATE_DTYPES[updateDtypeOf(manifest.federation)],
      baseVersion,
      layoutAhead,
      layoutHash: manifest.layoutHash,
      examples: Math.min(examples, manifest.federation.maxExamples),
      clipNorm: manifest.federation.clipNorm,
      roundToken,
      delta,
    },
    random,
  );
}

/** Encodes and posts one update; resolves with the server's reply. */
export async function shareUpdate(request: ShareRequest): Promise<UpdateReply & { bytes: number }> {
  const { manifest } = request;
  const body = encodeDeviceUpdate(
    manifest,
    request.delta,
    request.examples,
    tokenFromHex(request.join.token),
    request.baseVersion,
    cryptoRandom(),
    request.layoutAhead,
  );
  const reply = await postJson<UpdateReply>(
    new URL(PATHS.updates, request.endpoint).href,
    body,
    UPDATE_CONTENT_TYPE,
    request.siteKey,
  );
  return { ...reply, bytes: body.length };
}

/** A SyncResult for a skipped attempt. */
export function skipped(reason: string, modelVersion: number): SyncResult {
  return { status: 'skipped', reason, modelVersion };
}

/**
 * Whether a failed upload may succeed later unchanged: the network was down (fetch rejected), the
 * server failed (5xx), or the round already held an update from this address (HEARTH_E_JOIN_BUDGET,
 * a shared NAT). Any other 4xx means the update itself was refused; resending it is pointless.
 */
export function isRetryable(error: unknown): boolean {
  if (!(error instanceof HearthError)) return true;
  // The round already held an update from this device's address (a shared NAT): a later one may not.
  if (error.code === 'HEARTH_E_JOIN_BUDGET') return true;
  return error.code === 'HEARTH_E_UPLOAD' && /HTTP 5\d\d/.test(error.message);
}
