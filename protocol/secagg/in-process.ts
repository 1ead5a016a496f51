/**
 * A whole secure aggregation round with every device and the server in one process, messages
 * passed by hand: what the unit tests drive, and what a benchmark or a simulation can time. Devices
 * drop out at chosen points; a device that refuses a step (too few neighbours left, a share that
 * fails its tag) drops out there too, as it would in a browser, and its error is reported.
 */
import { HearthError } from '../errors.js';
import { defaultRandomBytes, type RandomBytes } from './crypto.js';
import { advertiseKeys, maskInput, shareKeys, unmaskShares, type DeviceRound } from './device.js';
import type { KeysMessage, MaskedInputMessage, SharesMessage, UnmaskResponse } from './messages.js';
import type { DeviceId, SecAggParams } from './params.js';
import { acceptUnmask, finishRound, type RoundResult } from './server-unmask.js';
import * as server from './server.js';
import { decodeMasked, encodeMasked, type WordBytes } from './wire.js';

/** Where a device drops out: it sends nothing from that stage's message on. */
export type DropPoint = 'keys' | 'shares' | 'masked' | 'unmask';

const STAGES: readonly DropPoint[] = ['keys', 'shares', 'masked', 'unmask'];

/** One in-process round: the parameters, each sampled device's encoded input, who drops where. */
export interface InProcessRound {
  readonly params: SecAggParams;
  readonly inputs: ReadonlyMap<DeviceId, Uint32Array>;
  readonly drops?: ReadonlyMap<DeviceId, DropPoint>;
  readonly random?: RandomBytes;
  /**
   * Bytes of a masked word on the wire (the round's ring): each masked input reaches the server
   * through encodeMasked and decodeMasked at this width, its words' low bits only, as a device's
   * does over HTTP. Default 4, the whole word.
   */
  readonly wordBytes?: WordBytes;
  /**
   * Called as every step starts (a benchmark's clock): the stage and who runs it ('server' for the
   * server's accepting and closing of the stage); the function it returns is called as it ends.
   */
  readonly onStep?: (stage: DropPoint, who: DeviceId | 'server') => () => void;
}

/** Everything the server received, in order of stage: what a curious server would keep. */
export interface Transcript {
  readonly keys: KeysMessage[];
  readonly shares: SharesMessage[];
  readonly masked: MaskedInputMessage[];
  readonly unmask: UnmaskResponse[];
}

/** The round's result, each device's final state, the server's state and what it received. */
export interface InProcessResult {
  readonly result: RoundResult;
  readonly devices: ReadonlyMap<DeviceId, DeviceRound>;
  readonly server: server.ServerRound;
  readonly transcript: Transcript;
  /** Devices that refused a step, with the error they raised. */
  readonly refused: ReadonlyMap<DeviceId, HearthError>;
}

/** Runs the round; throws what the server throws (HEARTH_E_SECAGG_THRESHOLD when abandoned). */
export async function runRoundInProcess(round: InProcessRound): Promise<InProcessResult> {
  const { params, inputs, drops = new Map(), random = defaultRandomBytes, onStep } = round;
  const width = round.wordBytes ?? 4;
  /** `step`'s result, its start and end told to onStep. */
  const timed = async <T>(
    stage: DropPoint,
    who: DeviceId | 'server',
    step: () => T | Promise<T>,
  ) => {
    const done = onStep?.(stage, who);
    try {
      return await step();
    } finally {
      done?.();
    }
  };
  const state = server.startRound(params);
  const devices = new Map<DeviceId, DeviceRound>();
  const refused = new Map<DeviceId, HearthError>();
  const transcript: Transcript = { keys: [], shares: [], masked: [], unmask: [] };
  /** Devices still talking at `point`: not dropped by then, and no step refused so far. */
  const live = (point: DropPoint) =>
    [...devices.keys()].filter((id) => {
      const drop = drops.get(id);
      return !refused.has(id) && (!drop || STAGES.indexOf(drop) > STAGES.indexOf(point));
    });
  const attempt = async <T>(
    stage: DropPoint,
    id: DeviceId,
    step: () => T | Promise<T>,
  ): Promise<T | undefined> => {
    try {
      return await timed(stage, id, step);
    } catch (error) {
      if (!(error instanceof HearthError)) throw error;
      refused.set(id, error);
      return undefined;
    }
  };

  for (const id of params.devices) {
    if (drops.get(id) === 'keys') continue;
    const { round: device, message } = await timed('keys', id, () =>
      advertiseKeys(params, id, random),
    );
    devices.set(id, device);
    transcript.keys.push(message);
    await timed('keys', 'server', () => server.acceptKeys(state, message));
  }
  const rosters = await timed('keys', 'server', () => server.closeKeys(state));

  for (const id of live('shares').filter((id) => rosters.has(id))) {
    const message = await attempt('shares', id, () =>
      shareKeys(devices.get(id)!, rosters.get(id)!, random),
    );
    if (!message) continue;
    transcript.shares.push(message);
    await timed('shares', 'server', () => server.acceptShares(state, message));
  }
  const forwarded = await timed('shares', 'server', () => server.closeShares(state));

  for (const id of live('masked').filter((id) => forwarded.has(id))) {
    const input = inputs.get(id) ?? new Uint32Array(params.length);
    const message = await attempt('masked', id, () => {
      const masked = maskInput(devices.get(id)!, forwarded.get(id)!, input);
      return width === 4 ? masked : decodeMasked(encodeMasked(masked, width), params.length, width);
    });
    if (!message) continue;
    transcript.masked.push(message);
    await timed('masked', 'server', () => server.acceptMaskedInput(state, message));
  }
  const requests = await timed('masked', 'server', () => server.closeMaskedInputs(state));

  for (const id of live('unmask').filter((id) => requests.has(id))) {
    const response = await attempt('unmask', id, () =>
      unmaskShares(devices.get(id)!, requests.get(id)!),
    );
    if (!response) continue;
    transcript.unmask.push(response);
    await timed('unmask', 'server', () => acceptUnmask(state, response));
  }
  const result = await timed('unmask', 'server', () => finishRound(state));
  return { result, devices, server: state, transcript, refused };
}
