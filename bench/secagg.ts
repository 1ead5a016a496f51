/**
 * `npm run bench:secagg`: what one secure aggregation round (protocol/secagg/, SecAgg+) costs a
 * device and the server, by cohort size and dropout.
 *
 *   npm run bench:secagg -- [--devices 10,100,1000] [--dropout 0,0.1,0.3] [--length 16384] [--runs 3]
 *     [--assumed-dropout 0.2] [--ring auto,24,32]
 *
 * Each round runs every device and the server in this process (runRoundInProcess, the messages
 * the real parts exchange), with real X25519, HKDF, XChaCha20-Poly1305, ChaCha20 masks and Shamir
 * shares. Inputs are clipped float updates (L2 norm S = 1, `--length` coordinates) in fixed point
 * (protocol/secagg/fixed-point.ts, conditional stochastic rounding as a device rounds, a range that
 * n of them never wrap), in the ring `--ring` names: `auto` the server's choice for the round
 * (server/secure-rounds.ts secureEncoding, without noise: a 16-bit ring with the vectors rotated,
 * protocol/secagg/rotation.ts, where it fits), or 24 or 32 bits unrotated; each masked input
 * reaches the server through the wire format at that width, and is counted at its wire length. The
 * dropped devices (a share `--dropout` of the cohort, chosen at random) leave after sending their
 * masked input's predecessor, the share stage: the costliest case for the server, which must then
 * rebuild their mask keys and remove their pairwise masks. Neighbours k and t' as the server chooses
 * them (server/secure-rounds.ts neighboursFor, for `--assumed-dropout`, the server's
 * --secure-dropout); t half the cohort.
 *
 * A round in which some device kept fewer than t' of its holders is abandoned by the protocol (it
 * reveals nothing) and counted as such. Prints, per (n, dropout), medians over the completed runs
 * of: each device's compute time (its median and 90th percentile over the devices of the round),
 * the server's, the bytes a device sends and receives, and the decoded sum's relative error against the float sum of the survivors' updates
 * (the quantisation error). Masks cost each device time linear in k * length.
 */
import { parseArgs } from 'node:util';
import { HearthError } from '../protocol/errors.js';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  decodeFixedPointSum,
  encodeMasked,
  runRoundInProcess,
  wordBytes,
  type WordBytes,
  type DeviceId,
  type DropPoint,
  type InProcessResult,
  type SecAggParams,
} from '../protocol/secagg/index.js';
import { mulberry32, normal } from '../protocol/prng.js';
import { DEFAULT_CONFIG } from '../server/config.js';
import { coordinateBound, encodeInput, roundInfo, sumInUpdate } from '../protocol/secagg/http.js';
import { neighboursFor, secureEncoding, shareThresholdFor } from '../server/secure-rounds.js';
import { positiveInteger } from '../tools/lib/args.js';
import { quantile } from '../tools/lib/stats.js';
import { markdownRow, markdownTable } from '../tools/lib/table.js';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '10,100,1000' },
    dropout: { type: 'string', default: '0,0.1,0.3' },
    length: { type: 'string', default: '16384' },
    runs: { type: 'string', default: '3' },
    'assumed-dropout': { type: 'string', default: String(DEFAULT_CONFIG.secureDropout) },
    ring: { type: 'string', default: 'auto' },
  },
});
const rings = args.ring.split(',').map((ring) => {
  if (ring === 'auto') return ring;
  if (ring === '24' || ring === '32') return Number(ring);
  throw new Error('--ring must be auto, 24 or 32, or a list of them');
});
const cohorts = list('devices', args.devices).map((n) => {
  if (!Number.isInteger(n) || n < 2) throw new Error('--devices must be integers >= 2');
  return n;
});
const dropouts = list('dropout', args.dropout).map((p) => {
  if (!(p >= 0 && p < 0.5)) throw new Error('--dropout must be fractions in [0, 0.5)');
  return p;
});
const length = positiveInteger('length', args.length);
const runs = positiveInteger('runs', args.runs);
const assumed = Number(args['assumed-dropout']);
if (!(assumed >= 0 && assumed <= 0.45)) throw new Error('--assumed-dropout must be in [0, 0.45]');

function list(flag: string, text: string): number[] {
  const values = text.split(',').map(Number);
  if (values.some((v) => !Number.isFinite(v))) throw new Error(`--${flag} must be numbers`);
  return values;
}

/**
 * The round's public parameters for n devices (see the header for k, t' and t), summing vectors of
 * `summed` coordinates (the update's, or padded to whole rotation blocks).
 */
function paramsFor(n: number, run: number, summed = length): SecAggParams {
  const k = neighboursFor(n, assumed);
  return {
    roundId: `bench-${n}-${run}`,
    devices: Array.from({ length: n }, (_, i) => i + 1),
    threshold: Math.ceil(n / 2),
    neighbours: k,
    shareThreshold: shareThresholdFor(Math.min(k, n - 1)),
    length: summed,
    graphSeed: sha256(new TextEncoder().encode(`graph ${n} ${run}`)),
  };
}

/** A float update of L2 norm 1 (a clipped update at S = 1), from `seed`. */
function update(seed: number): Float64Array {
  const rng = mulberry32(seed);
  const x = Float64Array.from({ length }, () => normal(rng));
  let squares = 0;
  for (const v of x) squares += v * v;
  const norm = Math.sqrt(squares);
  return x.map((v) => v / norm);
}

interface RunFigures {
  readonly deviceMedian: number;
  readonly deviceP90: number;
  readonly server: number;
  readonly sent: number;
  readonly received: number;
  readonly relativeError: number;
  readonly survivors: number;
}

/** Bytes of every Uint8Array / Uint32Array in a message, and 4 per number (ids). */
function bytesOf(value: unknown): number {
  if (value instanceof Uint8Array || value instanceof Uint32Array) return value.byteLength;
  if (typeof value === 'number') return 4;
  if (Array.isArray(value)) return value.reduce((sum: number, v) => sum + bytesOf(v), 0);
  if (typeof value === 'object' && value !== null) {
    return Object.values(value).reduce((sum: number, v) => sum + bytesOf(v), 0);
  }
  return 0;
}

/** What each device sent and received, from the transcript (what the server relays). */
function traffic(
  out: InProcessResult,
  n: number,
  width: WordBytes,
): { sent: number[]; received: number[] } {
  const sent = new Map<DeviceId, number>();
  const received = new Map<DeviceId, number>();
  const add = (into: Map<DeviceId, number>, id: DeviceId, bytes: number) =>
    into.set(id, (into.get(id) ?? 0) + bytes);
  const { keys, shares, masked, unmask } = out.transcript;
  const keyBytes = new Map(keys.map((m) => [m.from, bytesOf(m)]));
  for (const m of keys) add(sent, m.from, bytesOf(m));
  for (const m of shares) {
    add(sent, m.from, bytesOf(m));
    // Every neighbour that shares gets the sender's keys (its roster) and its sealed share.
    for (const share of m.shares) {
      add(received, share.to, bytesOf(share) + (keyBytes.get(m.from) ?? 0));
    }
  }
  // A masked input at its length on the wire, in the round's ring.
  for (const m of masked) add(sent, m.from, encodeMasked(m, width).length);
  for (const m of unmask) add(sent, m.from, bytesOf(m));
  for (const [id, request] of out.server.requests) add(received, id, bytesOf(request));
  const ids = Array.from({ length: n }, (_, i) => i + 1).filter((id) => sent.has(id));
  return { sent: ids.map((id) => sent.get(id)!), received: ids.map((id) => received.get(id) ?? 0) };
}

/** The median of `xs`. */
const median = (xs: readonly number[]) =>
  quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );

/**
 * The round's ring and fixed point: the server's choice without noise (rotated in a 16-bit ring
 * where it fits), or `ring` bits for n, unrotated.
 */
function encodingFor(
  n: number,
  ring: number | 'auto',
): { bits: number; summands: number; length: number; noiseVariance: number; rotation?: number } {
  if (ring === 'auto') return secureEncoding(1, 0, n, Math.ceil(n / 2), length);
  return { bits: ring, summands: n, length, noiseVariance: 0 };
}

async function runOnce(
  n: number,
  dropout: number,
  run: number,
  ring: number | 'auto',
): Promise<RunFigures> {
  const encoding = encodingFor(n, ring);
  const { bits, summands } = encoding;
  const params = paramsFor(n, run, encoding.length);
  // What a device reads of the round (protocol/secagg/http.ts), for an update clipped to 1.
  const info = roundInfo(params, { version: 1, layoutHash: 0, clipNorm: 1 }, encoding);
  const width = wordBytes(bits);
  const bound = coordinateBound(info);
  const floats = new Map(params.devices.map((id) => [id, update(run * 1_000_003 + id)]));
  // Encoded as a device encodes: rotated where the round rotates, rounded within its bound.
  const inputs = new Map([...floats].map(([id, x]) => [id, encodeInput(x, info)] as const));
  const rng = mulberry32(run * 7919 + n);
  const dropped = params.devices.filter(() => rng() < dropout);
  const drops = new Map<DeviceId, DropPoint>(dropped.map((id) => [id, 'masked']));
  const deviceMs = new Map<DeviceId, number>();
  let serverMs = 0;
  const out = await runRoundInProcess({
    params,
    inputs,
    drops,
    wordBytes: width,
    onStep: (_stage, who) => {
      const began = performance.now();
      return () => {
        const ms = performance.now() - began;
        if (who === 'server') serverMs += ms;
        else deviceMs.set(who, (deviceMs.get(who) ?? 0) + ms);
      };
    },
  });
  const decoded = sumInUpdate(
    decodeFixedPointSum(out.result.sum, bound, summands, bits),
    info,
    length,
  );
  const expected = new Float64Array(length);
  for (const id of out.result.survivors) floats.get(id)!.forEach((v, i) => (expected[i]! += v));
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < length; i++) {
    diff += (decoded[i]! - expected[i]!) ** 2;
    norm += expected[i]! ** 2;
  }
  const times = [...deviceMs.values()].sort((a, b) => a - b);
  const { sent, received } = traffic(out, n, width);
  return {
    deviceMedian: quantile(times, 0.5),
    deviceP90: quantile(times, 0.9),
    server: serverMs,
    sent: median(sent),
    received: median(received),
    relativeError: Math.sqrt(diff / norm),
    survivors: out.result.survivors.length,
  };
}
const ms = (x: number) =>
  `${x.toLocaleString('en-US', { maximumFractionDigits: x < 10 ? 1 : 0 })} ms`;
const kb = (x: number) => `${(x / 1024).toLocaleString('en-US', { maximumFractionDigits: 1 })} KiB`;

const HEADER = [
  'devices n',
  'ring',
  'dropout',
  'neighbours k',
  'summed',
  'device (median)',
  'device (p90)',
  'server',
  'sent per device',
  'received per device',
  'sum rel. error',
];
console.log(
  `Secure aggregation, ${length.toLocaleString('en-US')} coordinates, medians of ${runs} run(s):\n`,
);
// Each row as soon as it is measured: a large cohort takes minutes a row.
console.log(markdownTable(HEADER, []));
const rows = { push: (row: string[]) => console.log(markdownRow(row)) };

for (const n of cohorts) {
  for (const ring of rings) {
    const { bits } = encodingFor(n, ring);
    for (const dropout of dropouts) {
      const figures: RunFigures[] = [];
      let abandoned = 0;
      for (let run = 1; run <= runs; run++) {
        try {
          figures.push(await runOnce(n, dropout, run, ring));
        } catch (error) {
          // Too many of some device's holders dropped (fewer than t' of its shares): the protocol
          // abandons the round, revealing nothing. Counted, not timed.
          if (!(error instanceof HearthError && error.code === 'HEARTH_E_SECAGG_THRESHOLD'))
            throw error;
          abandoned++;
        }
      }
      const k = Math.min(paramsFor(n, 0).neighbours, n - 1);
      if (figures.length === 0) {
        rows.push([
          String(n),
          `${bits}`,
          `${Math.round(dropout * 100)}%`,
          String(k),
          `abandoned ${abandoned}/${runs}`,
          ...Array(6).fill(''),
        ]);
        continue;
      }
      rows.push([
        String(n),
        `${bits}`,
        `${Math.round(dropout * 100)}%`,
        String(k),
        `${median(figures.map((f) => f.survivors))}${abandoned ? ` (${abandoned}/${runs} abandoned)` : ''}`,
        ms(median(figures.map((f) => f.deviceMedian))),
        ms(median(figures.map((f) => f.deviceP90))),
        ms(median(figures.map((f) => f.server))),
        kb(median(figures.map((f) => f.sent))),
        kb(median(figures.map((f) => f.received))),
        median(figures.map((f) => f.relativeError)).toExponential(2),
      ]);
    }
  }
}
