/**
 * Replies that every device fetches alike (a version's manifest and weights, the catalogue), kept
 * with their compressed forms: each is compressed once, on libuv's thread pool, and served to every
 * device in the encoding its Accept-Encoding prefers. The server's other replies are compressed on
 * each request by @fastify/compress (app.ts).
 *
 * Each encoding is a representation of its own with its own ETag (RFC 9110 8.8.3): `"m3-x"` is sent
 * as `"m3-x.br"` in brotli. The content behind them is the same, so a revalidation that names any of
 * them is answered 304.
 */
import { negotiate } from '@fastify/accept-negotiator';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The content codings a kept body may be stored in besides identity, in the server's preference. */
export type ContentCoding = 'br' | 'gzip';

const SUFFIX: Readonly<Record<ContentCoding, string>> = { br: '.br', gzip: '.gz' };

const brotli = promisify(brotliCompress);
const gzipped = promisify(gzip);

/**
 * The largest body brotli compresses at its best setting. That setting runs at a few hundred KB/s
 * (the Diginetica manifest, 335,603 bytes: 61,059 in 0.4 to 0.9 s; a synthetic 9.9 MB catalogue:
 * 291,963 in 47 s on a loaded machine, which a first request would wait for); a larger body takes
 * quality 5 (that catalogue: 433,842 in 0.7 s, against 765,877 for gzip's best).
 */
export const BROTLI_BEST_MAX_BYTES = 512 * 1024;

/** The brotli settings of a kept body of `length` bytes. */
function brotliParams(length: number, text: boolean): Record<number, number> {
  return {
    [constants.BROTLI_PARAM_QUALITY]:
      length <= BROTLI_BEST_MAX_BYTES ? constants.BROTLI_MAX_QUALITY : 5,
    [constants.BROTLI_PARAM_MODE]: text
      ? constants.BROTLI_MODE_TEXT
      : constants.BROTLI_MODE_GENERIC,
    [constants.BROTLI_PARAM_SIZE_HINT]: length,
  };
}

/** Compresses `body` in `coding`; a kept body is compressed once, so at gzip's best setting. */
function compress(body: Buffer, coding: ContentCoding, text: boolean): Promise<Buffer> {
  if (coding === 'gzip') return gzipped(body, { level: 9 });
  return brotli(body, { params: brotliParams(body.length, text) });
}

/** True when an If-None-Match header names `etag` (or is `*`); weak tags compare equal (RFC 9110). */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/** The tag of `etag`'s representation in `coding` (identity: the tag itself). */
export function codedEtag(etag: string, coding: ContentCoding | 'identity'): string {
  return coding === 'identity' ? etag : `${etag.slice(0, -1)}${SUFFIX[coding]}"`;
}

/** A Vary header that adds accept-encoding to what is there (CORS may have put Origin). */
function varyOnEncoding(vary: string | number | string[] | undefined): string {
  const names = [vary ?? []]
    .flat()
    .join(',')
    .split(',')
    .map((name) => name.trim());
  return [
    ...names.filter((name) => name !== '' && name.toLowerCase() !== 'accept-encoding'),
    'accept-encoding',
  ].join(', ');
}

/** How one kind of reply is kept and served. */
export interface KeptKind {
  /** The codings kept besides identity, most preferred first. */
  readonly codings: readonly ContentCoding[];
  readonly contentType: string;
  readonly cacheControl: string;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** The kinds the server keeps. */
export const KEPT_KINDS = {
  // no-cache: devices revalidate on every start and learn about a new version within one request.
  manifest: { codings: ['br', 'gzip'], contentType: JSON_TYPE, cacheControl: 'no-cache' },
  // gzip only: brotli's best setting took 5 s for the Diginetica model's int8e weights and saved
  // 0.5% over gzip's (int8 values compress little either way).
  weights: {
    codings: ['gzip'],
    contentType: 'application/octet-stream',
    cacheControl: 'public, max-age=31536000, immutable',
  },
  catalog: { codings: ['br', 'gzip'], contentType: JSON_TYPE, cacheControl: 'no-cache' },
} as const satisfies Record<string, KeptKind>;

/** Chromium's Accept-Encoding. */
export const BROWSER_ACCEPT_ENCODING = 'gzip, deflate, br, zstd';

/** The coding of `kind` a request with this Accept-Encoding gets. */
function codingFor(kind: KeptKind, acceptEncoding: string | undefined): ContentCoding | 'identity' {
  return (negotiate(acceptEncoding ?? '', [...kind.codings]) ?? 'identity') as
    ContentCoding | 'identity';
}

/** `made` as bytes. */
function bodyBytes(made: Uint8Array | string): Buffer {
  return typeof made === 'string'
    ? Buffer.from(made)
    : Buffer.from(made.buffer, made.byteOffset, made.byteLength);
}

/** `identity` in `coding` as `kind` keeps it. */
function encodeAs(kind: KeptKind, identity: Buffer, coding: ContentCoding | 'identity') {
  if (coding === 'identity') return Promise.resolve(identity);
  return compress(identity, coding, !kind.contentType.startsWith('application/octet-stream'));
}

/** `body` as `kind` keeps it: identity and each of its codings. */
async function keptForms(
  kind: KeptKind,
  made: Uint8Array | string,
): Promise<ReadonlyMap<ContentCoding | 'identity', Buffer>> {
  const identity = bodyBytes(made);
  const codings = ['identity', ...kind.codings] as const;
  const forms = await Promise.all(codings.map((c) => encodeAs(kind, identity, c)));
  return new Map(codings.map((c, i) => [c, forms[i]!] as const));
}

/**
 * The bytes of `body`, served as `kind`, that a browser receives (what `npm run federate` counts):
 * only that coding is made.
 */
export async function servedByteLength(
  kind: KeptKind,
  body: Uint8Array | string,
  acceptEncoding = BROWSER_ACCEPT_ENCODING,
): Promise<number> {
  return (await encodeAs(kind, bodyBytes(body), codingFor(kind, acceptEncoding))).length;
}

interface Kept {
  readonly etag: string;
  readonly bodies: Promise<ReadonlyMap<ContentCoding | 'identity', Buffer>>;
}

/**
 * The newest body of one kind with its compressed forms (only the newest: a round's devices fetch
 * the same version). Concurrent requests for a body not yet kept share one computation.
 */
export class KeptBodies {
  readonly #kind: KeptKind;
  #kept: Kept | undefined;

  constructor(kind: KeptKind) {
    this.#kind = kind;
  }

  /**
   * Answers `request` with the body tagged `etag`: 304 when it revalidates any of the tag's
   * representations, else the body in the coding the request prefers, made by `make` when it is not
   * the one kept.
   */
  async serve(
    request: FastifyRequest,
    reply: FastifyReply,
    etag: string,
    make: () => Promise<Uint8Array | string> | Uint8Array | string,
  ): Promise<FastifyReply> {
    const { codings, contentType, cacheControl } = this.#kind;
    const coding = codingFor(this.#kind, request.headers['accept-encoding']);
    void reply
      .header('etag', codedEtag(etag, coding))
      .header('cache-control', cacheControl)
      .header('vary', varyOnEncoding(reply.getHeader('vary')));
    const header = request.headers['if-none-match'];
    const tags = [codedEtag(etag, 'identity'), ...codings.map((c) => codedEtag(etag, c))];
    if (tags.some((tag) => etagMatches(header, tag))) return reply.code(304).send();
    const body = (await this.#bodies(etag, make)).get(coding)!;
    if (coding !== 'identity') void reply.header('content-encoding', coding);
    return reply.type(contentType).send(body);
  }

  #bodies(etag: string, make: () => Promise<Uint8Array | string> | Uint8Array | string) {
    if (this.#kept?.etag !== etag) {
      const kept: Kept = {
        etag,
        bodies: (async () => keptForms(this.#kind, await make()))(),
      };
      this.#kept = kept;
      // A failed body (a version gone) is not kept: the next request tries again.
      kept.bodies.catch(() => {
        if (this.#kept === kept) this.#kept = undefined;
      });
    }
    return this.#kept!.bodies;
  }
}
