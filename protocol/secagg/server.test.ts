import { describe, expect, it } from 'vitest';
import type { HearthError } from '../errors.js';
import { thrownCode } from '../testing.js';
import { advertiseKeys, maskInput, shareKeys, unmaskShares, type DeviceRound } from './device.js';
import { ringOrder } from './graph.js';
import type { KeysMessage, UnmaskResponse } from './messages.js';
import type { DeviceId, SecAggParams } from './params.js';
import { acceptUnmask, finishRound } from './server-unmask.js';
import * as server from './server.js';
import { seededRandomBytes, testParams } from './testing.js';

const random = seededRandomBytes(21);
const MESSAGE = 'HEARTH_E_SECAGG_MESSAGE';

function advertised(params: SecAggParams) {
  const round = server.startRound(params);
  const devices = new Map<DeviceId, DeviceRound>();
  const keys = new Map<DeviceId, KeysMessage>();
  for (const id of params.devices) {
    const { round: device, message } = advertiseKeys(params, id, random);
    devices.set(id, device);
    keys.set(id, message);
  }
  return { round, devices, keys };
}

/** Runs every device through stage 3 (`silent` send no masked input); returns the requests. */
async function throughMasking(params: SecAggParams, silent: DeviceId[] = []) {
  const { round, devices, keys } = advertised(params);
  for (const message of keys.values()) server.acceptKeys(round, message);
  const rosters = server.closeKeys(round);
  for (const [id, device] of devices) {
    server.acceptShares(round, await shareKeys(device, rosters.get(id)!, random));
  }
  const forwarded = server.closeShares(round);
  for (const [id, device] of devices) {
    const message = maskInput(device, forwarded.get(id)!, new Uint32Array(params.length).fill(id));
    if (!silent.includes(id)) server.acceptMaskedInput(round, message);
  }
  return { round, devices, requests: server.closeMaskedInputs(round) };
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (error: HearthError) => error.code,
  );
}

describe('server stages 1-3', () => {
  const params = testParams(10, { neighbours: 4, threshold: 4 });

  it('refuses unknown, repeated or malformed public keys, and keys after the stage closed', () => {
    const { round, keys } = advertised(params);
    const first = keys.get(1)!;
    server.acceptKeys(round, first);
    expect(thrownCode(() => server.acceptKeys(round, first))).toBe(MESSAGE);
    expect(thrownCode(() => server.acceptKeys(round, { ...first, from: 77 }))).toBe(MESSAGE);
    const short = { ...keys.get(2)!, sPublic: new Uint8Array(31) };
    expect(thrownCode(() => server.acceptKeys(round, short))).toBe(MESSAGE);
    for (const id of params.devices.slice(1)) server.acceptKeys(round, keys.get(id)!);
    server.closeKeys(round);
    expect(thrownCode(() => server.acceptKeys(round, keys.get(3)!))).toBe('HEARTH_E_SECAGG_STAGE');
  });

  it("drops a device whose neighbourhood cannot hold t' shares, and only that device", () => {
    // k = 4, t' = 3: the device at ring position 0 keeps one of its four neighbours.
    const ring = ringOrder(params.devices, params.graphSeed);
    const missing = new Set([ring[8], ring[9], ring[1]]);
    const { round, keys } = advertised(params);
    for (const [id, message] of keys) if (!missing.has(id)) server.acceptKeys(round, message);
    const rosters = server.closeKeys(round);
    expect(rosters.has(ring[0]!)).toBe(false);
    expect(round.keys.size).toBe(6);
    for (const roster of rosters.values()) {
      expect(roster.map((k) => k.from)).not.toContain(ring[0]);
    }
  });

  it('refuses shares for non-neighbours, forged senders, wrong sizes and repeats', async () => {
    const { round, devices, keys } = advertised(params);
    for (const message of keys.values()) server.acceptKeys(round, message);
    const rosters = server.closeKeys(round);
    const message = await shareKeys(devices.get(1)!, rosters.get(1)!, random);
    const [share] = message.shares;
    const stranger = params.devices.find(
      (id) => id !== 1 && !devices.get(1)!.neighbours.includes(id),
    )!;
    const variants = [
      { ...message, shares: [{ ...share!, to: stranger }] },
      { ...message, shares: [{ ...share!, from: 2 }] },
      { ...message, shares: [{ ...share!, sealed: share!.sealed.subarray(1) }] },
      { ...message, shares: [share!, share!] },
      { ...message, commitment: new Uint8Array(8) },
    ];
    for (const variant of variants) {
      expect(thrownCode(() => server.acceptShares(round, variant))).toBe(MESSAGE);
    }
    server.acceptShares(round, message);
    expect(thrownCode(() => server.acceptShares(round, message))).toBe(MESSAGE);
  });

  it('adds masked inputs only from devices that shared keys, once, of length L', async () => {
    const { round } = await throughMasking(params, [5]);
    expect(round.maskedFrom.has(5)).toBe(false);
    expect(round.stage).toBe('unmask');
    const again = server.startRound(params);
    again.stage = 'masked';
    again.commitments.set(1, new Uint8Array(32));
    const ok = { from: 1, masked: new Uint32Array(params.length) };
    expect(thrownCode(() => server.acceptMaskedInput(again, { ...ok, from: 2 }))).toBe(MESSAGE);
    const short = { from: 1, masked: new Uint32Array(3) };
    expect(thrownCode(() => server.acceptMaskedInput(again, short))).toBe(MESSAGE);
    server.acceptMaskedInput(again, ok);
    expect(thrownCode(() => server.acceptMaskedInput(again, ok))).toBe(MESSAGE);
  });
});

describe('server stage 4', () => {
  const params = testParams(8, { threshold: 4 });

  it('refuses a response carrying both shares of one device, or shares it did not ask for', async () => {
    const { round, devices, requests } = await throughMasking(params, [8]);
    const response = unmaskShares(devices.get(1)!, requests.get(1)!);
    const seedOf8 = { owner: 8, share: devices.get(1)!.held.get(8)!.seed };
    const both: UnmaskResponse = { ...response, seedShares: [...response.seedShares, seedOf8] };
    expect(thrownCode(() => acceptUnmask(round, both))).toBe(MESSAGE);
    const keyOf2 = { owner: 2, share: devices.get(1)!.held.get(2)!.key };
    const unasked: UnmaskResponse = {
      from: 1,
      seedShares: response.seedShares.filter((entry) => entry.owner !== 2),
      keyShares: [...response.keyShares, keyOf2],
    };
    expect(thrownCode(() => acceptUnmask(round, unasked))).toBe(MESSAGE);
    expect(thrownCode(() => acceptUnmask(round, { ...response, from: 8 }))).toBe(MESSAGE);
    acceptUnmask(round, response);
    expect(thrownCode(() => acceptUnmask(round, response))).toBe(MESSAGE);
  });

  it('abandons rather than publish a wrong sum when a seed share is corrupted', async () => {
    const { round, devices, requests } = await throughMasking(params);
    for (const [id, request] of requests) {
      const response = unmaskShares(devices.get(id)!, request);
      if (id === 2) response.seedShares[0]!.share[0]! ^= 1;
      acceptUnmask(round, response);
    }
    expect(await codeOf(finishRound(round))).toBe('HEARTH_E_SECAGG_RECONSTRUCT');
    expect(round.stage).toBe('abandoned');
    expect(round.sum.every((word) => word === 0)).toBe(true);
  });

  it('abandons when a rebuilt mask key does not match the public key it advertised', async () => {
    const { round, devices, requests } = await throughMasking(params, [3]);
    for (const [id, request] of requests) {
      const response = unmaskShares(devices.get(id)!, request);
      if (id === 4) response.keyShares[0]!.share[5]! ^= 1;
      acceptUnmask(round, response);
    }
    expect(await codeOf(finishRound(round))).toBe('HEARTH_E_SECAGG_RECONSTRUCT');
  });

  it('outputs the sum of the survivors only, once every mask is off', async () => {
    const { round, devices, requests } = await throughMasking(params, [3, 6]);
    for (const [id, request] of requests)
      acceptUnmask(round, unmaskShares(devices.get(id)!, request));
    const { sum, survivors } = await finishRound(round);
    expect(survivors).toEqual([1, 2, 4, 5, 7, 8]);
    expect([...sum]).toEqual(new Array(params.length).fill(1 + 2 + 4 + 5 + 7 + 8));
    expect(await codeOf(finishRound(round))).toBe('HEARTH_E_SECAGG_STAGE');
  });
});
