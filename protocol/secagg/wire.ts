/**
 * The bytes of secure aggregation's messages on the wire (messages.ts), for an HTTP transport:
 * each body starts with a four-byte tag naming its kind and version, then big-endian integers and
 * length-prefixed byte strings; the masked input's words are little-endian, each in as many bytes as
 * the round's ring has (the low bits of the uint32 word: fixed-point.ts). Decoding checks
 * every length and count against the protocol's bounds and consumes the body exactly, so a
 * truncated, padded or oversized body is refused (HEARTH_E_SECAGG_MESSAGE) before anything reads
 * it. The protocol steps still check what the messages say (checks.ts); this checks their shape.
 */
import { refuse } from './checks.js';
import type {
  EncryptedShare,
  KeysMessage,
  MaskedInputMessage,
  OwnedShare,
  SharesMessage,
  UnmaskRequest,
  UnmaskResponse,
} from './messages.js';
import { MAX_HOLDERS, MAX_LENGTH, type DeviceId } from './params.js';

/** The four-byte tags, version 1 of each kind. */
export const WIRE_TAGS = {
  keys: 'HSK1',
  roster: 'HSR1',
  shares: 'HSS1',
  forwarded: 'HSF1',
  masked: 'HSM1',
  request: 'HSQ1',
  unmask: 'HSU1',
} as const;
type Kind = keyof typeof WIRE_TAGS;

/** Longest sealed share or revealed share accepted (real ones are about 100 bytes). */
export const MAX_SHARE_BYTES = 1024;

class Writer {
  private readonly parts: Uint8Array[] = [];
  private size = 0;
  tag(kind: Kind): this {
    return this.bytes(Uint8Array.from(WIRE_TAGS[kind], (c) => c.charCodeAt(0)));
  }
  u16(value: number): this {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, value);
    return this.bytes(b);
  }
  u32(value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value);
    return this.bytes(b);
  }
  /** A byte string with its u16 length first. */
  blob(value: Uint8Array): this {
    return this.u16(value.length).bytes(value);
  }
  bytes(value: Uint8Array): this {
    this.parts.push(value);
    this.size += value.length;
    return this;
  }
  /** Each word's low `width` bytes, little-endian. */
  words(value: Uint32Array, width: WordBytes): this {
    const b = new Uint8Array(value.length * width);
    for (let i = 0, at = 0; i < value.length; i++) {
      const word = value[i]!;
      for (let k = 0; k < width; k++) b[at++] = (word >>> (8 * k)) & 0xff;
    }
    return this.bytes(b);
  }
  done(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const part of this.parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }
}

class Reader {
  private at = 0;
  private readonly view: DataView;
  constructor(
    private readonly body: Uint8Array,
    kind: Kind,
  ) {
    if (!(body instanceof Uint8Array)) refuse(`a ${kind} body must be bytes`);
    this.view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const tag = String.fromCharCode(...this.take(4, 'tag'));
    if (tag !== WIRE_TAGS[kind])
      refuse(`expected a ${kind} body (${WIRE_TAGS[kind]}), got '${tag}'`);
  }
  private take(length: number, what: string): Uint8Array {
    if (this.at + length > this.body.length) refuse(`body ends inside ${what}`);
    // Copied, never a view: a Node Buffer's slice() is a view into a pool that later requests
    // reuse, and a view's buffer starts wherever the pool's does.
    const out = new Uint8Array(length);
    out.set(this.body.subarray(this.at, this.at + length));
    this.at += length;
    return out;
  }
  u16(what: string): number {
    if (this.at + 2 > this.body.length) refuse(`body ends inside ${what}`);
    const value = this.view.getUint16(this.at);
    this.at += 2;
    return value;
  }
  u32(what: string): number {
    if (this.at + 4 > this.body.length) refuse(`body ends inside ${what}`);
    const value = this.view.getUint32(this.at);
    this.at += 4;
    return value;
  }
  count(what: string, max: number): number {
    const n = this.u16(what);
    if (n > max) refuse(`${what}: ${n} entries, at most ${max}`);
    return n;
  }
  fixed(length: number, what: string): Uint8Array {
    return this.take(length, what);
  }
  blob(what: string): Uint8Array {
    const length = this.u16(`${what} length`);
    if (length === 0 || length > MAX_SHARE_BYTES) {
      refuse(`${what}: ${length} bytes, expected 1 to ${MAX_SHARE_BYTES}`);
    }
    return this.take(length, what);
  }
  words(count: number, width: WordBytes, what: string): Uint32Array {
    const bytes = this.take(count * width, what);
    const out = new Uint32Array(count);
    for (let i = 0, at = 0; i < count; i++) {
      let word = 0;
      for (let k = 0; k < width; k++) word += bytes[at++]! * 2 ** (8 * k);
      out[i] = word;
    }
    return out;
  }
  end<T>(value: T): T {
    if (this.at !== this.body.length)
      refuse(`${this.body.length - this.at} bytes after the message`);
    return value;
  }
}

const keysFields = (w: Writer, m: KeysMessage) => w.u32(m.from).bytes(m.cPublic).bytes(m.sPublic);
const readKeys = (r: Reader): KeysMessage => ({
  from: r.u32('sender'),
  cPublic: r.fixed(32, 'public key c'),
  sPublic: r.fixed(32, 'public key s'),
});
const shareFields = (w: Writer, s: EncryptedShare) => w.u32(s.from).u32(s.to).blob(s.sealed);
const readShare = (r: Reader): EncryptedShare => ({
  from: r.u32('share sender'),
  to: r.u32('share receiver'),
  sealed: r.blob('sealed share'),
});
const ownedFields = (w: Writer, list: readonly OwnedShare[]) => {
  w.u16(list.length);
  for (const s of list) w.u32(s.owner).blob(s.share);
};
const readOwned = (r: Reader, what: string): OwnedShare[] =>
  Array.from({ length: r.count(what, MAX_HOLDERS) }, () => ({
    owner: r.u32(`${what} owner`),
    share: r.blob(what),
  }));
const idsFields = (w: Writer, ids: readonly DeviceId[]) => {
  w.u16(ids.length);
  for (const id of ids) w.u32(id);
};
const readIds = (r: Reader, what: string): DeviceId[] =>
  Array.from({ length: r.count(what, MAX_HOLDERS) }, () => r.u32(what));

/** Stage 1, device -> server. */
export function encodeKeys(m: KeysMessage): Uint8Array {
  return keysFields(new Writer().tag('keys'), m).done();
}
export function decodeKeys(body: Uint8Array): KeysMessage {
  const r = new Reader(body, 'keys');
  return r.end(readKeys(r));
}

/** Stage 1's answer, server -> device: the public keys of its neighbours that advertised theirs. */
export function encodeRoster(roster: readonly KeysMessage[]): Uint8Array {
  const w = new Writer().tag('roster').u16(roster.length);
  for (const m of roster) keysFields(w, m);
  return w.done();
}
export function decodeRoster(body: Uint8Array): KeysMessage[] {
  const r = new Reader(body, 'roster');
  return r.end(Array.from({ length: r.count('roster', MAX_HOLDERS) }, () => readKeys(r)));
}

/** Stage 2, device -> server. */
export function encodeShares(m: SharesMessage): Uint8Array {
  const w = new Writer().tag('shares').u32(m.from).bytes(m.commitment).u16(m.shares.length);
  for (const s of m.shares) shareFields(w, s);
  return w.done();
}
export function decodeShares(body: Uint8Array): SharesMessage {
  const r = new Reader(body, 'shares');
  const from = r.u32('sender');
  const commitment = r.fixed(32, 'commitment');
  const shares = Array.from({ length: r.count('shares', MAX_HOLDERS) }, () => readShare(r));
  return r.end({ from, commitment, shares });
}

/** Stage 2's answer, server -> device: the shares its neighbours sealed for it. */
export function encodeForwarded(shares: readonly EncryptedShare[]): Uint8Array {
  const w = new Writer().tag('forwarded').u16(shares.length);
  for (const s of shares) shareFields(w, s);
  return w.done();
}
export function decodeForwarded(body: Uint8Array): EncryptedShare[] {
  const r = new Reader(body, 'forwarded');
  return r.end(
    Array.from({ length: r.count('forwarded shares', MAX_HOLDERS) }, () => readShare(r)),
  );
}

/** Bytes of a masked word on the wire: the round's ring, 2^16, 2^24 or 2^32. */
export type WordBytes = 2 | 3 | 4;

/** A ring's bits (fixed-point.ts) as bytes of a word on the wire; throws unless 16, 24 or 32. */
export function wordBytes(bits: number): WordBytes {
  if (bits !== 16 && bits !== 24 && bits !== 32)
    refuse(`a ring of ${bits} bits is not 16, 24 or 32`);
  return (bits / 8) as WordBytes;
}

/**
 * Stage 3, device -> server: the masked input, `expectedLength` words (the round's L), each in
 * `width` bytes: its low bits in the round's ring (4, the whole word, for Z_(2^32)).
 */
export function encodeMasked(m: MaskedInputMessage, width: WordBytes = 4): Uint8Array {
  return new Writer().tag('masked').u32(m.from).u32(m.masked.length).words(m.masked, width).done();
}
export function decodeMasked(
  body: Uint8Array,
  expectedLength: number,
  width: WordBytes = 4,
): MaskedInputMessage {
  const r = new Reader(body, 'masked');
  const from = r.u32('sender');
  const length = r.u32('length');
  if (length !== expectedLength || length > MAX_LENGTH) {
    refuse(`masked input of ${length} words, the round sums ${expectedLength}`);
  }
  return r.end({ from, masked: r.words(length, width, 'masked input') });
}

/** Stage 4's question, server -> device. */
export function encodeRequest(m: UnmaskRequest): Uint8Array {
  const w = new Writer().tag('request');
  idsFields(w, m.survivors);
  idsFields(w, m.dropped);
  return w.u32(m.survivorCount).done();
}
export function decodeRequest(body: Uint8Array): UnmaskRequest {
  const r = new Reader(body, 'request');
  const survivors = readIds(r, 'survivors');
  const dropped = readIds(r, 'dropped');
  return r.end({ survivors, dropped, survivorCount: r.u32('survivor count') });
}

/** Stage 4, device -> server. */
export function encodeUnmask(m: UnmaskResponse): Uint8Array {
  const w = new Writer().tag('unmask').u32(m.from);
  ownedFields(w, m.seedShares);
  ownedFields(w, m.keyShares);
  return w.done();
}
export function decodeUnmask(body: Uint8Array): UnmaskResponse {
  const r = new Reader(body, 'unmask');
  const from = r.u32('sender');
  const seedShares = readOwned(r, 'seed shares');
  const keyShares = readOwned(r, 'key shares');
  return r.end({ from, seedShares, keyShares });
}
