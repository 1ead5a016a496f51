/**
 * What a curious server can read off one device's update, with nothing but that update and the
 * published global model: which items the visitor touched. Each attack ranks catalogue rows by a
 * score; a guess of the visitor's |items| top-ranked rows is then scored against the truth.
 *
 * - rows: every item row the update carries, by how far the update moved it (L2 norm of its
 *   embedding change plus the absolute change of its bias). The rows are the same for every
 *   device, but the visitor's own rows get input-side and target gradients the others do not.
 *   An item sketch is read back into rows first, as the server reads it.
 * - projection: only the dense part, read against the public item table: the change of the output
 *   projection's bias points toward the items the visitor moved to next, so each item scores its
 *   (normalised) embedding's dot product with that change.
 */
import { splitFlat, tensorLayout, type ModelDims } from '../../protocol/manifest.js';
import {
  denseStart,
  rowOffsets,
  updateLength,
  type ModelLayout,
} from '../../protocol/update-layout.js';

/** Catalogue rows ranked by an attack, most likely first. */
export type Ranking = readonly number[];

/**
 * The rows attack: the layout's rows by how far the update moved them. Rows moved alike (the
 * bucket mates of an item sketch, read back) are ranked by `prior` (a row's place in it, lower
 * first: the items' popularity, say), else by row number.
 */
export function rowsAttack(
  delta: Float32Array,
  dims: ModelDims,
  layout: ModelLayout,
  prior?: ArrayLike<number>,
): Ranking {
  if (delta.length !== updateLength(dims, layout)) throw new RangeError('delta is not in layout');
  const at = rowOffsets(dims, layout);
  const rows =
    layout.kind === 'full' ? Array.from({ length: dims.items - 1 }, (_, i) => i + 1) : layout.rows;
  const score = new Map<number, number>();
  for (const row of rows) {
    const e = at.embedding(row);
    let sq = 0;
    for (let k = 0; k < dims.embedding; k++) sq += delta[e + k]! ** 2;
    score.set(row, Math.sqrt(sq) + Math.abs(delta[at.bias(row)]!));
  }
  const tie = prior ? (a: number, b: number) => prior[a]! - prior[b]! : () => 0;
  return [...rows].sort((a, b) => score.get(b)! - score.get(a)! || tie(a, b) || a - b);
}

/** The projection attack: every item by its normalised embedding's dot product with the change. */
export function projectionAttack(
  delta: Float32Array,
  dims: ModelDims,
  layout: ModelLayout,
  global: Float32Array,
): Ranking {
  const tensors = tensorLayout(dims);
  // Where projection_bias sits among the dense tensors (manifest order, the table and bias left out).
  let offset = denseStart(dims, layout);
  for (const t of tensors) {
    if (t.name === 'item_embedding' || t.name === 'item_bias') continue;
    if (t.name === 'projection_bias') break;
    offset += t.shape.reduce((a, b) => a * b, 1);
  }
  const change = delta.subarray(offset, offset + dims.embedding);
  const table = splitFlat(global, tensors).get('item_embedding')!;
  const score = new Float64Array(dims.items).fill(-Infinity);
  for (let r = 1; r < dims.items; r++) {
    let dot = 0;
    let sq = 0;
    for (let k = 0; k < dims.embedding; k++) {
      const v = table[r * dims.embedding + k]!;
      dot += v * change[k]!;
      sq += v * v;
    }
    score[r] = dot / Math.sqrt(sq + 1e-12);
  }
  return Array.from({ length: dims.items - 1 }, (_, i) => i + 1).sort(
    (a, b) => score[b]! - score[a]! || a - b,
  );
}

/** How a guess of the top |truth| rows of `ranking` fares: the top row a hit, and the recall. */
export function scoreGuess(
  ranking: Ranking,
  truth: ReadonlySet<number>,
): { top1: boolean; recall: number } {
  const guess = ranking.slice(0, truth.size);
  const hits = guess.filter((row) => truth.has(row)).length;
  return { top1: truth.has(ranking[0]!), recall: truth.size > 0 ? hits / truth.size : 0 };
}
