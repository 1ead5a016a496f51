/**
 * Reads text files whose lines are lists of positive integer ids separated by single spaces (the
 * derived Diginetica session files, the BERT4Rec/SASRec `user item` files). Shared so every loader
 * validates lines the same way and reports the first bad one as HEARTH_E_DATASET `file:line`.
 */
import { readFile } from 'node:fs/promises';
import { HearthError } from '../../protocol/errors.js';

/** A dataset file's text; a missing or unreadable file throws HEARTH_E_DATASET naming it. */
export async function readDatasetFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (cause) {
    throw new HearthError('HEARTH_E_DATASET', `${file}: cannot read (${(cause as Error).message})`);
  }
}

/**
 * Every line of `file` as its id tokens. `fields` fixes the token count per line (else any count
 * >= 1). A final newline is allowed; empty lines elsewhere, other separators and ids that are not
 * positive integers are not.
 */
export async function readIdLines(file: string, fields?: number): Promise<string[][]> {
  const text = await readDatasetFile(file);
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop(); // the final newline
  const out: string[][] = [];
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    const bad = (why: string): never => {
      throw new HearthError('HEARTH_E_DATASET', `${file}:${i + 1} ${why}`);
    };
    if (line === '') bad('empty line');
    const ids = line.split(' ');
    if (fields !== undefined && ids.length !== fields) {
      bad(`expected ${fields} space-separated fields, got ${ids.length}`);
    }
    for (const id of ids) {
      if (!/^[1-9]\d*$/.test(id)) bad(`id "${id}" is not a positive integer`);
    }
    out.push(ids);
  });
  if (out.length === 0) throw new HearthError('HEARTH_E_DATASET', `${file}: no data lines`);
  return out;
}
