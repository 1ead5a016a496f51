/**
 * The wire format of secure aggregation's messages: every message of a real round survives its
 * encoding exactly, and a body of the wrong shape is refused with HEARTH_E_SECAGG_MESSAGE, never
 * read past its end nor taken with bytes left over.
 */
import { describe, expect, it } from 'vitest';
import { HearthError } from '../errors.js';
import { mulberry32 } from '../prng.js';
import { runRoundInProcess } from './in-process.js';
import { MAX_HOLDERS } from './params.js';
import { randomInputs, seededRandomBytes, testParams } from './testing.js';
import {
  MAX_SHARE_BYTES,
  decodeForwarded,
  decodeKeys,
  decodeMasked,
  wordBytes,
  decodeRequest,
  decodeRoster,
  decodeShares,
  decodeUnmask,
  encodeForwarded,
  encodeKeys,
  encodeMasked,
  encodeRequest,
  encodeRoster,
  encodeShares,
  encodeUnmask,
} from './wire.js';

const params = testParams(8, { neighbours: 4, length: 37 });

async function transcriptOfARound() {
  const random = seededRandomBytes(5);
  const inputs = randomInputs(params.devices, params.length, random);
  // One device leaves before masking, so the unmask stage reveals a key share as well.
  const drops = new Map([[params.devices[2]!, 'masked' as const]]);
  return runRoundInProcess({ params, inputs, drops, random });
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (error instanceof HearthError) return error.code;
    throw error;
  }
}

/** Every decoder, as one-argument functions (the masked input's length is the round's). */
const DECODERS: Record<string, (body: Uint8Array) => unknown> = {
  keys: decodeKeys,
  roster: decodeRoster,
  shares: decodeShares,
  forwarded: decodeForwarded,
  masked: (body) => decodeMasked(body, params.length),
  request: decodeRequest,
  unmask: decodeUnmask,
};

describe('the secure aggregation wire format', () => {
  it("carries every message of a round exactly, the server's answers included", async () => {
    const { transcript, server } = await transcriptOfARound();
    const { keys, shares, masked, unmask } = transcript;
    expect(unmask.some((m) => m.keyShares.length > 0)).toBe(true);
    for (const m of keys) expect(decodeKeys(encodeKeys(m))).toEqual(m);
    expect(decodeRoster(encodeRoster(keys))).toEqual(keys);
    for (const m of shares) expect(decodeShares(encodeShares(m))).toEqual(m);
    const toOne = shares.flatMap((m) => m.shares).filter((s) => s.to === params.devices[0]);
    expect(toOne.length).toBeGreaterThan(0);
    expect(decodeForwarded(encodeForwarded(toOne))).toEqual(toOne);
    for (const m of masked) expect(decodeMasked(encodeMasked(m), params.length)).toEqual(m);
    for (const request of server.requests.values()) {
      expect(decodeRequest(encodeRequest(request))).toEqual(request);
    }
    for (const m of unmask) expect(decodeUnmask(encodeUnmask(m))).toEqual(m);
  });

  it("sends a masked input in a narrower ring as its words' low bytes, and nothing more", async () => {
    const { transcript } = await transcriptOfARound();
    const m = transcript.masked[0]!;
    for (const width of [2, 3] as const) {
      const body = encodeMasked(m, width);
      expect(body.length).toBe(
        encodeMasked({ from: 0, masked: new Uint32Array(0) }).length + width * m.masked.length,
      );
      const low = 2 ** (8 * width);
      expect(decodeMasked(body, params.length, width)).toEqual({
        from: m.from,
        masked: m.masked.map((w) => w % low),
      });
      // A body of another width than the round's does not decode.
      expect(codeOf(() => decodeMasked(body, params.length, 4))).toBe('HEARTH_E_SECAGG_MESSAGE');
      expect(codeOf(() => decodeMasked(encodeMasked(m), params.length, width))).toBe(
        'HEARTH_E_SECAGG_MESSAGE',
      );
    }
    expect(codeOf(() => wordBytes(20))).toBe('HEARTH_E_SECAGG_MESSAGE');
    expect(wordBytes(24)).toBe(3);
  });

  it('reads a body that sits inside a larger buffer, and keeps nothing of that buffer', async () => {
    // An HTTP server hands bodies over as views into a shared pool (Node's Buffer), at any offset,
    // and reuses the pool for the next request.
    const { transcript } = await transcriptOfARound();
    const inPool = (body: Uint8Array) => {
      const pool = Buffer.alloc(body.length + 13, 0xee);
      pool.set(body, 5);
      return { pool, view: pool.subarray(5, 5 + body.length) };
    };
    const keys = transcript.keys[0]!;
    const k = inPool(encodeKeys(keys));
    const decodedKeys = decodeKeys(k.view);
    const m = transcript.masked[0]!;
    const b = inPool(encodeMasked(m));
    const decodedMasked = decodeMasked(b.view, params.length);
    k.pool.fill(0);
    b.pool.fill(0);
    expect(decodedKeys).toEqual(keys);
    expect(decodedMasked).toEqual(m);
  });

  it('refuses a body cut short, padded, of another kind, or with a count or length out of bounds', async () => {
    const { transcript, server } = await transcriptOfARound();
    const bodies: Record<string, Uint8Array> = {
      keys: encodeKeys(transcript.keys[0]!),
      roster: encodeRoster(transcript.keys),
      shares: encodeShares(transcript.shares[0]!),
      forwarded: encodeForwarded(transcript.shares[0]!.shares),
      masked: encodeMasked(transcript.masked[0]!),
      request: encodeRequest([...server.requests.values()][0]!),
      unmask: encodeUnmask(transcript.unmask[0]!),
    };
    for (const [kind, body] of Object.entries(bodies)) {
      const decode = DECODERS[kind]!;
      expect(
        codeOf(() => decode(body)),
        kind,
      ).toBeUndefined();
      expect(
        codeOf(() => decode(body.subarray(0, body.length - 1))),
        kind,
      ).toBe('HEARTH_E_SECAGG_MESSAGE');
      const padded = new Uint8Array(body.length + 1);
      padded.set(body);
      expect(
        codeOf(() => decode(padded)),
        kind,
      ).toBe('HEARTH_E_SECAGG_MESSAGE');
      const other = kind === 'keys' ? bodies.unmask! : bodies.keys!;
      expect(
        codeOf(() => decode(other)),
        kind,
      ).toBe('HEARTH_E_SECAGG_MESSAGE');
    }
    // A masked input of another length than the round's.
    expect(codeOf(() => decodeMasked(bodies.masked!, params.length + 1))).toBe(
      'HEARTH_E_SECAGG_MESSAGE',
    );
    // A roster claiming more entries than a neighbourhood can hold.
    const many = bodies.roster!.slice();
    new DataView(many.buffer).setUint16(4, MAX_HOLDERS + 1);
    expect(codeOf(() => decodeRoster(many))).toBe('HEARTH_E_SECAGG_MESSAGE');
    // A sealed share longer than any real one.
    const share = {
      ...transcript.shares[0]!.shares[0]!,
      sealed: new Uint8Array(MAX_SHARE_BYTES + 1),
    };
    expect(codeOf(() => decodeForwarded(encodeForwarded([share])))).toBe('HEARTH_E_SECAGG_MESSAGE');
  });

  it('answers random bytes with a decoded message or HEARTH_E_SECAGG_MESSAGE, nothing else', () => {
    const rng = mulberry32(17);
    const tags = ['HSK1', 'HSR1', 'HSS1', 'HSF1', 'HSM1', 'HSQ1', 'HSU1'];
    for (let i = 0; i < 3000; i++) {
      const length = Math.floor(rng() * 200);
      const body = Uint8Array.from({ length }, () => Math.floor(rng() * 256));
      // Most with a valid tag, so the fields behind it are what gets exercised.
      if (length >= 4 && rng() < 0.8)
        body.set(Array.from(tags[i % tags.length]!, (c) => c.charCodeAt(0)));
      for (const decode of Object.values(DECODERS)) {
        const code = codeOf(() => decode(body));
        if (code !== undefined) expect(code).toBe('HEARTH_E_SECAGG_MESSAGE');
      }
    }
  });
});
