import { describe, expect, it } from 'vitest';
import type { HearthError } from '../errors.js';
import { thrownCode } from '../testing.js';
import { advertiseKeys, maskInput, shareKeys, unmaskShares, type DeviceRound } from './device.js';
import type { EncryptedShare } from './messages.js';
import type { SecAggParams } from './params.js';
import * as server from './server.js';
import { seededRandomBytes, testParams } from './testing.js';

/** Runs stages 1 and 2 for devices 1..n through the server; returns states and forwarded shares. */
async function throughShares(params: SecAggParams) {
  const random = seededRandomBytes(11);
  const round = server.startRound(params);
  const devices = new Map<number, DeviceRound>();
  for (const id of params.devices) {
    const { round: device, message } = advertiseKeys(params, id, random);
    devices.set(id, device);
    server.acceptKeys(round, message);
  }
  const rosters = server.closeKeys(round);
  for (const [id, device] of devices) {
    server.acceptShares(round, await shareKeys(device, rosters.get(id)!, random));
  }
  return { devices, rosters, forwarded: server.closeShares(round) };
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (error: HearthError) => error.code,
  );
}

const input = (params: SecAggParams) => new Uint32Array(params.length).fill(5);

describe('device state machine', () => {
  const params = testParams(3, { threshold: 2 });

  it('masks its input once: the result looks nothing like it, and a second masking is refused', async () => {
    const { devices, forwarded } = await throughShares(params);
    const device = devices.get(1)!;
    const { masked } = maskInput(device, forwarded.get(1)!, input(params));
    expect(masked.filter((word) => word === 5).length).toBeLessThan(2);
    expect(device.stage).toBe('masked');
    expect(device.secrets).toBeUndefined();
    expect(device.pairwise).toEqual([2, 3]);
    expect(thrownCode(() => maskInput(device, forwarded.get(1)!, input(params)))).toBe(
      'HEARTH_E_SECAGG_STAGE',
    );
  });

  it('refuses a tampered share (HEARTH_E_SECAGG_SHARE) and is unchanged by the refusal', async () => {
    const { devices, forwarded } = await throughShares(params);
    const device = devices.get(2)!;
    const genuine = forwarded.get(2)!;
    const sealed = genuine[0]!.sealed.slice();
    sealed[40] = sealed[40]! ^ 0x80;
    const tampered: EncryptedShare[] = [{ ...genuine[0]!, sealed }, genuine[1]!];
    expect(thrownCode(() => maskInput(device, tampered, input(params)))).toBe(
      'HEARTH_E_SECAGG_SHARE',
    );
    expect(device.stage).toBe('shared');
    expect(maskInput(device, genuine, input(params)).from).toBe(2);
  });

  it('refuses a share meant for another device, however it is relabelled', async () => {
    const { devices, forwarded } = await throughShares(params);
    const forTwo = forwarded.get(2)!.find((share) => share.from === 1)!;
    const device = devices.get(3)!;
    const others = forwarded.get(3)!.filter((share) => share.from !== 1);
    const asIs = [forTwo, ...others];
    const relabelled = [{ ...forTwo, to: 3 }, ...others];
    expect(thrownCode(() => maskInput(device, asIs, input(params)))).toBe(
      'HEARTH_E_SECAGG_MESSAGE',
    );
    expect(thrownCode(() => maskInput(device, relabelled, input(params)))).toBe(
      'HEARTH_E_SECAGG_SHARE',
    );
  });

  it('refuses an input of the wrong length and a device that was not sampled', async () => {
    const { devices, forwarded } = await throughShares(params);
    const short = new Uint32Array(params.length - 1);
    expect(thrownCode(() => maskInput(devices.get(1)!, forwarded.get(1)!, short))).toBe(
      'HEARTH_E_SECAGG_PARAMS',
    );
    expect(thrownCode(() => advertiseKeys(params, 99))).toBe('HEARTH_E_SECAGG_PARAMS');
  });

  it('refuses a roster naming a non-neighbour or repeating a key', async () => {
    const wide = testParams(6, { neighbours: 2, threshold: 3 });
    const keys = wide.devices.map((id) => advertiseKeys(wide, id));
    const [first] = keys;
    const strangers = keys.filter(
      (k) => k !== first && !first!.round.neighbours.includes(k.message.from),
    );
    const roster = [strangers[0]!.message];
    expect(await codeOf(shareKeys(first!.round, roster))).toBe('HEARTH_E_SECAGG_MESSAGE');
    const near = keys.filter((k) => first!.round.neighbours.includes(k.message.from));
    const copied = { ...near[1]!.message, cPublic: near[0]!.message.cPublic };
    expect(await codeOf(shareKeys(first!.round, [near[0]!.message, copied]))).toBe(
      'HEARTH_E_SECAGG_MESSAGE',
    );
    expect(first!.round.stage).toBe('advertised');
  });

  it("will not share among fewer holders than t' (HEARTH_E_SECAGG_THRESHOLD)", async () => {
    const wide = testParams(5, { neighbours: 4, shareThreshold: 3, threshold: 2 });
    const { round } = advertiseKeys(wide, 1);
    const { message } = advertiseKeys(wide, 2);
    expect(await codeOf(shareKeys(round, [message]))).toBe('HEARTH_E_SECAGG_THRESHOLD');
  });
});

describe('device unmasking', () => {
  const params = testParams(4, { threshold: 3 });

  async function masked() {
    const { devices, forwarded } = await throughShares(params);
    const device = devices.get(1)!;
    maskInput(device, forwarded.get(1)!, input(params));
    return device;
  }

  it('reveals the seed share of each survivor and the key share of each dropped device', async () => {
    const device = await masked();
    const response = unmaskShares(device, { survivors: [1, 2, 3], dropped: [4], survivorCount: 3 });
    expect(response.seedShares.map((s) => s.owner)).toEqual([1, 2, 3]);
    expect(response.keyShares.map((s) => s.owner)).toEqual([4]);
    expect(response.seedShares[1]!.share).toEqual(device.held.get(2)!.seed);
    expect(response.keyShares[0]!.share).toEqual(device.held.get(4)!.key);
  });

  it('refuses a request asking for both shares of one device', async () => {
    const device = await masked();
    const both = { survivors: [1, 2, 3], dropped: [3], survivorCount: 3 };
    expect(thrownCode(() => unmaskShares(device, both))).toBe('HEARTH_E_SECAGG_UNMASK_REQUEST');
    expect(device.stage).toBe('masked');
  });

  it('answers one request only: a second could ask for the other share', async () => {
    const device = await masked();
    unmaskShares(device, { survivors: [1, 2, 3, 4], dropped: [], survivorCount: 4 });
    const other = { survivors: [1, 2, 3], dropped: [4], survivorCount: 3 };
    expect(thrownCode(() => unmaskShares(device, other))).toBe('HEARTH_E_SECAGG_STAGE');
  });

  it('refuses requests that do not name it a survivor or name devices it holds nothing of', async () => {
    const device = await masked();
    const code = 'HEARTH_E_SECAGG_UNMASK_REQUEST';
    const notMe = { survivors: [2, 3, 4], dropped: [1], survivorCount: 3 };
    expect(thrownCode(() => unmaskShares(device, notMe))).toBe(code);
    const unknown = { survivors: [1, 2, 3], dropped: [9], survivorCount: 3 };
    expect(thrownCode(() => unmaskShares(device, unknown))).toBe(code);
    const undercount = { survivors: [1, 2, 3], dropped: [], survivorCount: 2 };
    expect(thrownCode(() => unmaskShares(device, undercount))).toBe(code);
  });

  it('reveals nothing when fewer than t devices survived, and stops there', async () => {
    const device = await masked();
    const few = { survivors: [1, 2], dropped: [3, 4], survivorCount: 2 };
    expect(thrownCode(() => unmaskShares(device, few))).toBe('HEARTH_E_SECAGG_THRESHOLD');
    expect(device.stage).toBe('done');
  });
});
