/**
 * Adam (Kingma & Ba 2015, Algorithm 1 with the "efficient" bias correction folded into the step size)
 * with a state that can be read out and restored exactly. tfjs' own AdamOptimizer accumulates
 * beta^t by repeated multiplication on the backend but rebuilds it with pow() in setWeights(), so a
 * restored optimiser drifts from an uninterrupted one in the last bits; here the step size is computed
 * in float64 from the step count t alone, so save -> restore -> continue is bit-identical.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * Adam's constants wherever Hearth trains with Adam, offline (this class) and on the device
 * (flat-adam.ts): Kingma & Ba's betas, and tfjs' default epsilon for float32 backends, so results
 * stay close to tf.train.adam's. (The server's FedAdam has constants of its own: server/fedadam.ts.)
 */
export const ADAM = Object.freeze({ beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });

/** Adam's state: the step count and the moment estimates, flat in variable order. */
export interface AdamState {
  readonly t: number;
  readonly m: Float32Array;
  readonly v: Float32Array;
}

/** Adam over a fixed list of variables. */
export class Adam {
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  private t = 0;

  constructor(
    private readonly variables: readonly tf.Variable[],
    private readonly learningRate: number,
    private readonly beta1 = ADAM.beta1,
    private readonly beta2 = ADAM.beta2,
    private readonly epsilon = ADAM.epsilon,
  ) {
    // tidy frees the zero tensors; variables survive it.
    this.m = variables.map((x) => tf.tidy(() => tf.variable(tf.zerosLike(x), false)));
    this.v = variables.map((x) => tf.tidy(() => tf.variable(tf.zerosLike(x), false)));
  }

  /**
   * One update with `grads[i]` the gradient of variables[i]. A missing gradient (a variable the loss did
   * not touch, e.g. the recurrent matrix in a batch of one-step windows) leaves that variable and its
   * moments alone, as tf.train.adam does. `lrFactor` scales the learning rate (schedules).
   */
  apply(grads: readonly (tf.Tensor | undefined | null)[], lrFactor = 1): void {
    this.t++;
    const { beta1: b1, beta2: b2, t } = this;
    const stepSize = (lrFactor * this.learningRate * Math.sqrt(1 - b2 ** t)) / (1 - b1 ** t);
    tf.tidy(() => {
      this.variables.forEach((x, i) => {
        const g = grads[i];
        if (g == null) return;
        const m = tf.add(tf.mul(this.m[i]!, b1), tf.mul(g, 1 - b1));
        const v = tf.add(tf.mul(this.v[i]!, b2), tf.mul(tf.square(g), 1 - b2));
        this.m[i]!.assign(m);
        this.v[i]!.assign(v);
        x.assign(tf.sub(x, tf.div(tf.mul(m, stepSize), tf.add(tf.sqrt(v), this.epsilon))));
      });
    });
  }

  /** A copy of the state (reads the moments back synchronously: for checkpoints, not every step). */
  getState(): AdamState {
    return { t: this.t, m: flatten(this.m), v: flatten(this.v) };
  }

  /** Restores a state from getState(). */
  setState(state: AdamState): void {
    const size = this.m.reduce((n, x) => n + x.size, 0);
    if (state.m.length !== size || state.v.length !== size) {
      throw new RangeError(`Adam state holds ${state.m.length} values, expected ${size}`);
    }
    this.t = state.t;
    unflatten(state.m, this.m);
    unflatten(state.v, this.v);
  }

  /** Frees the moment estimates. */
  dispose(): void {
    [...this.m, ...this.v].forEach((x) => x.dispose());
  }
}

function flatten(vars: readonly tf.Variable[]): Float32Array {
  const out = new Float32Array(vars.reduce((n, x) => n + x.size, 0));
  let offset = 0;
  for (const x of vars) {
    out.set(x.dataSync() as Float32Array, offset);
    offset += x.size;
  }
  return out;
}

function unflatten(flat: Float32Array, vars: readonly tf.Variable[]): void {
  let offset = 0;
  for (const x of vars) {
    // slice(): the cpu backend keeps the typed array it is given (see SessionModel's constructor).
    const part = flat.slice(offset, offset + x.size);
    tf.tidy(() => x.assign(tf.tensor(part, x.shape, 'float32')));
    offset += x.size;
  }
}
