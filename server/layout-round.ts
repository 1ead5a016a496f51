/**
 * A round folded in its update layout (protocol/update-layout.ts), by the server's store and by the
 * simulation alike: the global weights (and FedAdam's moments) are gathered at the model
 * coordinates the layout moves (modelLayout), the round policy aggregates there, and the result is
 * scattered back. Everything the layout does not name keeps its value, its moments included. A
 * sketched round folds the whole model, and its policy reads the mean of the sketches into it
 * (RoundContext.sent).
 */
import type { ModelDims } from '../protocol/manifest.js';
import { unsketchUpdate } from '../protocol/item-sketch.js';
import {
  fitUpdate,
  gatherLayout,
  itemSpan,
  modelLayout,
  scatterLayout,
  updateLength,
  type ModelLayout,
  type UpdateLayout,
} from '../protocol/update-layout.js';
import type { SentCoordinates } from './aggregate.js';
import { initialFedAdamState } from './fedadam.js';
import type { RoundContext, RoundOutput } from './store.js';

/**
 * Runs `fold` (a round policy's aggregate or aggregateSum) on the coordinates of `global` that
 * updates sent in `sent` move, and returns the full weights and optimiser state it leads to.
 * `context.optimizerState`, when present, covers the whole model.
 */
export function foldInLayout(
  dims: ModelDims,
  sent: UpdateLayout,
  global: Float32Array,
  context: Omit<RoundContext, 'itemSpan' | 'sent'>,
  fold: (compact: Float32Array, context: RoundContext) => RoundOutput,
): RoundOutput {
  const layout = modelLayout(sent);
  const length = updateLength(dims, layout);
  const state = context.optimizerState;
  const compact = gatherLayout(global, dims, layout, new Float32Array(length));
  const out = fold(compact, {
    ...context,
    optimizerState: state && {
      step: state.step,
      m: gatherLayout(state.m, dims, layout, new Float64Array(length)),
      v: gatherLayout(state.v, dims, layout, new Float64Array(length)),
    },
    itemSpan: itemSpan(dims, layout),
    ...(sent.kind === 'sketch' ? { sent: sketchCoordinates(dims, sent) } : {}),
  });
  const weights = global.slice();
  scatterLayout(out.weights, dims, layout, weights);
  if (!out.optimizerState) return { weights, privacy: out.privacy };
  // The moments of coordinates outside the layout stay as they were (the initial ones if none).
  const base = state ?? initialFedAdamState(global.length);
  const m = base.m.slice();
  const v = base.v.slice();
  scatterLayout(out.optimizerState.m, dims, layout, m);
  scatterLayout(out.optimizerState.v, dims, layout, v);
  return { weights, privacy: out.privacy, optimizerState: { step: out.optimizerState.step, m, v } };
}

const WHOLE: ModelLayout = { kind: 'full' };

/**
 * The coordinates of updates sent as sketch `from` on a model of `dims`, and how a mean in them is
 * read into `layout` of a model of `toDims` (by default the whole model of `dims`): back into the
 * whole model with `from`'s hashes, then grown and fitted to `layout` where they differ (a secure
 * sum on an earlier version, store-rules.ts publishSumRound).
 */
export function sketchCoordinates(
  dims: ModelDims,
  from: Extract<UpdateLayout, { kind: 'sketch' }>,
  toDims: ModelDims = dims,
  layout: ModelLayout = WHOLE,
): SentCoordinates {
  const whole = updateLength(dims, WHOLE);
  const fitted = toDims.items !== dims.items || layout.kind !== 'full';
  return {
    length: updateLength(dims, from),
    decode: (mean) => {
      if (!fitted) return unsketchUpdate(mean, dims, from.sketch, new Float64Array(whole));
      const rows = unsketchUpdate(mean, dims, from.sketch, new Float32Array(whole));
      return Float64Array.from(fitUpdate(rows, dims, WHOLE, layout, toDims));
    },
  };
}
