/**
 * The device's side of a secure aggregation round over HTTP (protocol/secagg/http.ts): join, check
 * the round's parameters, and take the four SecAgg+ stages, waiting on the server between them.
 * What leaves the device: two public keys, shares encrypted for its neighbours, its clipped update
 * in fixed point hidden under masks the server cannot remove alone, and at the end the key shares
 * the protocol allows. A device that refuses a step (the server asks for both shares of a device,
 * a share fails its tag, too few devices remain) sends nothing more: to the round it has dropped
 * out, which the round survives.
 */
import type { ErrorReply } from '../protocol/api.js';
import { addSkellamNoise } from '../protocol/privacy/skellam-sampler.js';
import { HearthError, isErrorCode } from '../protocol/errors.js';
import { PATHS, SITE_KEY_HEADER, secureStepPath } from '../protocol/routes.js';
import {
  advertiseKeys,
  decodeForwarded,
  decodeRequest,
  decodeRoster,
  defaultRandomBytes,
  encodeKeys,
  encodeMasked,
  wordBytes,
  encodeShares,
  encodeUnmask,
  maskInput,
  shareKeys,
  unmaskShares,
  type RandomBytes,
} from '../protocol/secagg/index.js';
import {
  encodeInput,
  paramsFromInfo,
  SECAGG_CONTENT_TYPE,
  SECURE_DEVICE_HEADER,
  type SecureJoinReply,
  type SecureResult,
  type SecureRoundInfo,
  type SecureStep,
} from '../protocol/secagg/http.js';

/** One device's part in a secure round. */
export interface SecureRoundRequest {
  /** The server's base URL. */
  readonly endpoint: string;
  readonly siteKey?: string;
  /** The fewest devices a sum may hold (the manifest's m) and the clip bound S the device clips to. */
  readonly expected: { readonly minimum: number; readonly clipNorm: number };
  /**
   * The device's clipped update for the round (its version, layout hash and length are in `info`),
   * or undefined to stay out (its model is of another shape, say): the device then leaves the round
   * before sending anything.
   */
  readonly input: (
    info: SecureRoundInfo,
  ) => Float32Array | undefined | Promise<Float32Array | undefined>;
  readonly random?: RandomBytes;
  /**
   * How long to wait for the round to form (milliseconds; default no limit). A device that gives
   * up leaves before sending anything; if the round forms with it, it counts as dropped at stage 1.
   */
  readonly formWaitMs?: number;
  /** Test seam: a tab closed just after the device sent (or fetched) this step. */
  readonly leaveAfter?: SecureStep;
  /** Called after each step (tests, progress). */
  readonly onStep?: (step: SecureStep) => void;
}

/** What a device's round came to. */
export interface SecureOutcome extends SecureResult {
  readonly round: string;
  /** Bytes the device sent in request bodies. */
  readonly bytesSent: number;
}

/** Thrown inside a round when the test seam makes the device leave. */
class Left extends Error {}

async function failure(response: Response): Promise<HearthError> {
  const json = (await response.json().catch(() => null)) as Partial<ErrorReply> | null;
  const code = json?.error?.code;
  return new HearthError(
    isErrorCode(code) ? code : 'HEARTH_E_UPLOAD',
    `HTTP ${response.status}: ${json?.error?.message ?? 'no error body'}`,
  );
}

/**
 * Takes part in the forming secure round of `request.endpoint`. Resolves with the round's result,
 * or with `left` when the device left it (its input was undefined, or the test seam). Throws a
 * HearthError when the server refuses a step or the round is abandoned.
 */
export async function takePartSecurely(
  request: SecureRoundRequest,
): Promise<SecureOutcome | { readonly left: SecureStep; readonly round: string }> {
  const random = request.random ?? defaultRandomBytes;
  const base = (path: string) => new URL(path, request.endpoint).href;
  const headers = (extra: Record<string, string> = {}) => ({
    ...(request.siteKey ? { [SITE_KEY_HEADER]: request.siteKey } : {}),
    ...extra,
  });
  const joinResponse = await fetch(base(PATHS.secureJoin), {
    method: 'POST',
    headers: headers(),
    credentials: 'omit',
  });
  if (!joinResponse.ok) throw await failure(joinResponse);
  const join = (await joinResponse.json()) as SecureJoinReply;
  let bytesSent = 0;
  const device = { [SECURE_DEVICE_HEADER]: join.secret };
  const done = (step: SecureStep) => {
    request.onStep?.(step);
    if (request.leaveAfter === step) throw new Left(step);
  };
  const send = async (step: SecureStep, body: Uint8Array<ArrayBuffer>) => {
    const response = await fetch(base(secureStepPath(join.round, step)), {
      method: 'POST',
      body,
      headers: headers({ ...device, 'content-type': SECAGG_CONTENT_TYPE }),
      credentials: 'omit',
    });
    if (!response.ok) throw await failure(response);
    bytesSent += body.length;
    done(step);
  };
  /** Polls a fetch step until the server has its answer (204 means: not yet, ask again). */
  const receive = async (step: SecureStep, until = Infinity): Promise<Response> => {
    for (;;) {
      if (Date.now() > until) throw new Left(step);
      const response = await fetch(base(secureStepPath(join.round, step)), {
        method: 'POST',
        headers: headers(device),
        credentials: 'omit',
      });
      if (response.status === 204) continue;
      if (!response.ok) throw await failure(response);
      return response;
    }
  };
  const bytes = async (step: SecureStep) => {
    const body = new Uint8Array(await (await receive(step)).arrayBuffer());
    done(step);
    return body;
  };

  try {
    const formBy = Date.now() + (request.formWaitMs ?? Infinity);
    const info = (await (await receive('params', formBy)).json()) as SecureRoundInfo;
    const params = paramsFromInfo(info, join.device, request.expected);
    done('params');
    const input = await request.input(info);
    if (!input) throw new Left('params');
    const encoded = encodeInput(input, info, random);
    // This device's share of the round's DP noise: the server never sees the update without it.
    addSkellamNoise(encoded, info.noiseVariance);
    const { round, message } = advertiseKeys(params, join.device, random);
    await send('keys', encodeKeys(message) as Uint8Array<ArrayBuffer>);
    const roster = decodeRoster(await bytes('roster'));
    const shares = await shareKeys(round, roster, random);
    await send('shares', encodeShares(shares) as Uint8Array<ArrayBuffer>);
    const forwarded = decodeForwarded(await bytes('forwarded'));
    const masked = maskInput(round, forwarded, encoded);
    // Only the low bits of each masked word, those of the round's ring, go on the wire.
    const width = wordBytes(info.bits);
    await send('masked', encodeMasked(masked, width) as Uint8Array<ArrayBuffer>);
    const unmaskRequest = decodeRequest(await bytes('request'));
    await send(
      'unmask',
      encodeUnmask(unmaskShares(round, unmaskRequest)) as Uint8Array<ArrayBuffer>,
    );
    const result = (await (await receive('result')).json()) as SecureResult;
    done('result');
    return { ...result, round: join.round, bytesSent };
  } catch (error) {
    if (error instanceof Left) return { left: error.message as SecureStep, round: join.round };
    throw error;
  }
}
