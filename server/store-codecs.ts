/**
 * How the Store's values become column values and back, the same for SQLite and PostgreSQL: both
 * schemas have the same tables and columns (pg-schema.ts mirrors sqlite-schema.ts), so a version, an
 * update, a ledger entry or the optimiser state is encoded once, here, and every store writes the
 * same bytes and text. That is what lets a PostgreSQL deployment publish bit for bit what SQLite
 * publishes. Values lists follow the column order of the statements that use them (named in each doc).
 */
import { createHash } from 'node:crypto';
import type { CatalogItem } from '../protocol/catalog.js';
import type { ModelManifest } from '../protocol/manifest.js';
import type { AggregateUpdate } from './aggregate.js';
import type { FedAdamState } from './fedadam.js';
import { decodeFloat16, encodeFloat16 } from '../protocol/float16.js';
import {
  exactQuantized,
  quantizedBytes,
  readQuantized,
  writeQuantized,
} from '../protocol/update-quant.js';
import { bytesToFloat32, float32ToBytes } from './float32-bytes.js';
import type {
  RoundHistory,
  RoundPrivacy,
  RoundPrivacySettings,
  SkellamRound,
  StoredCatalog,
  UpdateSubmission,
} from './store.js';

/** Float64 values as raw little-endian bytes (a view, no copy). */
export function float64ToBytes(values: Float64Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

/** Raw little-endian bytes as a fresh Float64Array. */
export function bytesToFloat64(bytes: Uint8Array): Float64Array {
  if (bytes.byteLength % 8 !== 0) {
    throw new RangeError(`float64 data must be a multiple of 8 bytes, got ${bytes.byteLength}`);
  }
  // Always a copy: the state is updated into fresh arrays, and a driver's Buffers may come from a
  // pool at an offset no Float64Array view may start at.
  return new Float64Array(Uint8Array.from(bytes).buffer);
}

/** A manifest as stored in `version_manifests.manifest` (JSON text). */
export function encodeManifest(manifest: ModelManifest): string {
  return JSON.stringify(manifest);
}

/** A stored `version_manifests.manifest` back as a manifest (it was validated before it was stored). */
export function decodeManifest(text: string): ModelManifest {
  return JSON.parse(text) as ModelManifest;
}

/**
 * The values of a version: its row of `versions` (version, created_at), of `version_manifests` and
 * of `version_weights`.
 */
export function versionValues(
  manifest: ModelManifest,
  weights: Float32Array,
): { version: number; createdAt: string; manifestText: string; weightBytes: Buffer } {
  return {
    version: manifest.version,
    createdAt: manifest.createdAt,
    manifestText: encodeManifest(manifest),
    weightBytes: float32ToBytes(weights),
  };
}

/**
 * The values of an accepted update, for
 * `INSERT INTO updates (round, token, examples, norm, delta, received_at)`. The `delta` column is
 * left empty (schema 6): the vector goes to `update_vectors` (deltaToBytes), a table of its own, so
 * that erasing it frees whole pages for reuse instead of leaving each row's page mostly empty.
 */
export function updateValues(
  round: number,
  update: UpdateSubmission,
  receivedAt: string,
): [number, string, number, number, Buffer, string] {
  return [round, update.token, update.examples, update.norm, Buffer.alloc(0), receivedAt];
}

/** The last byte of an update vector stored as float16 (its length is then odd: 2n + 1). */
const FLOAT16_TAG = 0x16;
/** The last byte of one stored block-scaled (protocol/update-quant.ts), by form. */
const QUANT_TAGS = { int2: 0x22, int4: 0x24, int8: 0x28 } as const;

/**
 * An update's vector as stored, always losslessly, in the smallest form it is exactly:
 * - float16 (an update a device sent as float16: half the bytes), tagged by a trailing byte so
 *   that its length is odd (2n + 1);
 * - int2, int4 or int8 block-scaled (one a device sent in that dtype: about 1/13, 1/7 or 1/4 the
 *   bytes), as the update format lays its payload out, then a padding byte where needed so the
 *   length is odd, the value count (u32) and a tag byte;
 * - else float32 (length 4n, even), as every row before float16 was.
 */
export function deltaToBytes(delta: Float32Array): Buffer {
  const half = encodeFloat16(delta);
  const back = decodeFloat16(half);
  let isHalf = true;
  for (let i = 0; i < delta.length && isHalf; i++) isHalf = Object.is(back[i], delta[i]);
  if (isHalf) {
    const out = Buffer.alloc(half.byteLength + 1);
    out.set(new Uint8Array(half.buffer, half.byteOffset, half.byteLength));
    out[half.byteLength] = FLOAT16_TAG;
    return out;
  }
  for (const form of ['int2', 'int4', 'int8'] as const) {
    const quantized = exactQuantized(delta, form);
    if (!quantized) continue;
    const payload = quantizedBytes(form, delta.length);
    const out = Buffer.alloc(quantizedLength(payload));
    writeQuantized(quantized, form, out.subarray(0, payload));
    out.writeUInt32LE(delta.length, out.length - 5);
    out[out.length - 1] = QUANT_TAGS[form];
    return out;
  }
  return float32ToBytes(delta);
}

/** Bytes of a stored block-scaled vector: payload, padding to an odd length, count, tag. */
function quantizedLength(payload: number): number {
  return payload + ((payload + 5) % 2 === 0 ? 1 : 0) + 5;
}

/** The vector deltaToBytes stored. */
export function bytesToDelta(bytes: Uint8Array): Float32Array {
  if (bytes.length % 2 === 0) return bytesToFloat32(bytes);
  const tag = bytes[bytes.length - 1];
  if (tag === FLOAT16_TAG) {
    const half = new Uint16Array((bytes.length - 1) / 2);
    new Uint8Array(half.buffer).set(bytes.subarray(0, bytes.length - 1));
    return decodeFloat16(half);
  }
  const form = (Object.keys(QUANT_TAGS) as (keyof typeof QUANT_TAGS)[]).find(
    (name) => QUANT_TAGS[name] === tag,
  );
  if (form && bytes.length >= 5) {
    const count = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(
      bytes.length - 5,
      true,
    );
    const payload = quantizedBytes(form, count);
    const values =
      quantizedLength(payload) === bytes.length
        ? readQuantized(bytes.subarray(0, payload), form, count)
        : null;
    if (values) return values;
  }
  throw new RangeError(`an update vector of ${bytes.length} bytes is in no stored form`);
}

/** An `updates` row as the aggregator reads it. */
export interface UpdateRow {
  readonly examples: number;
  readonly delta: Uint8Array;
}

/** A stored update as the aggregator takes it. */
export function decodeUpdate(row: UpdateRow): AggregateUpdate {
  return { examples: row.examples, delta: bytesToDelta(row.delta) };
}

/** A token joined with its round: what deciding whether an update may use the token needs. */
export interface TokenRow {
  readonly round: number;
  readonly used_at: string | null;
  readonly status: string;
  readonly base_version: number;
}

/** A published round as `SELECT id, published_version, noise_multiplier, sample_rate, skellam` reads it. */
export interface LedgerRow {
  readonly id: number;
  readonly base_version: number;
  readonly published_version: number | null;
  readonly noise_multiplier: number | null;
  readonly sample_rate: number | null;
  /** JSON of the round's SkellamRound (schema 4), null for server-noised rounds. */
  readonly skellam: string | null;
  /** The round windows the row is charged for (schema 9): null or 1 for one round. */
  readonly window_count: number | null;
}

/**
 * The ledger's rows, oldest first: every published round, and every closed round window charged
 * (published or not). A window row of count 0 only marks where charging resumes (round-windows.ts).
 */
export const LEDGER_QUERY = `SELECT id, base_version, published_version, noise_multiplier, sample_rate,
  skellam, window_count FROM rounds WHERE status = 'published' OR window_count > 0 ORDER BY id`;

/** A ledger row's entry. */
export function decodeLedgerRow(row: LedgerRow): RoundPrivacy {
  // Rounds from before the ledger existed were published without noise; q is then irrelevant.
  const steps = row.window_count ?? 1;
  return {
    round: row.id,
    // A window that published nothing kept its base version.
    version: row.published_version ?? row.base_version,
    noiseMultiplier: row.noise_multiplier ?? 0,
    sampleRate: row.sample_rate ?? 1,
    ...(row.skellam ? { skellam: JSON.parse(row.skellam) as SkellamRound } : {}),
    ...(steps > 1 ? { steps } : {}),
  };
}

/**
 * The values that publish `round` as `version` under `privacy`, for
 * `UPDATE rounds SET status = 'published', published_version, noise_multiplier, sample_rate,
 * skellam WHERE id`.
 */
export function publishedRoundValues(
  round: number,
  version: number,
  privacy: RoundPrivacySettings,
): [number, number, number, string | null, number] {
  const skellam = privacy.skellam
    ? JSON.stringify({ mu: privacy.skellam.mu, l1: privacy.skellam.l1, l2: privacy.skellam.l2 })
    : null;
  return [version, privacy.noiseMultiplier, privacy.sampleRate, skellam, round];
}

/** The single `optimizer_state` row. */
export interface OptimizerStateRow {
  readonly step: number;
  readonly m: Uint8Array;
  readonly v: Uint8Array;
}

/** The stored optimiser state, or undefined before the first FedAdam round stored one. */
export function decodeOptimizerState(row: OptimizerStateRow | undefined): FedAdamState | undefined {
  return row ? { step: row.step, m: bytesToFloat64(row.m), v: bytesToFloat64(row.v) } : undefined;
}

/**
 * The values of the optimiser state published with version `version`, for
 * `INSERT INTO optimizer_state (id, step, m, v, version) VALUES (1, ...)`.
 */
export function optimizerStateValues(
  state: FedAdamState,
  version: number,
): [number, Buffer, Buffer, number] {
  return [state.step, float64ToBytes(state.m), float64ToBytes(state.v), version];
}

/** A rounds row joined with its published version's creation time. */
export interface HistoryRow {
  readonly id: number;
  readonly base_version: number;
  readonly status: RoundHistory['status'];
  readonly opened_at: string | null;
  readonly published_version: number | null;
  readonly published_at: string | null;
  /** Devices summed by secure aggregation (schema 4); null for rounds of stored updates. */
  readonly participants: number | null;
}

/** The first round id whose norms a history needs, from its rounds newest first (0 for none). */
export function historyNormsFrom(newestFirst: readonly HistoryRow[]): number {
  return newestFirst.at(-1)?.id ?? 0;
}

/**
 * Store.history's answer from round rows newest first (as `ORDER BY id DESC LIMIT n` reads them) and
 * the norms of updates from `historyNormsFrom` on, in arrival order. Rounds come back oldest first.
 */
export function historyFromRows(
  newestFirst: readonly HistoryRow[],
  norms: readonly { round: number; norm: number }[],
): RoundHistory[] {
  const rounds = [...newestFirst].reverse();
  const byRound = new Map<number, number[]>(rounds.map((r) => [r.id, []]));
  for (const { round, norm } of norms) byRound.get(round)?.push(norm);
  return rounds.map((r) => {
    const list = byRound.get(r.id) ?? [];
    return {
      round: r.id,
      baseVersion: r.base_version,
      status: r.status,
      openedAt: r.opened_at,
      publishedVersion: r.published_version,
      publishedAt: r.published_at,
      // A secure round stores no update, so no norm: its count is recorded on the round.
      updates: r.participants ?? list.length,
      norms: list,
    };
  });
}

/** A row of the catalogs table. */
export interface CatalogRow {
  readonly version: number;
  readonly created_at: string;
  readonly digest: string;
  readonly items: string;
}

/** The JSON of a catalogue's items and its digest (SHA-256, hex). */
export function catalogBody(items: readonly CatalogItem[]): { json: string; digest: string } {
  const json = JSON.stringify(items);
  return { json, digest: createHash('sha256').update(json).digest('hex') };
}

/** A catalogs row read without its items. */
export function decodeCatalogHead(row: Omit<CatalogRow, 'items'>): Omit<StoredCatalog, 'items'> {
  return { version: row.version, updatedAt: row.created_at, digest: row.digest };
}

/**
 * The newest catalogue a store parsed, kept while the stored one has its digest: every publication
 * reads the catalogue (catalog-growth.ts), and parsing a large one each round is wasted work.
 * Digests name contents, so a held catalogue is never served for another.
 */
export class ParsedCatalog {
  private held: StoredCatalog | undefined;

  /** The held catalogue if it is the one `head` names. */
  match(head: Omit<StoredCatalog, 'items'>): StoredCatalog | undefined {
    return this.held?.digest === head.digest ? this.held : undefined;
  }

  /** Holds `catalog` and returns it. */
  keep(catalog: StoredCatalog): StoredCatalog {
    this.held = catalog;
    return catalog;
  }
}

/** The statements that read the newest catalogue's head, and all of it. */
export const CATALOG_HEAD_SQL =
  'SELECT version, created_at, digest FROM catalogs ORDER BY version DESC LIMIT 1';
export const CATALOG_ROW_SQL =
  'SELECT version, created_at, digest, items FROM catalogs ORDER BY version DESC LIMIT 1';

/** A catalogs row as the stored catalogue it holds. */
export function decodeCatalogRow(row: CatalogRow): StoredCatalog {
  return { ...decodeCatalogHead(row), items: JSON.parse(row.items) as CatalogItem[] };
}
