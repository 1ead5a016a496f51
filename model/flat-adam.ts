/**
 * Adam (Kingma & Ba 2015, Algorithm 1 with the bias corrections folded into the step size) over one
 * flat Float32Array of weights, in plain JS, updating only the ranges and item rows a step touched,
 * with an optional proximal pull. On-device learning (online-step.ts) uses it: an update there
 * trains a visitor's few item rows and must leave every other row exactly as it is.
 */
import { ADAM } from './adam.js';

/** A pull toward anchor weights: adds mu * (w - anchor) to every gradient it sees (FedProx). */
export interface Proximal {
  readonly anchor: Float32Array;
  readonly mu: number;
}

const { beta1: BETA1, beta2: BETA2, epsilon: EPSILON } = ADAM;

/** Adam moments for a flat weight vector of a fixed size. */
export class FlatAdam {
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  private t = 0;

  constructor(readonly size: number) {
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }

  /** Counts one step and returns its step size (learning rate with both bias corrections). */
  next(learningRate: number): number {
    this.t++;
    return (learningRate * Math.sqrt(1 - BETA2 ** this.t)) / (1 - BETA1 ** this.t);
  }

  /** Updates weights[at, at + g.length) with gradient `g` (plus the proximal pull). */
  range(
    weights: Float32Array,
    at: number,
    g: ArrayLike<number>,
    stepSize: number,
    proximal?: Proximal,
  ): void {
    for (let i = 0; i < g.length; i++) this.one(weights, at + i, g[i]!, stepSize, proximal);
  }

  /**
   * Updates rows of a [rows, width] table stored at `at`: gradient row r (of `g`, [rows.length,
   * width]) goes to table row rows[r]. A row listed twice is updated twice, so callers list each once.
   */
  rows(
    weights: Float32Array,
    at: number,
    width: number,
    rows: ArrayLike<number>,
    g: ArrayLike<number>,
    stepSize: number,
    proximal?: Proximal,
  ): void {
    for (let r = 0; r < rows.length; r++) {
      const base = at + rows[r]! * width;
      for (let j = 0; j < width; j++) {
        this.one(weights, base + j, g[r * width + j]!, stepSize, proximal);
      }
    }
  }

  /** Zeroes the moments of weights[at, at + length) and the step count: a fresh run over them. */
  restart(ranges: readonly (readonly [at: number, length: number])[]): void {
    this.t = 0;
    for (const [at, length] of ranges) {
      this.m.fill(0, at, at + length);
      this.v.fill(0, at, at + length);
    }
  }

  private one(
    weights: Float32Array,
    i: number,
    g: number,
    stepSize: number,
    proximal?: Proximal,
  ): void {
    const grad = proximal ? g + proximal.mu * (weights[i]! - proximal.anchor[i]!) : g;
    const m = (this.m[i] = BETA1 * this.m[i]! + (1 - BETA1) * grad);
    const v = (this.v[i] = BETA2 * this.v[i]! + (1 - BETA2) * grad * grad);
    weights[i] = weights[i]! - (stepSize * m) / (Math.sqrt(v) + EPSILON);
  }
}
