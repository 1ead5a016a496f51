/**
 * Fuzzing the POST routes through inject(): over ten thousand generated requests, each broken in one
 * known way (or several, or at random), against one app with sites configured and a round in
 * progress. None may crash the server (5xx), none may be accepted, every reply must be a catalogue
 * error, and the stored state must not move. Reproduce a failure with HEARTH_FUZZ_SEED=<seed>.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InjectOptions } from 'fastify';
import type { JoinReply } from '../protocol/api.js';
import { ERRORS, isErrorCode, type ErrorCode } from '../protocol/errors.js';
import { encodeFloat16 } from '../protocol/float16.js';
import {
  DTYPE_FLOAT16,
  DTYPE_FLOAT32,
  DTYPE_INT2,
  DTYPE_INT4,
  DTYPE_INT8,
  UPDATE_CONTENT_TYPE,
  UPDATE_HEADER_BYTES,
  UPDATE_MAGIC,
} from '../protocol/update-format.js';
import type { SiteConfig } from './sites.js';
import {
  deviceAddress,
  LAYOUT_HASH,
  makeApp,
  makeDelta,
  PARAMS,
  updateBody,
} from './test-helpers.js';
// mulberry32: small, fast and seedable, so a failing case can be replayed.
import { mulberry32 as prng } from '../protocol/prng.js';

const SEED = Number(process.env.HEARTH_FUZZ_SEED ?? 0x4ea7);
const REQUESTS = 10_400;

const SITE: SiteConfig = {
  id: 'shop',
  key: 'fuzz-site-key-0123456789',
  origins: ['https://shop.example'],
};
const GOOD_HEADERS = { 'x-hearth-key': SITE.key, origin: SITE.origins[0]! };

let t: Awaited<ReturnType<typeof makeApp>>;
/** Tokens of the collecting round, joined and never used: every fuzz body may carry one. */
const fresh: string[] = [];
/** Tokens already spent (round 1, published; round 2, collecting). */
const used: string[] = [];
/** A round-1 token never used: its round is closed. */
let closed = '';
let bodyLimit = 0;

async function join(): Promise<JoinReply> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/rounds/join', headers: GOOD_HEADERS });
  if (res.statusCode !== 200) throw new Error(`join: ${res.statusCode} ${res.body}`);
  return res.json<JoinReply>();
}

async function accept(token: string, baseVersion: number, salt: number): Promise<void> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/v1/updates',
    headers: { ...GOOD_HEADERS, 'content-type': UPDATE_CONTENT_TYPE },
    payload: updateBody({ token, baseVersion, delta: makeDelta(0.4, salt) }),
    remoteAddress: deviceAddress(),
  });
  if (res.statusCode !== 202) throw new Error(`update: ${res.statusCode} ${res.body}`);
}

beforeAll(async () => {
  // s = 0: the stale and closed-round cases below are refused only without a staleness bound (what
  // a bound lets through is the store conformance suite's).
  t = await makeApp({ minCohort: 2, sites: [SITE], rateLimitPerMinute: 0, maxStaleness: 0 });
  bodyLimit = UPDATE_HEADER_BYTES + 4 * PARAMS;
  // Round 1 publishes version 2; round 2 then collects with one update, one short of m.
  const r1 = [await join(), await join(), await join()];
  closed = r1[2]!.token;
  await accept(r1[0]!.token, 1, 1);
  await accept(r1[1]!.token, 1, 2);
  const r2 = await join();
  await accept(r2.token, 2, 3);
  used.push(r1[0]!.token, r1[1]!.token, r2.token);
  for (let i = 0; i < 16; i++) fresh.push((await join()).token);
});
afterAll(async () => {
  await t?.close();
});

/** Everything a request could change. */
async function snapshot(): Promise<unknown> {
  const version = await t.store.latestVersion();
  const weights = await t.store.getWeightBytes(version!);
  return {
    counts: await t.store.counts(),
    version,
    ledger: await t.store.privacyLedger(),
    weights: createHash('sha256').update(weights!).digest('hex'),
  };
}

interface Case {
  readonly kind: string;
  readonly request: InjectOptions;
  /** Codes the case may get; undefined: any catalogue code. */
  readonly allowed?: readonly ErrorCode[];
}

type Rng = () => number;
const int = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));
const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, 0, items.length - 1)]!;
const u32Except = (rng: Rng, not: readonly number[]): number => {
  for (;;) {
    const v = int(rng, 0, 0xffffffff);
    if (!not.includes(v)) return v;
  }
};
const hex = (rng: Rng, bytes: number): string =>
  Array.from({ length: bytes }, () => int(rng, 0, 255).toString(16).padStart(2, '0')).join('');

/** A body that would be accepted as is: a fresh token, version 2, norm below S. */
function validBody(rng: Rng, dtype = pick(rng, [DTYPE_FLOAT32, DTYPE_FLOAT16] as const)): Buffer {
  const direction = Float32Array.from({ length: PARAMS }, () => rng() * 2 - 1);
  const n = Math.hypot(...direction);
  const norm = rng() * 0.99;
  const body = updateBody({
    token: pick(rng, fresh),
    baseVersion: 2,
    dtype,
    examples: int(rng, 0, 0xffffffff),
    delta: Float32Array.from(direction, (v) => (v / n) * norm),
  });
  // The clipNorm field is the device's claim; any positive finite value is valid.
  body.writeFloatLE(pick(rng, [1, 0.5, 3.4e38, 1e-30, rng() * 10 + 1e-6]), 24);
  return body;
}

function dtypeOf(body: Buffer): 1 | 2 {
  return body[5] === DTYPE_FLOAT16 ? 2 : 1;
}

/** Rewrites the payload from float values (keeping dtype and header). */
function withPayload(body: Buffer, values: Float32Array): Buffer {
  const out = Buffer.from(body);
  const half = encodeFloat16(values);
  for (let i = 0; i < values.length; i++) {
    if (dtypeOf(body) === 2) out.writeUInt16LE(half[i]!, UPDATE_HEADER_BYTES + 2 * i);
    else out.writeFloatLE(values[i]!, UPDATE_HEADER_BYTES + 4 * i);
  }
  return out;
}

function update(
  body: Buffer | string,
  options: { contentType?: string | null; headers?: Record<string, string> } = {},
): InjectOptions {
  const type = options.contentType === undefined ? UPDATE_CONTENT_TYPE : options.contentType;
  return {
    method: 'POST',
    url: '/v1/updates',
    headers: {
      ...(options.headers ?? GOOD_HEADERS),
      ...(type === null ? {} : { 'content-type': type }),
    },
    payload: body,
  };
}

/** Header-field defects that each guarantee a rejection, with the code they get. */
const HEADER_DEFECTS: readonly [string, ErrorCode[], (rng: Rng, b: Buffer) => void][] = [
  [
    'magic',
    ['HEARTH_E_UPDATE_MAGIC'],
    (rng, b) => b.writeUInt32LE(u32Except(rng, [UPDATE_MAGIC]), 0),
  ],
  [
    'format',
    ['HEARTH_E_UPDATE_FORMAT_VERSION'],
    (rng, b) => (b[4] = pick(rng, [0, 2, 3, 255, int(rng, 2, 255)])),
  ],
  [
    'dtype',
    ['HEARTH_E_UPDATE_DTYPE'],
    (rng, b) => (b[5] = pick(rng, [0, 6, 255, int(rng, 6, 255)])),
  ],
  [
    'layoutAhead',
    // No version after the current one is published.
    ['HEARTH_E_UPDATE_VERSION_UNKNOWN'],
    (rng, b) => b.writeUInt16LE(int(rng, 1, 0xffff), 6),
  ],
  [
    'clipNorm',
    ['HEARTH_E_UPDATE_HEADER'],
    (rng, b) =>
      b.writeFloatLE(pick(rng, [0, -0, -1, NaN, Infinity, -Infinity, -1e-40, -rng()]), 24),
  ],
  [
    'layout',
    ['HEARTH_E_UPDATE_SHAPE'],
    (rng, b) => b.writeUInt32LE(u32Except(rng, [LAYOUT_HASH]), 12),
  ],
  ['stale', ['HEARTH_E_UPDATE_STALE'], (_rng, b) => b.writeUInt32LE(1, 8)],
  [
    'unknown-version',
    ['HEARTH_E_UPDATE_VERSION_UNKNOWN'],
    (rng, b) => b.writeUInt32LE(pick(rng, [0, 3, 4, 0xffffffff, u32Except(rng, [1, 2])]), 8),
  ],
  ['forged-token', ['HEARTH_E_ROUND_TOKEN'], (rng, b) => b.write(hex(rng, 16), 28, 'hex')],
  ['used-token', ['HEARTH_E_ROUND_TOKEN'], (rng, b) => b.write(pick(rng, used), 28, 'hex')],
  ['closed-round-token', ['HEARTH_E_ROUND_TOKEN'], (_rng, b) => b.write(closed, 28, 'hex')],
];

const WRONG_TYPES = [
  'application/json',
  'text/plain',
  'application/octet-stream',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/vnd.hearth.updates',
  'application/vnd.hearth',
  'vnd.hearth.update',
  'image/png',
  'nonsense',
];

function wrongKey(rng: Rng): Record<string, string> {
  const key = SITE.key;
  const variants: Record<string, string>[] = [
    {},
    { 'x-hearth-key': key.slice(0, -1) + (key.endsWith('x') ? 'y' : 'x') },
    { 'x-hearth-key': key.slice(0, int(rng, 1, key.length - 1)) },
    { 'x-hearth-key': key + hex(rng, int(rng, 1, 4)) },
    { 'x-hearth-key': key.toUpperCase() },
    { 'x-hearth-key': hex(rng, key.length / 2) },
    { 'x-hearth-key': '' },
    { 'X-Hearth-Key': hex(rng, int(rng, 1, 64)) },
  ];
  return { ...pick(rng, variants), ...(rng() < 0.5 ? { origin: SITE.origins[0]! } : {}) };
}

const GENERATORS: readonly ((rng: Rng) => Case)[] = [
  (rng) => {
    // A block-scaled body with a scale or level no encoder writes, or a float body relabelled.
    const dtype = pick(rng, [DTYPE_INT8, DTYPE_INT4, DTYPE_INT2] as const);
    const direction = Float32Array.from({ length: PARAMS }, () => rng() * 2 - 1);
    const n = Math.hypot(...direction);
    const body = updateBody({
      token: pick(rng, fresh),
      baseVersion: 2,
      dtype,
      delta: Float32Array.from(direction, (v) => (v / n) * 0.5),
      random: rng,
    });
    const blocks = Math.ceil(PARAMS / 64);
    const defect = int(rng, 0, 2);
    if (defect === 0) {
      const scale = pick(rng, [-1, -1e-30, NaN, Infinity, -Infinity, -rng()]);
      body.writeFloatLE(scale, UPDATE_HEADER_BYTES + 4 * int(rng, 0, blocks - 1));
    } else if (defect === 1) {
      const levelBytes =
        dtype === DTYPE_INT8 ? PARAMS : dtype === DTYPE_INT4 ? PARAMS / 2 : PARAMS / 4;
      const at = UPDATE_HEADER_BYTES + 4 * blocks + int(rng, 0, Math.ceil(levelBytes) - 1);
      // int8: -128; int4: a nibble of -8 (low or high); int2: a field of -2 (any of four).
      body[at] =
        dtype === DTYPE_INT8
          ? 0x80
          : dtype === DTYPE_INT4
            ? pick(rng, [0x08, 0x80, 0x88])
            : pick(rng, [0b10, 0b1000, 0b100000, 0b10000000, 0b10101010]);
    } else {
      const relabelled = validBody(rng);
      relabelled[5] = dtype;
      return {
        kind: 'dtype-relabelled',
        request: update(relabelled),
        allowed: ['HEARTH_E_UPDATE_TRUNCATED', 'HEARTH_E_UPDATE_TOO_LARGE'],
      };
    }
    return { kind: 'int-payload', request: update(body), allowed: ['HEARTH_E_UPDATE_PAYLOAD'] };
  },
  (rng) => {
    const body = validBody(rng);
    const cut = pick(rng, [
      int(rng, 0, body.length - 1),
      int(rng, 0, UPDATE_HEADER_BYTES - 1),
      UPDATE_HEADER_BYTES,
      body.length - 1,
      body.length - (dtypeOf(body) === 2 ? 2 : 4),
      UPDATE_HEADER_BYTES + 1 + 2 * int(rng, 0, PARAMS - 2),
    ]);
    return {
      kind: 'truncated',
      request: update(body.subarray(0, cut)),
      allowed: ['HEARTH_E_UPDATE_TRUNCATED'],
    };
  },
  (rng) => {
    const [name, allowed, defect] = pick(rng, HEADER_DEFECTS);
    const body = validBody(rng);
    defect(rng, body);
    return { kind: name, request: update(body), allowed };
  },
  (rng) => {
    // A param count other than the model's, with the body either left as is or resized to match.
    const body = validBody(rng);
    const count =
      rng() < 0.5
        ? u32Except(rng, [PARAMS])
        : pick(rng, [0, 1, PARAMS - 1, PARAMS + 1, int(rng, 0, 200)]);
    body.writeUInt32LE(count === PARAMS ? 0 : count, 16);
    let out = body;
    if (rng() < 0.5 && count < 1000) {
      const per = dtypeOf(body) === 2 ? 2 : 4;
      out = Buffer.alloc(UPDATE_HEADER_BYTES + count * per);
      body.copy(out, 0, 0, Math.min(body.length, out.length));
    }
    return {
      kind: 'param-count',
      request: update(out),
      allowed: ['HEARTH_E_UPDATE_SHAPE', 'HEARTH_E_UPDATE_TOO_LARGE', 'HEARTH_E_UPDATE_TRUNCATED'],
    };
  },
  (rng) => {
    const body = validBody(rng);
    const hits = int(rng, 1, 4);
    for (let k = 0; k < hits; k++) {
      const i = int(rng, 0, PARAMS - 1);
      if (dtypeOf(body) === 2) {
        // Exponent all ones: Infinity with a zero mantissa, NaN otherwise; either sign.
        body.writeUInt16LE(
          (int(rng, 0, 1) << 15) | 0x7c00 | pick(rng, [0, int(rng, 1, 0x3ff)]),
          UPDATE_HEADER_BYTES + 2 * i,
        );
      } else {
        body.writeUInt32LE(
          ((int(rng, 0, 1) << 31) | 0x7f800000 | pick(rng, [0, int(rng, 1, 0x7fffff)])) >>> 0,
          UPDATE_HEADER_BYTES + 4 * i,
        );
      }
    }
    return {
      kind: `nonfinite-f${dtypeOf(body) === 2 ? 16 : 32}`,
      request: update(body),
      allowed: ['HEARTH_E_UPDATE_NONFINITE'],
    };
  },
  (rng) => {
    const body = validBody(rng);
    const norm = Math.exp(Math.log(1.01) + rng() * Math.log(1e30));
    const delta = makeDelta(norm, int(rng, 0, 1000));
    return {
      kind: 'huge-norm',
      request: update(withPayload(body, delta)),
      // Past float16's range (or float32's) the values themselves become Infinity.
      allowed: ['HEARTH_E_UPDATE_NORM', 'HEARTH_E_UPDATE_NONFINITE'],
    };
  },
  (rng) => {
    const body = validBody(rng);
    const extra = rng() < 0.02 ? int(rng, 1 << 20, 3 << 20) : int(rng, 1, 2 * bodyLimit);
    return {
      kind: 'oversized',
      request: update(Buffer.concat([body, Buffer.alloc(extra, int(rng, 0, 255))])),
      allowed: ['HEARTH_E_UPDATE_TOO_LARGE'],
    };
  },
  (rng) => {
    const missing = rng() < 0.15;
    const type = missing ? null : pick(rng, WRONG_TYPES);
    const payload = rng() < 0.2 ? JSON.stringify({ delta: [1, 2, 3] }) : validBody(rng);
    return {
      kind: 'content-type',
      request: update(payload, { contentType: type }),
      allowed: ['HEARTH_E_CONTENT_TYPE', 'HEARTH_E_BAD_REQUEST'],
    };
  },
  (rng) => ({
    kind: 'api-key',
    request: update(validBody(rng), { headers: wrongKey(rng) }),
    allowed: ['HEARTH_E_API_KEY'],
  }),
  (rng) => {
    const origin = pick(rng, [
      'https://evil.example',
      'http://shop.example',
      'https://shop.example:444',
      'null',
      'https://shop.example.evil',
      `https://${hex(rng, 4)}.example`,
    ]);
    const onJoin = rng() < 0.3;
    const headers = { 'x-hearth-key': SITE.key, origin };
    return {
      kind: 'origin',
      request: onJoin
        ? { method: 'POST', url: '/v1/rounds/join', headers }
        : update(validBody(rng), { headers }),
      allowed: ['HEARTH_E_ORIGIN'],
    };
  },
  (rng) => ({
    kind: 'join-without-key',
    request: {
      method: 'POST',
      url: '/v1/rounds/join',
      headers: { ...wrongKey(rng), 'content-type': pick(rng, ['application/json', 'text/plain']) },
      payload: pick(rng, ['', '{}', '{nope', hex(rng, int(rng, 1, 64))]),
    },
    allowed: ['HEARTH_E_API_KEY'],
  }),
  (rng) => {
    // Several header defects at once: whichever check runs first decides, so any code will do.
    const body = validBody(rng);
    for (let k = 0; k < int(rng, 2, 4); k++) pick(rng, HEADER_DEFECTS)[2](rng, body);
    body.write(hex(rng, 16), 28, 'hex');
    return { kind: 'stacked', request: update(body) };
  },
  (rng) => {
    // Random bytes, sometimes behind a valid magic and format (with a forged token either way).
    const body = Buffer.from(hex(rng, int(rng, 0, bodyLimit)), 'hex');
    if (rng() < 0.5 && body.length >= 8) {
      body.writeUInt32LE(UPDATE_MAGIC, 0);
      body[4] = 1;
      body[5] = pick(rng, [1, 2]);
    }
    return { kind: 'random-bytes', request: update(body) };
  },
];

describe('fuzzing POST /v1/updates and /v1/rounds/join', () => {
  it(`rejects ${REQUESTS} broken requests cleanly and changes nothing (seed ${SEED})`, async () => {
    const before = await snapshot();
    const rng = prng(SEED);
    const failures: string[] = [];
    const kinds = new Map<string, number>();
    const started = performance.now();
    for (let i = 0; i < REQUESTS; i++) {
      const c = GENERATORS[i % GENERATORS.length]!(rng);
      kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
      const res = await t.app.inject(c.request);
      let problem: string | undefined;
      let code: unknown;
      try {
        const body = res.json<{ error?: { code?: unknown; message?: unknown } }>();
        code = body.error?.code;
        if (Object.keys(body).join() !== 'error' || typeof body.error?.message !== 'string') {
          problem = `reply is not { error: { code, message } }: ${res.body.slice(0, 200)}`;
        }
      } catch {
        problem = `reply is not JSON: ${res.body.slice(0, 200)}`;
      }
      if (!(res.statusCode >= 400 && res.statusCode < 500)) problem = `status ${res.statusCode}`;
      else if (!isErrorCode(code)) problem ??= `code ${String(code)} is not in the catalogue`;
      else if (ERRORS[code].status !== res.statusCode) problem ??= `${code} with ${res.statusCode}`;
      else if (c.allowed && !c.allowed.includes(code))
        problem ??= `got ${code}, expected ${c.allowed.join('|')}`;
      if (problem && failures.length < 20) failures.push(`#${i} ${c.kind}: ${problem}`);
    }
    const seconds = (performance.now() - started) / 1000;
    // eslint-disable-next-line no-console -- the seed, body count and run time are the fuzz report.
    console.info(
      `fuzz: ${REQUESTS} requests in ${seconds.toFixed(1)} s (seed ${SEED}): ` +
        [...kinds].map(([k, n]) => `${k} ${n}`).join(', '),
    );
    expect(failures, `seed ${SEED}`).toEqual([]);
    expect(kinds.size).toBeGreaterThanOrEqual(20);
    expect(await snapshot()).toEqual(before);

    // The server still works, and none of the fresh tokens the fuzz bodies carried was spent.
    for (const token of fresh.slice(0, 1)) {
      const ok = await t.app.inject(update(updateBody({ token, baseVersion: 2 })));
      expect(ok.statusCode).toBe(202);
    }
    expect((await t.store.counts()).usedTokens).toBe(used.length + 1);
  });
});
