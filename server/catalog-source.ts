/**
 * Reading a catalogue from where an operator keeps it: a file, or an http(s) URL (a feed the site
 * already publishes). Bounded in bytes and time; every failure is a HEARTH_E_CATALOG (or
 * HEARTH_E_CATALOG_TOO_LARGE) naming the file or URL, and nothing already stored is touched.
 */
import { readFile, stat } from 'node:fs/promises';
import { CATALOG_LIMITS, type CatalogItem } from '../protocol/catalog.js';
import { HearthError } from '../protocol/errors.js';
import { parseCatalog } from './catalog-parse.js';

/** How long fetching a catalogue URL may take, headers to last byte. */
export const CATALOG_FETCH_MS = 30_000;

function tooLarge(name: string, bytes?: number): never {
  const size = bytes === undefined ? '' : `${bytes} bytes, `;
  throw new HearthError(
    'HEARTH_E_CATALOG_TOO_LARGE',
    `${name}: ${size}more than ${CATALOG_LIMITS.bytes} bytes`,
  );
}

/** Whether `location` is a URL to fetch rather than a file path. */
export function isCatalogUrl(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

/** The items of the catalogue at `location` (file path or http(s) URL), parsed and checked. */
export async function readCatalog(location: string): Promise<readonly CatalogItem[]> {
  if (isCatalogUrl(location)) {
    const { text, contentType } = await fetchText(location);
    return parseCatalog(text, { name: location, ...(contentType ? { contentType } : {}) });
  }
  let size: number;
  try {
    size = (await stat(location)).size;
  } catch (error) {
    throw new HearthError(
      'HEARTH_E_CATALOG',
      `${location}: cannot read (${(error as Error).message})`,
    );
  }
  if (size > CATALOG_LIMITS.bytes) tooLarge(location, size);
  const text = await readFile(location, 'utf8');
  return parseCatalog(text, { name: location });
}

/** The body of `url` as text, refused past CATALOG_LIMITS.bytes or CATALOG_FETCH_MS. */
async function fetchText(url: string): Promise<{ text: string; contentType?: string }> {
  let response: Response;
  const signal = AbortSignal.timeout(CATALOG_FETCH_MS);
  try {
    response = await fetch(url, { signal, redirect: 'follow' });
  } catch (error) {
    throw new HearthError('HEARTH_E_CATALOG', `${url}: cannot fetch (${(error as Error).message})`);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new HearthError('HEARTH_E_CATALOG', `${url}: HTTP ${response.status}`);
  }
  const declared = Number(response.headers.get('content-length'));
  if (declared > CATALOG_LIMITS.bytes) {
    await response.body?.cancel();
    tooLarge(url, declared);
  }
  // Read it in chunks: a server may send more than it declared, or declare nothing.
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  const reader = response.body?.getReader();
  try {
    for (;;) {
      const chunk = reader && (await reader.read());
      if (!chunk || chunk.done) break;
      bytes += chunk.value.byteLength;
      if (bytes > CATALOG_LIMITS.bytes) {
        await reader.cancel();
        tooLarge(url);
      }
      chunks.push(chunk.value);
    }
  } catch (error) {
    if (error instanceof HearthError) throw error;
    throw new HearthError('HEARTH_E_CATALOG', `${url}: cannot fetch (${(error as Error).message})`);
  }
  const contentType = response.headers.get('content-type') ?? undefined;
  return {
    text: Buffer.concat(chunks).toString('utf8'),
    ...(contentType ? { contentType } : {}),
  };
}
